"""Analyses: compute only, return frames (drawing lives in research.plots).

``summary`` (outcomes per strategy), ``calibration`` (reliability, metrics, in-sample vs
out-of-fold), ``evaluation`` (walk-forward), ``uplift`` (the replay's filter value), ``gates``
(scalp gate analysis, seed and rigorous), ``importance`` (MDI evolution, permutation vs a noise
probe), ``leakage`` (after-entry features, perturb the future), ``patterns`` (context cells).
"""

from research.analysis.summary import outcome_summary

__all__ = ["outcome_summary"]
