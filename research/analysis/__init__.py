"""Analyses: compute only, return frames (drawing lives in research.plots).

``summary`` (outcomes per strategy), ``metrics`` (reliability, ECE, AUC, Brier, log loss),
``calibration`` (in-sample vs out-of-fold), ``evaluation`` (walk-forward), ``uplift`` (the
replay's filter value), ``gates`` (scalp gate analysis, seed and rigorous), ``importance`` (MDI
evolution, permutation vs a noise probe), ``leakage`` (after-entry features, perturb the
future), ``patterns`` (context cells). The model analyses take a
:class:`research.dataset.ClosedTrades` and ``estimator=`` / ``splitter=`` keywords.
"""

from research.analysis.summary import outcome_summary

__all__ = ["outcome_summary"]
