"""Break-even: the win probability at which a trade's expected R is zero (the seed's EV rule).

``p_min = avg_loss / (avg_win + avg_loss)`` from the empirical average win and loss, in
``pnl_percent`` (the seed) or in R (rigorous; :meth:`EVThreshold.p_min_at` adds a signal's own
cost in R). :mod:`research.thresholds` turns it into execution thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from research import schema as S
from research.errors import InsufficientDataError

Rule = Literal["seed", "rigorous"]
_FALLBACK = "so there is no EV threshold and the policy falls back to the static threshold"


@dataclass(frozen=True, kw_only=True, slots=True)
class EVThreshold:
    """Break-even win probability ``p_min = avg_loss / (avg_win + avg_loss)``.

    ``avg_win`` and ``avg_loss`` (a positive magnitude) are in ``unit``: ``'pnl_percent'``
    (percent of entry, seed rule) or ``'R'`` net of ``cost_r`` (rigorous rule).
    """

    p_min: float
    avg_win: float
    avg_loss: float
    n_wins: int
    n_losses: int
    rule: Rule
    unit: str
    cost_r: float = 0.0

    @property
    def score(self) -> float:
        """The threshold in score points, ``100 * p_min`` (0-100)."""
        return 100.0 * self.p_min

    def p_min_at(self, cost_r) -> np.ndarray:
        """Break-even P(win) of trades paying ``cost_r`` more R each (clipped to [0, 1]).

        ``p W - (1 - p) L - c = 0``  gives  ``p = (L + c) / (W + L)``.
        """
        c = np.nan_to_num(np.asarray(cost_r, dtype=np.float64), nan=0.0)
        return np.clip((self.avg_loss + c) / (self.avg_win + self.avg_loss), 0.0, 1.0)


def ev_threshold(outcomes_or_pnl, won=None, *, rule: Rule = "seed", cost_r: float = 0.0):
    """Break-even win probability (:class:`EVThreshold`) from the empirical average win and loss.

    ``outcomes_or_pnl`` is an outcomes frame (``outcome`` and ``pnl_percent`` (seed) or
    ``realized_rr`` (rigorous); censored rows are dropped) or one value per completed trade,
    with ``won`` saying which won (default: value > 0, the simulator's rule). ``rule='seed'``
    compares wins and losses in ``pnl_percent`` (percent of entry) and ignores timeouts;
    ``rule='rigorous'`` works in R net of ``cost_r`` (R per trade) and puts every trade that did
    not win (loss, break-even, timeout) on the loss side, matching P(win) over all trades.
    ``p_min`` is clipped to [0, 1]. Raises :class:`InsufficientDataError` without a winning or
    a losing trade, or when wins do not pay more than losses.
    """
    if rule not in ("seed", "rigorous"):
        raise ValueError(f"rule must be 'seed' or 'rigorous', got {rule!r}")
    column = S.PNL_PERCENT if rule == "seed" else S.REALIZED_RR
    if isinstance(outcomes_or_pnl, pd.DataFrame):
        S.require_columns(outcomes_or_pnl, [S.OUTCOME, column], "outcomes")
        df = outcomes_or_pnl[outcomes_or_pnl[S.OUTCOME].notna()]
        df = df[df[column].notna() & ((df[S.OUTCOME] != "timeout") | (rule == "rigorous"))]
        values, is_win = df[column].to_numpy(np.float64), (df[S.OUTCOME] == "win").to_numpy(bool)
    else:
        values = np.asarray(outcomes_or_pnl, dtype=np.float64).ravel()
        is_win = values > 0 if won is None else np.asarray(won, dtype=bool).ravel()
        if is_win.shape != values.shape:
            raise ValueError(f"won has {is_win.size} values for {values.size} trades")
        values, is_win = values[np.isfinite(values)], is_win[np.isfinite(values)]
    values = values - cost_r if rule == "rigorous" else values
    n_wins, n_losses = int(is_win.sum()), int((~is_win).sum())
    for n, what in ((n_wins, "winning"), (n_losses, "losing")):
        if n == 0:
            raise InsufficientDataError(
                f"no {what} trade among {values.size} completed trades: the break-even "
                f"probability needs at least one win and one loss, {_FALLBACK}."
            )
    avg_win, avg_loss = float(values[is_win].mean()), float(-values[~is_win].mean())
    if not avg_win + avg_loss > 0:
        raise InsufficientDataError(
            f"winning trades average {avg_win:.4g} {column} and losing ones {-avg_loss:.4g}: "
            f"wins do not pay more than losses, {_FALLBACK}."
        )
    return EVThreshold(
        p_min=float(np.clip(avg_loss / (avg_win + avg_loss), 0.0, 1.0)),
        avg_win=avg_win,
        avg_loss=avg_loss,
        n_wins=n_wins,
        n_losses=n_losses,
        rule=rule,
        unit="pnl_percent" if rule == "seed" else "R",
        cost_r=cost_r if rule == "rigorous" else 0.0,
    )
