"""Figures of the research notebooks: seaborn/matplotlib drawing only (compute lives in
:mod:`research.analysis`, composition in the notebooks and reports).

Every function takes the frames the library returns plus ``ax=None``: with an axis it draws
there, without one it creates a figure. It returns the :class:`matplotlib.figure.Figure`.
Importing this package changes no global matplotlib or seaborn style.
"""

from research.plots.diagnostics import (
    plot_gate_deltas,
    plot_importance_evolution,
    plot_pattern_cells,
    plot_pattern_heatmap,
    plot_permutation_importance,
    plot_reliability,
    plot_synergy_heatmap,
)
from research.plots.trades import (
    plot_candles_with_signals,
    plot_exit_reasons,
    plot_r_distribution,
)

__all__ = [
    "plot_candles_with_signals",
    "plot_exit_reasons",
    "plot_gate_deltas",
    "plot_importance_evolution",
    "plot_pattern_cells",
    "plot_pattern_heatmap",
    "plot_permutation_importance",
    "plot_r_distribution",
    "plot_reliability",
    "plot_synergy_heatmap",
]

from research.plots.activity import (  # noqa: E402
    plot_activity,
    plot_cumulative_r_by_decision,
    plot_win_rates,
)

__all__ += ["plot_activity", "plot_cumulative_r_by_decision", "plot_win_rates"]

from research.plots.replay import (  # noqa: E402
    plot_cumulative_r,
    plot_decisions_over_time,
    plot_retrain_timeline,
    plot_threshold_timeline,
    plot_uplift,
)
from research.plots.thresholds import (  # noqa: E402
    plot_bucket_thresholds,
    plot_qscore_curves,
    plot_threshold_rules,
    plot_threshold_split,
    plot_threshold_sweep,
)

__all__ += [
    "plot_bucket_thresholds",
    "plot_cumulative_r",
    "plot_decisions_over_time",
    "plot_qscore_curves",
    "plot_retrain_timeline",
    "plot_threshold_rules",
    "plot_threshold_split",
    "plot_threshold_sweep",
    "plot_threshold_timeline",
    "plot_uplift",
]

from research.plots.calibration import bucket_grid, plot_bucket_calibration, plot_fold_metrics  # noqa: E402
from research.plots.gate_null import plot_deltas_vs_null  # noqa: E402
from research.plots.importance_compare import importance_pairs, plot_importance_comparison  # noqa: E402
from research.plots.leakage import plot_leakage_auc  # noqa: E402

__all__ += [
    "bucket_grid",
    "importance_pairs",
    "plot_bucket_calibration",
    "plot_deltas_vs_null",
    "plot_fold_metrics",
    "plot_importance_comparison",
    "plot_leakage_auc",
]
