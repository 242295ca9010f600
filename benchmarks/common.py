"""What every benchmark script shares: where the real data lives, and a best-of timer.

The scripts run as ``python benchmarks/<name>.py``, so this module is importable as ``common``.
"""

from __future__ import annotations

import time
from pathlib import Path

#: ``../shared/data`` beside the repository (scripts take ``--data DIR`` to override it).
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def best_of(fn, repeat: int = 3):
    """``(fastest wall-clock seconds of `repeat` calls, result of the last call)``."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result
