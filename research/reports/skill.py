"""Diagnostics that say "no skill", in words: an AUC within chance, a one-bin reliability.

A table that prints ``auc 0.508`` and a reliability plot of a single dot look like results; a
reader should be told that they are what a coin gives. :func:`auc_interval` is the Hanley &
McNeil (1982) standard error of the AUC (normal approximation); :func:`no_skill_notes` turns a
metrics table and reliability tables into sentences for the sections that show them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

Z95 = 1.959964


def auc_interval(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """95 % interval of an AUC from ``n_pos`` wins and ``n_neg`` losses (Hanley & McNeil).

    Returns ``(nan, nan)`` when the AUC is undefined (one class) or not finite.
    """
    if not np.isfinite(auc) or n_pos < 1 or n_neg < 1:
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    se = float(np.sqrt(max(var, 0.0)))
    return auc - Z95 * se, auc + Z95 * se


def _counts(row: pd.Series) -> tuple[int, int] | None:
    n = row.get("n", np.nan)
    rate = row.get("win_rate", np.nan)
    if not (np.isfinite(n) and np.isfinite(rate)):
        return None
    n_pos = int(round(float(n) * float(rate)))
    return n_pos, int(n) - n_pos


def no_skill_notes(metrics: pd.DataFrame, reliability: pd.DataFrame | None = None) -> list[str]:
    """Sentences flagging rows whose scores carry no evidence of skill.

    Parameters
    ----------
    metrics : DataFrame
        One row per model or group (the index names it) with ``auc``, ``n`` and ``win_rate``
        (fraction of wins among the ``n`` trades).
    reliability : DataFrame, optional
        Stacked reliability tables (:func:`research.analysis.metrics.reliability_table`
        with a ``rule`` column naming the model or group), one row per non-empty bin.

    Returns
    -------
    list of str
        One sentence per AUC whose 95 % interval contains 0.5 and per model whose predictions
        all fall in one bin; empty when nothing says "no skill".
    """
    notes, chance = [], []
    for name, row in metrics.iterrows():
        auc, counts = float(row.get("auc", np.nan)), _counts(row)
        if counts is None or not np.isfinite(auc):
            continue
        low, high = auc_interval(auc, *counts)
        if np.isfinite(low) and low <= 0.5 <= high:
            chance.append(f"{name} {auc:.2f} [{low:.2f}, {high:.2f}] over {sum(counts):,} trades")
    if chance:
        notes.append(
            "**No skill shown:** the AUC's 95 % interval contains 0.5 (chance) for "
            + "; ".join(chance)
            + ". These scores do not rank wins above losses better than a coin."
        )
    if reliability is not None and "rule" in reliability:
        for name, bins in reliability.groupby("rule", sort=False):
            if len(bins) == 1:
                notes.append(
                    f"**No skill shown by {name}:** every prediction falls in one probability "
                    "bin, so its reliability plot is a single dot — it gives all trades about "
                    "the same P(win) and cannot tell them apart."
                )
    return notes
