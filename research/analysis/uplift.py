"""What the ML filter was worth, on one cost basis, with intervals that respect overlap.

Computed on a replay's decisions frame (:func:`research.replay.replay`), closed signals only
(censored ones never got an outcome). R is in multiples of the initial risk, and every figure
names its basis:

* **gross**: ``rr_gross``, what the bars alone gave (no fees, no slippage);
* **net**: ``rr_if_executed``, R net of the venue's costs for *every* signal, executed or not —
  the only fair baseline, since a phantom has no costs only because it was not traded.

The filter's **uplift** is ``mean R(passed) - mean R(all signals)`` where *passed* is the
filter's own choice (``score >= threshold``; exploration trades are left out of it). It splits
exactly into

* **skill** — the uplift in *gross* R: did the filter pick trades whose price path was better?
* **cost selection** — ``net uplift - skill`` = ``mean cost(all) - mean cost(passed)``: did it
  pick cheaper trades (wider stops)? That pays, but it is not forecasting skill; on a null
  market it is all a filter can find.

Trades overlap in time (one trade spans many later signals) and share price paths, so
intervals come from a circular block bootstrap over decisions in time order whose block is at
least the typical overlap in signals (:func:`overlap_block`), not a fixed ``n ** (1/3)``. No
interval is given below :data:`MIN_PASSED` passed trades: the note says "too few". The
**null control** (:func:`rotation_null`) circularly shifts the filter's choices against the
outcomes — same number of passes, same clustering, no information — and shows where its uplift
falls. The meta-labeling metrics (precision, recall, F1 and AUC of the filter for "the trade
makes money net of costs", against taking every signal) and the per-trade Sharpe ratio of the
passed trades with its probabilistic Sharpe ratio against the unfiltered one complete it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from research import schema as S
from research.costs import outcome_on_basis

GROUPS = ("executed", "phantoms", "all")
ERAS = ("all", "heuristic", "model")
MIN_PASSED = 30  # no interval under this many passed trades
TOO_FEW = f"too few passed trades (< {MIN_PASSED}) for an interval"


def _closed(decisions: pd.DataFrame) -> pd.DataFrame:
    d = decisions.loc[~decisions[S.CENSORED].to_numpy(bool)]
    return d.sort_values([S.SIGNAL_TIME, S.SIGNAL_ID], kind="stable")


def _in_era(decisions: pd.DataFrame, era: str) -> pd.DataFrame:
    """Rows of ``era``: all, or those scored by the heuristic / by a trained model."""
    if era == "all":
        return decisions
    source = "ml" if era == "model" else "heuristic"
    return decisions.loc[(decisions[S.SCORE_SOURCE] == source).to_numpy()]


def _gross(d: pd.DataFrame) -> np.ndarray:
    """Gross R per signal (older frames without ``rr_gross``: net + cost_r if known)."""
    if S.RR_GROSS in d:
        return d[S.RR_GROSS].to_numpy(np.float64)
    if S.COST_R in d:
        return d[S.RR_IF_EXECUTED].to_numpy(np.float64) + d[S.COST_R].to_numpy(np.float64)
    return np.full(len(d), np.nan)  # no way to know: never call net "gross"


def _stats(gross: np.ndarray, net: np.ndarray, won: np.ndarray) -> dict[str, float]:
    n = len(net)
    return {
        "trades": n,
        "win_rate": float(won.mean()) if n else np.nan,
        "mean_r": float(net.mean()) if n else np.nan,
        "total_r": float(net.sum()),
        "mean_r_gross": float(gross.mean()) if n else np.nan,
        "total_r_gross": float(gross.sum()),
    }


def replay_summary(decisions: pd.DataFrame, by: str = S.STRATEGY) -> pd.DataFrame:
    """Trades, win rate and R per group (``by`` value and ``'all'``) and set, one basis.

    Columns ``[by, 'set', 'trades', 'win_rate', 'mean_r', 'total_r', 'mean_r_gross',
    'total_r_gross']``; ``set`` is one of :data:`GROUPS`. ``mean_r``/``total_r`` are R **net**
    of the venue's costs for every set (phantoms as if they had been executed), the ``_gross``
    columns the same trades before costs; ``win_rate`` is the share of non-timeout trades with
    R net of costs > 0 (the simulator's rule, on the net basis for every set).
    """
    closed = _closed(decisions)
    rows = []
    for key in [*sorted(pd.unique(closed[by])), "all"]:
        d = closed if key == "all" else closed.loc[(closed[by] == key).to_numpy()]
        executed = d[S.WAS_EXECUTED].to_numpy(bool)
        gross, net = _gross(d), d[S.RR_IF_EXECUTED].to_numpy(np.float64)
        # the simulator's rule on the net basis for every set (a phantom's recorded outcome
        # is gross)
        won = outcome_on_basis(d[S.OUTCOME], net) == "win"
        sets = {
            "executed": _stats(gross[executed], net[executed], won[executed]),
            "phantoms": _stats(gross[~executed], net[~executed], won[~executed]),
            "all": _stats(gross, net, won),
        }
        rows += [{by: key, "set": name, **sets[name]} for name in GROUPS]
    return pd.DataFrame(rows)


def overlap_block(signal_times, exit_times) -> int:
    """Bootstrap block in signals: the mean number of signals opened while a trade is open.

    ``signal_times``/``exit_times`` of the closed signals in time order. Outcomes of trades
    alive at once share price paths, so a block shorter than that overlap understates the
    variance. At least ``ceil(n ** (1/3))``, the usual rate for a mean.
    """
    t = pd.DatetimeIndex(signal_times).as_unit("ns").asi8
    e = pd.DatetimeIndex(exit_times).as_unit("ns").asi8
    n = len(t)
    if n == 0:
        return 1
    alive = np.searchsorted(t, e, side="left") - np.arange(n)  # signals in [t_i, e_i)
    return int(min(n, max(np.ceil(n ** (1 / 3)), np.ceil(np.mean(np.maximum(alive, 1))))))


def _block_replicates(values: np.ndarray, block: int, n_boot: int, seed: int) -> np.ndarray:
    """Sums of ``values`` (n x k) over circular-block bootstrap resamples: (n_boot x k)."""
    n, k = values.shape
    ext = np.vstack([values, values[: block - 1]])
    csum = np.vstack([np.zeros((1, k)), np.cumsum(ext, axis=0)])
    block_sums = csum[block : block + n] - csum[:n]
    n_blocks = int(np.ceil(n / block))
    starts = np.random.default_rng(seed).integers(0, n, size=(n_boot, n_blocks))
    return block_sums[starts].sum(axis=1), n_blocks * block


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
        R per closed signal, in time order.
    passed : array of bool
        The filter's choice per signal.
    n_boot : int
        Bootstrap replicates.
    block : int, optional
        Block length in signals; default ``ceil(n ** (1/3))`` (pass :func:`overlap_block`
        for trades that overlap).
    confidence : float
        Two-sided level of the percentile interval.
    seed : int

    Returns
    -------
    dict
        ``uplift``, ``ci_low``, ``ci_high`` (R per trade), ``p_le_0`` (share of replicates
        with uplift <= 0), ``n``, ``n_passed``, ``block``.
    """
    out = _bootstrap(
        [np.asarray(r, dtype=np.float64)],
        np.asarray(passed, dtype=bool),
        n_boot=n_boot,
        block=block,
        confidence=confidence,
        seed=seed,
    )
    return {k: out[k][0] if isinstance(out[k], list) else out[k] for k in out}


def _bootstrap(rs, passed, *, n_boot, block, confidence, seed) -> dict:
    n, m = len(passed), len(rs)
    out = {
        "n": n,
        "n_passed": int(passed.sum()),
        "block": 0,
        "uplift": [np.nan] * m,
        "ci_low": [np.nan] * m,
        "ci_high": [np.nan] * m,
        "p_le_0": [np.nan] * m,
    }
    if n == 0 or not passed.any():
        return out
    block = min(int(block or max(1, int(np.ceil(n ** (1 / 3))))), n)
    out["block"] = block
    cols = [passed.astype(np.float64)] + [r * passed for r in rs] + list(rs)
    tot, length = _block_replicates(np.column_stack(cols), block, n_boot, seed)
    alpha = (1.0 - confidence) / 2.0
    for j, r in enumerate(rs):
        out["uplift"][j] = float(r[passed].mean() - r.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            stat = tot[:, 1 + j] / tot[:, 0] - tot[:, 1 + m + j] / length
        stat = stat[np.isfinite(stat)]
        out["ci_low"][j], out["ci_high"][j] = (
            float(q) for q in np.quantile(stat, [alpha, 1 - alpha])
        )
        out["p_le_0"][j] = float((stat <= 0).mean())
    return out


def rotation_null(
    r: np.ndarray,
    passed: np.ndarray,
    *,
    min_shift: int,
    n_shifts: int = 200,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Null control: the uplift of the filter's choices circularly shifted against outcomes.

    Shifts of at least ``min_shift`` signals (the bootstrap block) keep the number and the
    clustering of passes but break any link with the outcomes. Returns the null's ``low`` and
    ``high`` quantiles and ``p`` = share of shifts whose uplift >= the observed one (one-sided).
    """
    n = len(r)
    observed = r[passed].mean() - r.mean() if passed.any() else np.nan
    shifts = np.arange(min_shift, n - min_shift + 1)
    if len(shifts) < 10 or not passed.any():
        return {"null_low": np.nan, "null_high": np.nan, "null_p": np.nan}
    shifts = shifts[np.linspace(0, len(shifts) - 1, min(n_shifts, len(shifts))).astype(int)]
    null = np.array([r[np.roll(passed, s)].mean() for s in shifts]) - r.mean()
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(null, [alpha, 1 - alpha])
    return {
        "null_low": float(low),
        "null_high": float(high),
        "null_p": float((null >= observed).mean()),
    }


def _meta(score, passed, profitable) -> dict[str, float]:
    """Meta-labeling metrics of the filter for "profitable net of costs"."""
    tp = float((passed & profitable).sum())
    precision = tp / passed.sum() if passed.any() else np.nan
    recall = tp / profitable.sum() if profitable.any() else np.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else np.nan
    ok = np.isfinite(score)
    auc = np.nan
    if ok.any() and 0 < profitable[ok].sum() < ok.sum():
        ranks = sps.rankdata(score[ok])
        pos = profitable[ok]
        auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    return {
        "base_rate": float(profitable.mean()) if len(profitable) else np.nan,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": float(auc),
    }


def sharpe(r: np.ndarray) -> float:
    """Per-trade Sharpe ratio ``mean / std`` of R (not annualised)."""
    return float(r.mean() / r.std(ddof=1)) if len(r) > 2 and r.std(ddof=1) > 0 else np.nan


def probabilistic_sharpe(r: np.ndarray, benchmark: float, n_eff: float | None = None) -> float:
    """P(true per-trade Sharpe of ``r`` > ``benchmark``) (Bailey & López de Prado, 2012).

    ``n_eff`` (default ``len(r)``) is the number of independent trades — overlapping trades
    are fewer than their count, so callers pass ``n / overlap``.
    """
    sr = sharpe(r)
    n = len(r) if n_eff is None else n_eff
    if not np.isfinite(sr) or not np.isfinite(benchmark) or n < 3:
        return np.nan
    skew, kurt = sps.skew(r), sps.kurtosis(r, fisher=False)
    denom = np.sqrt(max(1 - skew * sr + (kurt - 1) / 4 * sr**2, 1e-12))
    return float(sps.norm.cdf((sr - benchmark) * np.sqrt(n - 1) / denom))


def _group_row(d, passed_col, *, n_boot, block, confidence, seed) -> dict:
    gross, net = _gross(d), d[S.RR_IF_EXECUTED].to_numpy(np.float64)
    passed = d[passed_col].to_numpy(bool)
    b = block or overlap_block(d[S.SIGNAL_TIME], d[S.EXIT_TIME])
    boot = _bootstrap(
        [net, gross], passed, n_boot=n_boot, block=b, confidence=confidence, seed=seed
    )
    n_passed = int(passed.sum())
    enough = n_passed >= MIN_PASSED
    row = {
        "n": len(d),
        "n_passed": n_passed,
        "share_passed": n_passed / len(d) if len(d) else np.nan,
        "block": boot["block"],
    }
    for name, j in (("uplift", 0), ("skill", 1)):
        row[name] = boot["uplift"][j]
        lo, hi, p = boot["ci_low"][j], boot["ci_high"][j], boot["p_le_0"][j]
        row[f"{name}_low" if name == "skill" else "ci_low"] = lo if enough else np.nan
        row[f"{name}_high" if name == "skill" else "ci_high"] = hi if enough else np.nan
        row[f"{name}_p" if name == "skill" else "p_le_0"] = p if enough else np.nan
    row["cost_selection"] = row["uplift"] - row["skill"]
    null = rotation_null(gross, passed, min_shift=max(b, 1))
    row.update({k: v if enough else np.nan for k, v in null.items()})
    row.update(
        mean_r_passed=float(net[passed].mean()) if n_passed else np.nan,
        mean_r_all=float(net.mean()) if len(d) else np.nan,
        mean_gross_passed=float(gross[passed].mean()) if n_passed else np.nan,
        mean_gross_all=float(gross.mean()) if len(d) else np.nan,
        total_r_passed=float(net[passed].sum()),
        total_r_all=float(net.sum()),
    )
    row.update(_meta(d[S.ML_SCORE].to_numpy(np.float64), passed, net > 0))
    row["sharpe_passed"] = sharpe(net[passed])
    row["sharpe_all"] = sharpe(net)
    n_eff = n_passed / max(b, 1)  # overlapping trades: about one independent per block
    row["psr"] = probabilistic_sharpe(net[passed], row["sharpe_all"], n_eff) if enough else np.nan
    p = d[S.P_EXECUTE].to_numpy(np.float64) if S.P_EXECUTE in d else np.ones(len(d))
    ex = d[S.WAS_EXECUTED].to_numpy(bool) & (p > 0)
    # value of "take every signal" seen only through executed trades (inverse propensity)
    row["mean_r_all_ipw"] = (
        float(np.sum(net[ex] / p[ex]) / np.sum(1 / p[ex])) if ex.any() and (p > 0).all() else np.nan
    )
    row["note"] = "" if enough else TOO_FEW
    return row


def filter_uplift(
    decisions: pd.DataFrame,
    by: str = S.STRATEGY,
    *,
    passed: str = S.PASSED,
    era: str = "all",
    n_boot: int = 1000,
    block: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The filter's uplift per ``by`` value and overall, gross and net, with intervals.

    Parameters
    ----------
    decisions : DataFrame
        A replay's decisions.
    by : str
        Grouping column (one row per value, plus ``'all'``).
    passed : str
        Column of the filter's choice: ``'passed'`` (the rule in force) or ``'passed_seed'``.
    era : {'all', 'heuristic', 'model'}
        Signals scored by either, the rule-based fallback only, or a trained model only.
    n_boot, block, confidence, seed :
        Bootstrap settings; ``block=None`` takes :func:`overlap_block` of each group.

    Returns
    -------
    DataFrame
        Indexed by ``by``. R per trade: ``uplift`` (net) with ``ci_low``, ``ci_high``,
        ``p_le_0``; ``skill`` (gross) with ``skill_low``, ``skill_high``, ``skill_p``;
        ``cost_selection`` (net - gross); ``null_low``/``null_high``/``null_p`` (rotation null
        of the gross uplift); ``mean_r_passed``, ``mean_r_all`` (net), ``mean_gross_passed``,
        ``mean_gross_all``, ``total_r_passed``, ``total_r_all`` (net); meta-labeling
        ``base_rate``, ``precision``, ``recall``, ``f1``, ``auc``; ``sharpe_passed``,
        ``sharpe_all`` (per trade, net) and ``psr``; ``mean_r_all_ipw``; ``n``, ``n_passed``,
        ``share_passed``, ``block``, ``note`` (intervals are NaN below :data:`MIN_PASSED`).
    """
    if era not in ERAS:
        raise ValueError(f"era={era!r} is unknown. Fix: use one of {ERAS}.")
    S.require_columns(decisions, [passed, S.RR_IF_EXECUTED, S.CENSORED], "decisions")
    closed = _closed(_in_era(decisions, era))
    rows = {}
    for key in [*sorted(pd.unique(closed[by])), "all"]:
        d = closed if key == "all" else closed.loc[(closed[by] == key).to_numpy()]
        rows[key] = _group_row(
            d, passed, n_boot=n_boot, block=block, confidence=confidence, seed=seed
        )
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)


def uplift_table(
    decisions: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> pd.DataFrame:
    """The verdict's table: every strategy x era x rule (in force vs seed), one row each.

    Long format with columns ``rule``, ``era``, ``strategy`` and those of
    :func:`filter_uplift`; eras without any closed signal are left out.
    """
    frames = []
    rules = [("in force", S.PASSED)] + (
        [("seed", S.PASSED_SEED)] if S.PASSED_SEED in decisions else []
    )
    for rule, col in rules:
        for era in ERAS:
            if (~_in_era(decisions, era)[S.CENSORED].to_numpy(bool)).sum() == 0:
                continue
            t = filter_uplift(
                decisions, passed=col, era=era, n_boot=n_boot, seed=seed, confidence=confidence
            )
            frames.append(t.reset_index().assign(rule=rule, era=era))
    out = pd.concat(frames, ignore_index=True)
    first = ["rule", "era", S.STRATEGY]
    return out[first + [c for c in out.columns if c not in first]]
