"""The Jupyter kernel pipelines run in: this interpreter, registered inside its own prefix.

A notebook's ``python3`` kernelspec may point at any Python on the machine (whatever Jupyter
finds first); a scheduled run must use the environment that has ``research`` installed. So
runs use a kernelspec named :data:`KERNEL_NAME` whose ``argv`` is ``sys.executable``, written
under ``sys.prefix/share/jupyter/kernels`` (the virtualenv or conda env, never the user's home),
where Jupyter looks first for that interpreter.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from research.runner.atomic import write_text_atomic

logger = logging.getLogger(__name__)

KERNEL_NAME = "phantomlab"
"""Name of the kernelspec :func:`ensure_kernel` registers."""


def kernel_dir() -> Path:
    """Folder of the :data:`KERNEL_NAME` kernelspec: ``sys.prefix/share/jupyter/kernels/...``."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def kernel_spec() -> dict:
    """The ``kernel.json`` content: this interpreter running ``ipykernel_launcher``."""
    return {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Phantom Lab (Python {sys.version_info.major}.{sys.version_info.minor})",
        "language": "python",
        "metadata": {"debugger": True},
    }


def ensure_kernel() -> str:
    """Register the :data:`KERNEL_NAME` kernelspec for this interpreter; return its name.

    Idempotent: the file is rewritten only when its content differs (e.g. the environment
    moved), atomically, so concurrent runs never read half a ``kernel.json``.

    Returns
    -------
    str
        :data:`KERNEL_NAME`, to pass as papermill's ``kernel_name``.

    Raises
    ------
    OSError
        When ``sys.prefix`` is not writable (e.g. a system Python); the message says how
        to fix it.
    """
    folder = kernel_dir()
    target = folder / "kernel.json"
    text = json.dumps(kernel_spec(), indent=1) + "\n"
    try:
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            return KERNEL_NAME
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
    except OSError as exc:
        raise OSError(
            f"cannot register the {KERNEL_NAME!r} Jupyter kernel in {folder}: {exc}. Fix: run "
            "from a virtualenv or conda env you can write to (see README: make setup)."
        ) from exc
    logger.info("registered Jupyter kernel %r in %s", KERNEL_NAME, folder)
    return KERNEL_NAME
