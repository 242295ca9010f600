"""Whole-file replacement: a reader sees the old content or the new one, never half.

Kept free of nbformat and the rest of the runner so :mod:`nbrunner.kernel` (imported on
every run, and cheap on purpose) can use it too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would, for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder.

    The file gets the permissions a plain ``open(path, "w")`` would give it (0666 minus the
    umask), not the 0600 of the temporary file: reports are meant to be shared. Secrets never
    go through here (see :func:`research.demo.write_secret_file`).

    Parameters
    ----------
    path : str or Path
        The file to (re)place; its folder must exist.
    text : str
        The whole new content.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    # Same folder, so os.replace is a rename on one filesystem (atomic), not a copy.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        # A failed write (disk full, Ctrl-C) must not leave hidden temporaries behind.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
