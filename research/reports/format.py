"""Tables as a reader reads them: units, two or three decimals, a meaningful index, "none".

A report shows what a frame means, not how pandas stores it: win rates as percentages, R to
three decimals, counts with thousands separators, times to the minute, ``yes``/``no`` for
flags, the row labels (strategy, era, ...) as the index instead of ``0 … n``, and the word
"none" instead of a table with headers and no rows. Compute stays in
:mod:`research.analysis`; this module only formats what a section displays.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from research import schema as S

logger = logging.getLogger(__name__)

#: column-name parts of fractions shown as percentages (``win_rate`` 0.335 -> ``33.5 %``)
RATE_HINTS = ("win_rate", "wr_", "share", "precision", "recall", "base_rate")
#: column-name parts that stay numbers whatever their name says (scores, counts)
_NOT_RATE = ("n_", "count", "trades")
MISSING = "–"


timeframe_text = S.timeframe_label  # a candle period as traders write it ("5m")


def is_rate(name: object) -> bool:
    """Whether column ``name`` holds a fraction of 1 shown as a percentage."""
    text = str(name).lower()
    return any(h in text for h in RATE_HINTS) and not text.startswith(_NOT_RATE)


def number_text(
    x: float, *, rate: bool = False, integral: bool = False, scale: float | None = None
) -> str:
    """One number, short: ``33.5 %`` for a rate, ``1,185`` for a count, else 2-3 decimals.

    ``scale`` (a column's largest magnitude) fixes the decimals of a whole column: one above
    100, two above 1, else three.
    """
    if x is None or (isinstance(x, float) and not np.isfinite(x)) or pd.isna(x):
        return MISSING
    x = float(x)
    if rate:
        return f"{x * 100:.1f} %"
    if integral:
        return f"{int(round(x)):,}"
    size = abs(x) if scale is None else scale
    if size >= 100:
        return f"{x:,.1f}"
    if size >= 1:
        return f"{x:.2f}"
    if size >= 0.001 or x == 0:
        return f"{x:.3f}"
    return f"{x:.2g}"


def _time_text(column: pd.Series) -> pd.Series:
    times = pd.to_datetime(column, utc=True)
    valid = times.dropna()
    midnight = len(valid) and bool((valid == valid.dt.normalize()).all())
    fmt = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"
    return times.dt.strftime(fmt).fillna(MISSING)


def _column_text(name: object, column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.map({True: "yes", False: "no"})
    if pd.api.types.is_datetime64_any_dtype(column):
        return _time_text(column)
    if pd.api.types.is_timedelta64_dtype(column):
        return column.map(lambda v: MISSING if pd.isna(v) else timeframe_text(v))
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(np.float64)
        finite = values[np.isfinite(values)]
        integral = bool(len(finite)) and bool(np.all(finite == np.round(finite)))
        rate = is_rate(name) and not integral
        scale = float(np.abs(finite).max()) if len(finite) else None
        return column.map(lambda v: number_text(v, rate=rate, integral=integral, scale=scale))
    return column.map(
        lambda v: (
            MISSING
            if v is None or (not isinstance(v, str) and pd.isna(v))
            else (timeframe_text(v) if isinstance(v, pd.Timedelta) else str(v))
        )
    )


def _meaningful_index(table: pd.DataFrame) -> pd.DataFrame:
    """Replace a ``0 … n`` index by the leading text columns that tell rows apart."""
    if not isinstance(table.index, pd.RangeIndex) or table.empty:
        return table
    labels = []
    for name in table.columns:
        col = table[name]
        if not (
            pd.api.types.is_object_dtype(col)
            or isinstance(col.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(col)
        ):
            break
        labels.append(name)
        if not table.duplicated(subset=labels).any():
            return table.set_index(labels)
    # no label columns tell rows apart: number them from 1, as a reader counts
    out = table.copy()
    out.index = pd.RangeIndex(1, len(out) + 1, name="#")
    return out


def format_table(table: pd.DataFrame | pd.Series | None) -> pd.DataFrame | None:
    """``table`` as text to display (see module doc), or ``None`` when it has no rows.

    A Series becomes a one-column frame of its values (its name the column), so no
    ``Name: …, dtype: object`` footer is ever shown.
    """
    if table is None:
        return None
    if isinstance(table, pd.Series):
        if table.empty:
            return None
        column = "value" if table.name is None else str(table.name)
        return pd.DataFrame(
            {column: [_cell_text(k, v) for k, v in table.items()]}, index=table.index
        )
    if len(table) == 0:
        return None
    table = _meaningful_index(table)
    return pd.DataFrame(
        {name: _column_text(name, table[name]) for name in table.columns}, index=table.index
    )


def _cell_text(name: object, value: object) -> str:
    """One value of a key-value Series, formatted by its own type and its key."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return _time_text(pd.Series([value])).iloc[0]
    if isinstance(value, pd.Timedelta):
        return timeframe_text(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return number_text(value, rate=is_rate(name))
    return MISSING if value is None else str(value)


def show_table(table: pd.DataFrame | pd.Series | None, name: str | None = None) -> None:
    """Display ``table`` formatted (:func:`format_table`) in a notebook, or "none" in words.

    ``name`` captions it (``beats_probe`` -> *beats probe*), so an empty table still says
    which one is empty.
    """
    from IPython.display import display

    caption = name.replace("_", " ") if name else None
    shown = format_table(table)
    if shown is None:
        text = f"*{caption}*: none." if caption else "None."
        display({"text/markdown": text, "text/plain": text}, raw=True)
        return
    if caption:
        display({"text/markdown": f"*{caption}*", "text/plain": caption}, raw=True)
    display(shown)


def show_notes(notes: list[str]) -> None:
    """Display each note as Markdown (a raw bundle: IPython's ``Markdown()`` would read a
    note that names a file); nothing when there are none."""
    from IPython.display import display

    for note in notes:
        display({"text/markdown": note, "text/plain": note}, raw=True)
