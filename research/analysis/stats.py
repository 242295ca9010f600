"""Small statistics shared by the analyses: Wilson intervals, Benjamini-Hochberg q-values and
the per-cell trade statistics of the pattern and threshold tables."""

from __future__ import annotations

import numpy as np
from scipy import stats


def wilson_interval(wins, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a win rate (arrays; NaN where ``n == 0``)."""
    wins, n = np.asarray(wins, dtype=float), np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = wins / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


#: Keys of :func:`cell_stats`, in table order.
CELL_STATS: tuple[str, ...] = (
    "n",
    "wins",
    "win_rate",
    "wr_low",
    "wr_high",
    "mean_r",
    "r_low",
    "r_high",
    "total_r",
)


def cell_stats(won, r, confidence: float = 0.95) -> dict[str, float]:
    """Count, win rate and R of one cell of trades, each estimate with its interval.

    Parameters
    ----------
    won : array of bool
        True for a trade that won (timeouts count as not won).
    r : array of float
        Realized R of the same trades; a NaN R makes the R statistics NaN (not skipped).
    confidence : float
        Level of the Wilson interval of the win rate and the normal interval of mean R.

    Returns
    -------
    dict
        :data:`CELL_STATS`: ``n`` and ``wins`` (int), ``win_rate`` with Wilson bounds
        ``wr_low``/``wr_high``, ``mean_r`` with normal bounds ``r_low``/``r_high``, ``total_r``.
        Rates and means are NaN for an empty cell (``total_r`` is 0); the bounds of mean R are
        NaN below two trades, where no spread can be estimated.
    """
    won, r = np.asarray(won, dtype=bool), np.asarray(r, dtype=float)
    n, wins = len(r), int(np.count_nonzero(won))
    lo, hi = wilson_interval(wins, n, confidence)
    mean = float(r.mean()) if n else np.nan
    # a normal interval of mean R is enough for a table of cells of tens of trades or more
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    half = float(z * r.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return {
        "n": n,
        "wins": wins,
        "win_rate": wins / n if n else np.nan,
        "wr_low": float(lo),
        "wr_high": float(hi),
        "mean_r": mean,
        "r_low": mean - half,
        "r_high": mean + half,
        "total_r": float(r.sum()),
    }


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN, not counted.

    :func:`scipy.stats.false_discovery_control` over the finite p-values (probabilities 0-1):
    a test that was not run (NaN) is not one of the ``m`` hypotheses.
    """
    p = np.asarray(p, float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q
