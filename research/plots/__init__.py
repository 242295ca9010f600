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
