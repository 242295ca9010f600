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

from nbrunner.atomic import write_text_atomic

logger = logging.getLogger(__name__)

KERNEL_NAME = "phantomlab"
"""Name of the kernelspec :func:`ensure_kernel` registers."""


def kernel_dir() -> Path:
    """Folder of the :data:`KERNEL_NAME` kernelspec: ``sys.prefix/share/jupyter/kernels/...``."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


#: ipykernel's warning (7.x) for a kernel bound to TCP without CurveZMQ keys
TCP_WARNING = "Kernel is running over TCP without encryption"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# What the kernelspec runs: ``python -m ipykernel_launcher`` (via runpy, so the command line
# still names it) after :func:`quiet_loopback_tcp_warning`; ``-f {connection_file}`` follows.
_LAUNCH = (
    "from nbrunner.kernel import quiet_loopback_tcp_warning; "
    "quiet_loopback_tcp_warning(); "
    "import runpy; runpy.run_module('ipykernel_launcher', run_name='__main__')"
)


class _LoopbackTcpWarning(logging.Filter):
    """Drops :data:`TCP_WARNING` when the kernel listens on a loopback address, only then.

    The runner's kernel manager starts the kernel on the same machine, bound to 127.0.0.1:
    its traffic never leaves the host, and the connection file that holds the message-signing
    key is readable by the user alone, so "plain text, susceptible to eavesdropping" does not
    apply and the line in every run's log only teaches readers to ignore warnings. A kernel
    bound to any other address keeps the warning (there it is a real problem), and every
    other message of the kernel is untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(TCP_WARNING):
            return True
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance() if IPKernelApp.initialized() else None
        return app is None or str(app.ip) not in _LOOPBACK


def quiet_loopback_tcp_warning() -> None:
    """Install :class:`_LoopbackTcpWarning` on ipykernel's application logger.

    Called by the :data:`KERNEL_NAME` kernelspec before ipykernel starts (see :data:`_LAUNCH`).
    """
    logging.getLogger("IPKernelApp").addFilter(_LoopbackTcpWarning())


def kernel_spec() -> dict:
    """The ``kernel.json`` content: this interpreter running ``ipykernel_launcher`` with
    the loopback-only TCP warning filter (:func:`quiet_loopback_tcp_warning`)."""
    return {
        "argv": [sys.executable, "-c", _LAUNCH, "-f", "{connection_file}"],
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
