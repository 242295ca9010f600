"""Phantom Lab: a research workbench for ML filtering of trading signals.

The package follows the data flow of ``DESIGN.md`` — one module per step, imports pointing
upstream only::

    candles -> signals -> features -> phantom outcomes -> (dataset, scorer, thresholds, ...)

Frequently used entry points are re-exported here for notebooks.
"""

from __future__ import annotations

import logging

from research._lazy import lazy_getattr

__version__ = "0.1.0"

# A library never configures logging for its user; it only stays quiet by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Entry points are resolved lazily so that `import research.schema` stays cheap (no numba, no
# scikit-learn) and a notebook can still write `research.simulate(...)`.
_EXPORTS = {
    "FEATURES": "research.features",
    "PhantomTracker": "research.phantom",
    "build_features": "research.features",
    "generate_signals": "research.signals",
    "load_candles": "research.candles",
    "load_folder": "research.candles",
    "make_market": "research.synthetic",
    "resample_candles": "research.candles",
    "simulate": "research.phantom",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
