"""Shared helpers of the figures: a figure or a given axis, and labels that do not overlap.

Nothing here draws data; every module of :mod:`research.plots` builds its figures on these.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _axis(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, ax)``, creating a figure of ``figsize`` inches when ``ax`` is None."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


#: label offsets tried in turn, in points: right-above, right-below, left-above, left-below, ...
_OFFSETS = ((4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (-4, 12), (4, -19), (-4, -19))


def _overlaps(box, placed) -> bool:
    return any(box.overlaps(other) for other in placed)


def place_labels(ax: Axes, xs, ys, names, *, fontsize: float = 7.0) -> list:
    """Name points without overlapping labels (adjustText is not a dependency).

    Each label tries the offsets of :data:`_OFFSETS` in turn and keeps the first whose box
    overlaps no label placed before it nor leaves the axes; a label that fits nowhere is left
    out (its point stays, the table beside the figure names it). Points are labelled from the
    highest down. Returns the placed :class:`~matplotlib.text.Annotation` objects.
    """
    fig = ax.figure
    ax.autoscale_view()  # the data limits as drawn: label boxes are measured in pixels
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed, texts = [], []
    order = np.argsort(-np.asarray(ys, dtype=float), kind="stable")
    xs, ys, names = np.asarray(xs, float), np.asarray(ys, float), [str(n) for n in names]
    for i in order:
        for dx, dy in _OFFSETS:
            text = ax.annotate(
                names[i],
                (xs[i], ys[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=fontsize,
                ha="left" if dx > 0 else "right",
            )
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 <= frame.y1
            if inside and not _overlaps(box, placed):
                placed.append(box)
                texts.append(text)
                break
            text.remove()
    return texts
