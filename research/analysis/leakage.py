"""Leakage diagnostics: lifecycle (``after_entry``) features and look-ahead in feature code.

DESIGN §6: the seed feeds ``tp1_hit``, ``be_moved`` and ``time_to_exit_sec`` to its entry
model; they are known only once the trade has run. :func:`leakage_check` shows what they do to
in-sample and out-of-sample metrics; :func:`perturb_future` checks feature code for look-ahead
(DESIGN §4 "point in time") by changing every bar after a signal and recomputing its features.
Compute only: frames in, frames out.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from research import schema as S
from research.analysis.importance import _proba, default_model
from research.analysis.metrics import probability_metrics
from research.dataset import ClosedTrades, fresh_estimator
from research.errors import InsufficientDataError
from research.features import FEATURES, build_features
from research.scoring.encode import availability, encode, entry_features
from research.splits import PurgedWalkForward, oof_predict

logger = logging.getLogger(__name__)

__all__ = ["LeakageReport", "leakage_check", "perturb_future"]


@dataclass(frozen=True)
class LeakageReport:
    """Result of :func:`leakage_check`.

    Attributes
    ----------
    variants : DataFrame
        One row per feature set (``entry``, ``entry+all_lifecycle``, ``entry+<feature>``):
        ``auc_in``, ``brier_in`` (fitted and scored on all rows), ``auc_oos``, ``brier_oos``
        (purged walk-forward, out of fold), ``auc_gap`` = in - oos, ``n_oos``.
    features : DataFrame
        One row per registered feature column: ``available``, ``univariate_auc`` (max of
        AUC and 1 - AUC of the raw column; no fitting), and for lifecycle features
        ``auc_oos_added`` and ``auc_jump`` (over the ``entry`` variant); ``flagged``, ``reason``.
    flagged : list of str
        Features whose presence makes out-of-sample results implausibly good.
    """

    variants: pd.DataFrame
    features: pd.DataFrame
    flagged: list[str] = field(default_factory=list)


def _univariate_auc(col: pd.Series, y: np.ndarray) -> float:
    """Separating power of one raw column, direction-free; NaN if it cannot rank."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = pd.Series(col.cat.codes, index=col.index).where(col.notna())  # order is arbitrary
    v = pd.to_numeric(col, errors="coerce").to_numpy(float)
    ok = np.isfinite(v)
    if ok.sum() < 2 or len(np.unique(y[ok])) < 2 or np.unique(v[ok]).size < 2:
        return float("nan")
    auc = roc_auc_score(y[ok], v[ok])
    return float(max(auc, 1 - auc))


