"""One part of a report (:class:`Section`): notes to read, tables, figures, shown in order."""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd

from research.reports.format import show_table


@dataclass(frozen=True, kw_only=True, slots=True)
class Section:
    """One part of a report: what to read (notes), numbers (tables) and figures.

    ``tables`` keep the computed frames (tests and other reports read their numbers);
    :meth:`show` displays them formatted (:func:`research.reports.format.format_table`).
    """

    title: str
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)

    def show(self) -> None:
        """Display notes, tables (formatted, "none" when empty) and figures (IPython);
        figures are closed once shown so the inline backend does not draw them twice."""
        from IPython.display import display

        for note in self.notes:
            # a raw bundle: IPython's Markdown() would read a note that names a file
            display({"text/markdown": note, "text/plain": note}, raw=True)
        for name, table in self.tables.items():
            show_table(table, name)
        for fig in self.figures.values():
            display(fig)
            plt.close(fig)
