"""Figures of the research notebooks: seaborn/matplotlib drawing only (compute lives in
:mod:`research.analysis`, composition in the notebooks and reports).

One module per analysis it draws — ``activity``, ``calibration``, ``gates``, ``importance``,
``leakage``, ``patterns`` and ``uplift`` mirror :mod:`research.analysis` — and one per thing
that is not an analysis: ``trades`` (candles, signals, outcomes), ``replay`` (the online
loop's decisions and refits) and ``thresholds`` (the explorer's sweeps and the qscore
buckets); ``layout`` holds the helpers they share.

Every function takes the frames the library returns plus ``ax=None``: with an axis it draws
there, without one it creates a figure. It returns the :class:`matplotlib.figure.Figure`.
Importing this package changes no global matplotlib or seaborn style.
"""

from research.plots.activity import plot_activity, plot_cumulative_r_by_decision, plot_win_rates
from research.plots.calibration import (
    bucket_grid,
    plot_bucket_calibration,
    plot_fold_metrics,
    plot_reliability,
)
from research.plots.gates import plot_deltas_vs_null, plot_gate_deltas, plot_synergy_heatmap
from research.plots.importance import (
    importance_pairs,
    plot_importance_comparison,
    plot_importance_evolution,
    plot_permutation_importance,
)
from research.plots.leakage import plot_leakage_auc
from research.plots.patterns import plot_pattern_cells, plot_pattern_heatmap
from research.plots.replay import (
    plot_cumulative_r,
    plot_decisions_over_time,
    plot_retrain_timeline,
    plot_threshold_timeline,
)
from research.plots.thresholds import (
    plot_bucket_thresholds,
    plot_qscore_curves,
    plot_threshold_rules,
    plot_threshold_split,
    plot_threshold_sweep,
)
from research.plots.trades import plot_candles_with_signals, plot_exit_reasons, plot_r_distribution
from research.plots.uplift import plot_uplift

__all__ = [
    "bucket_grid",
    "importance_pairs",
    "plot_activity",
    "plot_bucket_calibration",
    "plot_bucket_thresholds",
    "plot_candles_with_signals",
    "plot_cumulative_r",
    "plot_cumulative_r_by_decision",
    "plot_decisions_over_time",
    "plot_deltas_vs_null",
    "plot_exit_reasons",
    "plot_fold_metrics",
    "plot_gate_deltas",
    "plot_importance_comparison",
    "plot_importance_evolution",
    "plot_leakage_auc",
    "plot_pattern_cells",
    "plot_pattern_heatmap",
    "plot_permutation_importance",
    "plot_qscore_curves",
    "plot_r_distribution",
    "plot_reliability",
    "plot_retrain_timeline",
    "plot_synergy_heatmap",
    "plot_threshold_rules",
    "plot_threshold_split",
    "plot_threshold_sweep",
    "plot_threshold_timeline",
    "plot_uplift",
    "plot_win_rates",
]