def leakage_check(
    data: ClosedTrades,
    *,
    estimator: Any = None,
    splitter: Any = None,
    n_splits: int = 5,
    max_jump: float = 0.05,
    max_auc: float = 0.80,
    random_state: int = 0,
) -> LeakageReport:
    """Train with and without ``after_entry`` features; flag those that make results too good.

    Each variant is a light model (:func:`~research.analysis.importance.default_model`, or
    ``estimator``) fitted on the registry-encoded columns. In-sample metrics fit and score
    all rows; out-of-sample ones are purged walk-forward out-of-fold predictions (rows of the
    first block are never predicted and do not count).

    Flag rule (documented, deliberately simple): a feature is flagged when

    * it is a lifecycle feature and adding it alone to the entry features raises the OOS AUC
      by more than ``max_jump`` (0.05 AUC points: on trade outcomes one more honest
      signal-time feature on top of ~40 others moves OOS AUC by ~0.01), or takes the OOS
      AUC above ``max_auc`` (0.80); or
    * any column (entry or lifecycle) alone separates wins from losses with a univariate
      AUC above ``max_auc`` — a value known at signal time with that power is a bug, not an edge.

    Parameters
    ----------
    data : ClosedTrades
        Closed trades whose features hold registered columns, entry and lifecycle (e.g.
        ``ClosedTrades.from_study(study).with_lifecycle()``); unregistered columns are
        ignored. Its times serve the purge.
    estimator : estimator or callable, optional
        An unfitted classifier with ``predict_proba`` (cloned per fit) or a callable
        returning one; default :func:`~research.analysis.importance.default_model`.
    splitter : object with ``split(signal_times, exit_times)``, optional
        Default ``PurgedWalkForward(n_splits, min_train_size=50)``.
    n_splits : int
        Walk-forward folds of the default splitter.
    max_jump, max_auc : float
        Thresholds of the flag rule, AUC points.
    random_state : int
        Seeds the default model.

    Returns
    -------
    LeakageReport
    """
    data.require_rows("leakage_check")
    # the leaky variant is built on purpose here
    registered = entry_features(data.features, allow_after_entry=True)
    entry = [c for c in registered if availability(c) == "signal"]
    late = [c for c in registered if availability(c) == "after_entry"]
    if not entry:
        raise ValueError("no entry feature columns. Fix: pass build_features(...) joined.")
    estimator = estimator or functools.partial(default_model, random_state)
    splitter = splitter or PurgedWalkForward(n_splits, min_train_size=50)
    rows = {S.ENTRY_VARIANT: _variant(data, entry, estimator, splitter)}
    if late:
        rows[f"{S.ENTRY_VARIANT}+all_lifecycle"] = _variant(data, entry + late, estimator, splitter)
        for f in late:
            rows[f"{S.ENTRY_VARIANT}+{f}"] = _variant(data, entry + [f], estimator, splitter)
    variants = pd.DataFrame.from_dict(rows, orient="index")
    variants.index.name = "variant"
    features = _flag_features(data, registered, variants, max_jump=max_jump, max_auc=max_auc)
    flagged = features.index[features["flagged"]].tolist()
    if flagged:
        logger.warning("leakage check flags %s", flagged)
    return LeakageReport(variants=variants, features=features, flagged=flagged)


def _variant(data: ClosedTrades, names: list[str], estimator: Any, splitter: Any) -> dict:
    """In-sample and out-of-fold metrics of a model on the feature columns ``names``."""
    X, y = encode(data.features, names), data.y
    fitted = fresh_estimator(estimator).fit(X, y)
    p_in = _proba(fitted, X)
    p_oos = oof_predict(
        functools.partial(fresh_estimator, estimator),
        X,
        y,
        splitter,
        data.signal_times,
        data.exit_times,
    )
    seen = np.isfinite(p_oos)
    if seen.sum() == 0:
        raise InsufficientDataError(
            "no out-of-fold predictions. Fix: pass more rows or fewer splits."
        )
    m_in, m_oos = probability_metrics(y, p_in), probability_metrics(y[seen], p_oos[seen])
    return {
        "auc_in": m_in["auc"],
        "brier_in": m_in["brier"],
        "auc_oos": m_oos["auc"],
        "brier_oos": m_oos["brier"],
        "auc_gap": m_in["auc"] - m_oos["auc"],
        "n_oos": int(seen.sum()),
    }


def _flag_features(
    data: ClosedTrades,
    registered: list[str],
    variants: pd.DataFrame,
    *,
    max_jump: float,
    max_auc: float,
) -> pd.DataFrame:
    """The per-feature table of :class:`LeakageReport` (flag rule of :func:`leakage_check`)."""
    base = variants.loc[S.ENTRY_VARIANT, "auc_oos"]
    table = []
    for f in registered:
        uni = _univariate_auc(data.features[f], data.y)
        row = {"feature": f, "available": availability(f), "univariate_auc": uni}
        reasons = []
        if availability(f) == "after_entry":
            added = variants.loc[f"{S.ENTRY_VARIANT}+{f}", "auc_oos"]
            row.update(auc_oos_added=added, auc_jump=added - base)
            if added - base > max_jump:
                reasons.append(f"OOS AUC +{added - base:.2f} > {max_jump} when added")
            if added > max_auc:
                reasons.append(f"OOS AUC {added:.2f} > {max_auc} with it")
        if uni > max_auc:
            reasons.append(f"alone separates wins (AUC {uni:.2f} > {max_auc})")
        table.append({**row, "flagged": bool(reasons), "reason": "; ".join(reasons)})
    return pd.DataFrame(table).set_index("feature")


