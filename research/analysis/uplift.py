"""What the ML filter was worth: executed vs all signals vs phantoms, with a bootstrap interval.

Computed on a replay's decisions frame (:func:`research.replay.replay`), closed signals only
(censored ones never got an outcome). R is ``realized_rr`` in multiples of the initial risk.

* ``executed``: trades actually taken (``was_executed``), R net of execution costs;
* ``phantoms``: signals tracked virtually, their hypothetical R (no costs, as the seed);
* ``all``: every signal as if executed, R net of costs (``rr_if_executed``) — the no-filter
  baseline the filter has to beat.

The filter's uplift is ``mean R(passed) - mean R(all)``, both net of costs, where *passed* is
the filter's own choice (``score >= threshold``; exploration trades are left out of it). Trades
overlap in time and their outcomes are serially dependent, so the interval comes from a
circular block bootstrap over the decisions in time order, not from i.i.d. resampling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S

GROUPS = ("executed", "phantoms", "all")


def _stats(r: np.ndarray, won: np.ndarray) -> dict[str, float]:
    n = len(r)
    return {
        "trades": n,
        "win_rate": float(won.mean()) if n else np.nan,
        "mean_r": float(r.mean()) if n else np.nan,
        "total_r": float(r.sum()),
    }


def replay_summary(decisions: pd.DataFrame, by: str = S.STRATEGY) -> pd.DataFrame:
    """Trades, win rate, mean R and total R per group (``by`` value and ``'all'``) and set.

    Returns a tidy frame with columns ``[by, 'set', 'trades', 'win_rate', 'mean_r',
    'total_r']``; ``set`` is one of :data:`GROUPS`.
    """
    closed = decisions.loc[~decisions[S.CENSORED].to_numpy()]
    rows = []
    keys = [*sorted(pd.unique(closed[by])), "all"]
    for key in keys:
        d = closed if key == "all" else closed.loc[(closed[by] == key).to_numpy()]
        executed = d[S.WAS_EXECUTED].to_numpy(bool)
        won = (d[S.OUTCOME] == "win").to_numpy()
        rr = d[S.REALIZED_RR].to_numpy(np.float64)
        # 'all' as if every signal were executed: R and outcome net of costs
        rr_all = d[S.RR_IF_EXECUTED].to_numpy(np.float64)
        sets = {
            "executed": _stats(rr[executed], won[executed]),
            "phantoms": _stats(rr[~executed], won[~executed]),
            "all": _stats(rr_all, rr_all > 0),
        }
        rows += [{by: key, "set": name, **sets[name]} for name in GROUPS]
    return pd.DataFrame(rows)


def block_bootstrap_uplift(
    r: np.ndarray,
    passed: np.ndarray,
    *,
    n_boot: int = 1000,
    block: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Uplift ``mean(r[passed]) - mean(r)`` and its circular block-bootstrap interval.

    Parameters
    ----------
    r : array of float
        R per closed signal (net of costs), in time order.
    passed : array of bool
        The filter's choice per signal.
    n_boot : int
        Bootstrap replicates.
    block : int, optional
        Block length in signals; default ``ceil(n ** (1/3))``, the usual rate for the block
        bootstrap of a mean.
    confidence : float
        Two-sided level of the percentile interval.
    seed : int

    Returns
    -------
    dict
        ``uplift``, ``ci_low``, ``ci_high`` (R per trade), ``p_le_0`` (share of replicates
        with uplift <= 0), ``n``, ``n_passed``, ``block``.
    """
    r = np.asarray(r, dtype=np.float64)
    passed = np.asarray(passed, dtype=bool)
    n = len(r)
    out = {"n": n, "n_passed": int(passed.sum()), "uplift": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p_le_0": np.nan, "block": 0}  # fmt: skip
    if n == 0 or not passed.any():
        return out
    block = int(block or max(1, int(np.ceil(n ** (1 / 3)))))
    block = min(block, n)
    out["uplift"] = float(r[passed].mean() - r.mean())
    out["block"] = block
    # Sums of every circular block, for each quantity the statistic needs; a replicate is then
    # just the sum of ``n_blocks`` random block sums (O(n_boot * n / block), no index matrix).
    qty = np.column_stack([r * passed, passed, r]).astype(np.float64)
    ext = np.vstack([qty, qty[: block - 1]])
    csum = np.vstack([np.zeros((1, 3)), np.cumsum(ext, axis=0)])
    block_sums = csum[block : block + n] - csum[:n]
    n_blocks = int(np.ceil(n / block))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    tot = block_sums[starts].sum(axis=1)  # (n_boot, 3)
    m = n_blocks * block  # resampled length (the last block is not cut: a mean needs no trim)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = tot[:, 0] / tot[:, 1] - tot[:, 2] / m
    stat = stat[np.isfinite(stat)]
    alpha = (1.0 - confidence) / 2.0
    out["ci_low"], out["ci_high"] = (float(q) for q in np.quantile(stat, [alpha, 1 - alpha]))
    out["p_le_0"] = float((stat <= 0).mean())
    return out


def filter_uplift(
    decisions: pd.DataFrame,
    by: str = S.STRATEGY,
    *,
    n_boot: int = 1000,
    block: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The filter's uplift in mean R per trade, per ``by`` value and overall, with intervals.

    Columns: ``uplift``, ``ci_low``, ``ci_high``, ``p_le_0``, ``n``, ``n_passed``, ``block``,
    ``mean_r_passed``, ``mean_r_all``, ``total_r_passed``, ``total_r_all`` (R net of costs).
    """
    closed = decisions.loc[~decisions[S.CENSORED].to_numpy()].sort_values(
        [S.SIGNAL_TIME, S.SIGNAL_ID], kind="stable"
    )
    rows = {}
    for key in [*sorted(pd.unique(closed[by])), "all"]:
        d = closed if key == "all" else closed.loc[(closed[by] == key).to_numpy()]
        r = d[S.RR_IF_EXECUTED].to_numpy(np.float64)
        passed = d[S.PASSED].to_numpy(bool)
        res = block_bootstrap_uplift(r, passed, n_boot=n_boot, block=block,
                                     confidence=confidence, seed=seed)  # fmt: skip
        res.update(
            mean_r_passed=float(r[passed].mean()) if passed.any() else np.nan,
            mean_r_all=float(r.mean()) if len(r) else np.nan,
            total_r_passed=float(r[passed].sum()),
            total_r_all=float(r.sum()),
        )
        rows[key] = res
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)
