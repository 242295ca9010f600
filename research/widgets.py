"""The signals explorer as an ipywidgets panel: symbol, strategy, dates and a threshold slider.

Its numbers are those of :mod:`research.analysis.explorer` (:func:`threshold_table` of the
selection); its figure is :func:`research.plots.thresholds.plot_threshold_split`. Build the frame
with :func:`research.analysis.explorer.explorer_frame`, then display
:func:`signal_explorer` in a notebook.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import pandas as pd
from IPython.display import HTML, Image
from matplotlib.figure import Figure

from research import schema as S
from research.analysis.explorer import ALL, select, threshold_table
from research.plots.thresholds import plot_threshold_split


class SignalExplorer(widgets.VBox):
    """Interactive split of ``frame`` at a threshold (built by :func:`signal_explorer`).

    Controls: ``symbol`` and ``strategy`` (Dropdown, ``'all'`` = no filter), ``dates``
    (SelectionRangeSlider over signal days, inclusive), ``threshold`` (IntSlider 0-100). Any
    change redraws ``output``: the :func:`threshold_table` of the selection and the cumulative
    R of executed vs phantom signals. ``table`` and ``selection`` hold the last numbers shown.
    """

    def __init__(
        self, frame: pd.DataFrame, *, threshold: int = 70, figsize: tuple[float, float] = (7.0, 3.2)
    ) -> None:
        S.require_columns(
            frame,
            (
                S.SYMBOL,
                S.STRATEGY,
                S.SIGNAL_TIME,
                S.ML_SCORE,
                S.OUTCOME,
                S.REALIZED_RR,
                S.EXIT_TIME,
            ),
            "explorer",
        )
        if frame.empty:
            raise ValueError(
                "the explorer frame is empty. Fix: widen the filters of "
                "explorer_frame() or score more signals."
            )
        self.frame, self.figsize = frame, figsize
        days = sorted(frame[S.SIGNAL_TIME].dt.floor("D").unique())
        style = {"description_width": "initial"}
        self.symbol = widgets.Dropdown(
            options=[ALL, *sorted(frame[S.SYMBOL].unique())],
            value=ALL,
            description="symbol",
            style=style,
        )
        self.strategy = widgets.Dropdown(
            options=[ALL, *sorted(frame[S.STRATEGY].unique())],
            value=ALL,
            description="strategy",
            style=style,
        )
        self.dates = widgets.SelectionRangeSlider(
            options=[(d.strftime("%Y-%m-%d"), d) for d in days],
            index=(0, len(days) - 1),
            description="dates",
            style=style,
            layout=widgets.Layout(width="95%"),
        )
        self.threshold = widgets.IntSlider(
            value=int(threshold), min=0, max=100, step=1, description="threshold", style=style
        )
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.table: pd.DataFrame | None = None
        self.selection: pd.DataFrame | None = None
        super().__init__(
            [
                widgets.HBox([self.symbol, self.strategy, self.threshold]),
                self.dates,
                self.status,
                self.output,
            ]
        )
        for control in (self.symbol, self.strategy, self.dates, self.threshold):
            control.observe(self.refresh, names="value")
        self.refresh()

    def refresh(self, change=None) -> None:
        """Recompute the selection and redraw the table and figure (the controls' callback)."""
        start, end = self.dates.value
        self.selection = select(
            self.frame,
            symbols=self.symbol.value,
            strategies=self.strategy.value,
            start=start,
            end=end,
        )
        thr = float(self.threshold.value)
        self.table = threshold_table(self.selection, thr)
        n_exec = int(self.table.at["executed", "signals"])
        self.status.value = (
            f"<b>{len(self.selection)}</b> closed signals, <b>{n_exec}</b> "
            f"executed at threshold {thr:g}"
        )
        # Drawn on a bare Figure (no pyplot): nothing leaks into the notebook's own output.
        fig = Figure(figsize=self.figsize, layout="constrained")
        plot_threshold_split(self.selection, thr, ax=fig.add_subplot())
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=90)
        # Replacing the outputs trait (not clear_output) works with and without a live kernel.
        self.output.outputs = ()
        self.output.append_display_data(HTML(self.table.to_html(float_format="{:.3f}".format)))
        self.output.append_display_data(Image(data=png.getvalue(), format="png"))


def signal_explorer(frame: pd.DataFrame, *, threshold: int = 70) -> SignalExplorer:
    """The interactive explorer of ``frame`` (:func:`explorer_frame`), starting at ``threshold``.

    ``frame`` is its only data. Display the returned widget in a notebook; setting its controls'
    ``value`` from Python redraws it as moving them does.
    """
    return SignalExplorer(frame, threshold=threshold)