def _scramble(bars: pd.DataFrame, start: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Shuffle the order of the bars opening at or after ``start``, rescale their prices by one
    random factor and their volumes by another; each bar stays a valid OHLCV bar."""
    out = bars.copy()
    future = np.flatnonzero(out.index >= start)
    if future.size == 0:
        return out
    cols = [S.OPEN, S.HIGH, S.LOW, S.CLOSE]
    prices = out[cols].to_numpy()[future][rng.permutation(future.size)]
    out.iloc[future, [out.columns.get_loc(c) for c in cols]] = prices * rng.uniform(1.05, 1.5)
    vol = out[S.VOLUME].to_numpy()[future][rng.permutation(future.size)]
    out.iloc[future, out.columns.get_loc(S.VOLUME)] = vol * rng.uniform(1.5, 3.0)
    return out


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality with NaN == NaN (categories compared as objects)."""
    a, b = a.astype(object).to_numpy(), b.astype(object).to_numpy()
    return np.array([(pd.isna(x) and pd.isna(z)) or x == z for x, z in zip(a, b, strict=True)])


def perturb_future(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    *,
    feature_fn: Callable[[Any, pd.DataFrame], pd.DataFrame] = build_features,
    n_checks: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Look-ahead test: change every bar after a signal and list the features that move.

    For ``n_checks`` sampled signals (those with at least one later bar), every bar opening
    at or after the signal's ``signal_time`` (the close of the bar that produced it) is
    shuffled in time and rescaled (prices x U(1.05, 1.5), volumes x U(1.5, 3)); the signal's
    features are recomputed with ``feature_fn(perturbed_candles, one_signal)`` and compared
    with ``feature_fn(candles, one_signal)``. A point-in-time (``signal``) feature must never
    change; lifecycle features computed from simulated outcomes will.

    Parameters
    ----------
    candles : DataFrame or mapping of symbol -> DataFrame
    signals : DataFrame
        Signals frame (DESIGN §3).
    feature_fn : callable
        ``(candles, signals) -> features frame`` indexed like ``build_features``.
    n_checks : int
        Signals sampled (all eligible ones when fewer).
    seed : int

    Returns
    -------
    DataFrame
        Indexed by feature: ``available`` (registry, or ``'unregistered'``), ``n_checks``,
        ``n_changed``, ``share`` (= n_changed / n_checks), sorted by ``n_changed`` descending.
    """
    S.validate_signals(signals)
    if n_checks < 1:
        raise ValueError(f"n_checks must be >= 1, got {n_checks}. Fix: pass e.g. 20.")

    def bars_of(symbol: str) -> pd.DataFrame:
        return candles if isinstance(candles, pd.DataFrame) else candles[symbol]

    last_open = signals[S.SYMBOL].map(lambda s: bars_of(s).index[-1])
    eligible = np.flatnonzero((signals[S.SIGNAL_TIME] <= last_open).to_numpy())
    if eligible.size == 0:
        raise ValueError("no signal has a later bar to perturb. Fix: pass earlier signals.")
    rng = np.random.default_rng(seed)
    picks = rng.choice(eligible, size=min(n_checks, eligible.size), replace=False)
    changed: dict[str, int] = {}
    for i in np.sort(picks):
        one = signals.iloc[[i]]
        symbol, t = one[S.SYMBOL].iloc[0], pd.Timestamp(one[S.SIGNAL_TIME].iloc[0])
        moved = _scramble(bars_of(symbol), t, rng)
        perturbed = moved if isinstance(candles, pd.DataFrame) else {**candles, symbol: moved}
        before, after = feature_fn(candles, one), feature_fn(perturbed, one)
        for col in before.columns:
            changed[col] = changed.get(col, 0) + int(not _same(before[col], after[col]).all())
    n = len(picks)
    out = pd.DataFrame(
        {
            "available": [
                FEATURES[c].available if c in FEATURES else "unregistered" for c in changed
            ],
            "n_checks": n,
            "n_changed": list(changed.values()),
        },
        index=pd.Index(list(changed), name="feature"),
    )
    out["share"] = out["n_changed"] / n
    leaks = out.index[(out["available"] == "signal") & (out["n_changed"] > 0)].tolist()
    if leaks:
        logger.warning("look-ahead: signal-time features %s change with future bars", leaks)
    return out.sort_values("n_changed", ascending=False, kind="stable")
