"""Challenger vs champion: a fair comparison, the publish decision, publication, thresholds.

The second half of ``pipelines/retrain_publish.ipynb`` (the first is :mod:`research.retrain`).

**Fair window.** Both models are scored on the same OOS trades, restricted to those signalled
strictly after *both* training cut-offs: the challenger's (the last exit time it trained on)
and the champion's (``train_end`` in its signed metadata). A champion that trained on part of
the OOS window would otherwise be judged on trades it has seen.

**Decision rule** (:func:`decide`), in this order:

1. no champion yet -> publish;
2. fewer than ``min_window`` trades in the fair window -> keep the champion (too little to
   tell), unless ``force``;
3. challenger Brier <= champion Brier - ``min_improvement`` -> publish; otherwise keep,
   unless ``force``.

The primary metric is the **Brier score**: the score is used as a probability (``100 * P(win)``
compared with the break-even ``p_min`` by the thresholds), so calibration matters as much as
ranking, which AUC alone ignores. Brier is a proper scoring rule like log-loss, but bounded:
an isotonic calibrator outputs exact 0 or 1 on its end plateaus, and one such confident miss
dominates a log-loss over a window of a few hundred trades. AUC, log-loss and ECE are reported.

**What is published** is the evaluated challenger as is: what was measured is what ships, and
its ``train_end`` (before the OOS window) keeps the next run's comparison fair. A refit on all
trades would ship an unmeasured model whose cut-off leaves the next run nothing to compare on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.metrics import probability_metrics, reliability_table
from research.dataset import ClosedTrades
from research.jsonable import to_jsonable
from research.notify import notifier_from_env
from research.retrain import RetrainConfig, Split, Stores
from research.stores.registry import LoadedModel
from research.thresholds import BUCKET_STATS_COLUMNS, ThresholdConfig, ThresholdPolicy

logger = logging.getLogger(__name__)

PIPELINE = "retrain_publish"
PRIMARY = "brier"
METRICS = ("n", "win_rate", "auc", "brier", "log_loss", "ece")


def model_metrics(y, p) -> dict[str, float]:
    """``n``, ``win_rate`` and :func:`probability_metrics` (all NaN but n for no trades)."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    if not len(y):
        return {"n": 0, **{k: float("nan") for k in METRICS[1:]}}
    return {"n": int(len(y)), "win_rate": float(y.mean()), **probability_metrics(y, p)}


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _timestamp(value) -> pd.Timestamp | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return S.utc_timestamp(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class Comparison:
    """Challenger and champion on the fair window (and the challenger on all of the OOS).

    ``challenger``/``champion``: :func:`model_metrics` on the window (``champion`` None without
    one); ``challenger_oos``: on the whole OOS window (what is published with the model);
    ``window_start``: trades signalled strictly after it are compared; ``reliability``:
    reliability tables stacked with a ``rule`` column (for :func:`research.plots.plot_reliability`).
    """

    challenger: dict
    challenger_oos: dict
    champion: dict | None
    champion_version: int | None
    challenger_train_end: pd.Timestamp
    champion_train_end: pd.Timestamp | None
    window_start: pd.Timestamp
    reliability: pd.DataFrame
    note: str = ""

    @property
    def n_window(self) -> int:
        return int(self.challenger["n"])

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per model and scope: trades, win rate, AUC, Brier, log-loss, ECE."""
        rows = {
            "challenger, all OOS": {
                "trained_until": self.challenger_train_end,
                **self.challenger_oos,
            },
            "challenger, fair window": {
                "trained_until": self.challenger_train_end,
                **self.challenger,
            },
        }
        if self.champion is not None:
            rows[f"champion v{self.champion_version}, fair window"] = {
                "trained_until": self.champion_train_end,
                **self.champion,
            }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "model"
        return frame


def compare_models(
    challenger, champion: LoadedModel | None, data: ClosedTrades, split: Split
) -> Comparison:
    """Score both models on the OOS trades signalled after both training cut-offs.

    A champion without ``train_end`` in its metadata may have trained on any trade, so the
    fair window is empty then (the decision keeps it unless forced); ``note`` says so.
    """
    oos = split.oos
    y, trades, feats = data.y, data.trades, data.features
    p_oos = challenger.predict_proba(feats.iloc[oos])[:, 1]
    cutoff, note, champ_end = split.train_end, "", None
    if champion is not None:
        champ_end = _timestamp(champion.meta.get("train_end"))
        if champ_end is None:
            note = f"champion v{champion.version} has no train_end: no trade is known unseen"
            cutoff = trades[S.SIGNAL_TIME].max()
        else:
            cutoff = max(cutoff, champ_end)
    in_window = (trades[S.SIGNAL_TIME].iloc[oos] > cutoff).to_numpy()
    window = oos[in_window]
    mine = model_metrics(y[window], p_oos[in_window])
    theirs, tables = None, []
    if len(window):
        tables.append(reliability_table(y[window], p_oos[in_window]).assign(rule="challenger"))
    else:
        tables.append(reliability_table(y[oos], p_oos).assign(rule="challenger (all OOS)"))
    if champion is not None:
        p_champ = champion.model.predict_proba(feats.iloc[window])[:, 1] if len(window) else []
        theirs = model_metrics(y[window], p_champ)
        if len(window):
            tables.append(
                reliability_table(y[window], p_champ).assign(rule=f"champion v{champion.version}")
            )
    logger.info(
        "fair window: %d of %d OOS trades signalled after %s", len(window), len(oos), cutoff
    )
    return Comparison(
        challenger=mine,
        challenger_oos=model_metrics(y[oos], p_oos),
        champion=theirs,
        champion_version=None if champion is None else champion.version,
        challenger_train_end=split.train_end,
        champion_train_end=champ_end,
        window_start=cutoff,
        note=note,
        reliability=pd.concat(tables).reset_index(),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """Whether to publish the challenger, why, and the numbers it rests on (fair window)."""

    publish: bool
    reason: str
    challenger: dict
    champion: dict | None
    champion_version: int | None
    forced: bool = False

    def summary(self) -> pd.Series:
        """The decision, its reason and the primary metric of both models, as one Series."""
        champ = np.nan if self.champion is None else self.champion[PRIMARY]
        return pd.Series(
            {
                "publish": self.publish,
                "forced": self.forced,
                "reason": self.reason,
                f"challenger_{PRIMARY}": self.challenger[PRIMARY],
                f"champion_{PRIMARY}": champ,
                "champion_version": self.champion_version,
                "window_trades": self.challenger["n"],
            },
            name="decision",
        )


def decide(comparison: Comparison, config: RetrainConfig) -> Decision:
    """Apply the module's decision rule (Brier primary) with ``min_window``,
    ``min_improvement`` and ``force`` from ``config``."""
    c, champ, v = comparison.challenger, comparison.champion, comparison.champion_version
    if champ is None:
        publish, reason = True, "no champion yet: the challenger becomes the first version"
    elif comparison.n_window < config.min_window:
        publish = False
        reason = (
            f"only {comparison.n_window} OOS trades were signalled after both training "
            f"cut-offs (after {comparison.window_start}), fewer than min_window="
            f"{config.min_window}: too few to compare fairly, champion v{v} kept. Fix: "
            "wait for more trades, lower min_window, or force=True"
        )
        if comparison.note:
            reason += f" ({comparison.note})"
    else:
        bar = champ[PRIMARY] - config.min_improvement
        publish = bool(c[PRIMARY] <= bar)
        verdict = "<=" if publish else ">"
        reason = (
            f"challenger Brier {c[PRIMARY]:.4f} {verdict} champion v{v} Brier "
            f"{champ[PRIMARY]:.4f} - min_improvement {config.min_improvement:.4f} on "
            f"{comparison.n_window} fair-window trades: "
            + ("challenger published" if publish else f"champion v{v} kept")
        )
    forced = config.force and not publish
    if forced:
        publish, reason = True, f"forced (force=True) despite: {reason}"
    logger.info("decision: %s", reason)
    return Decision(
        publish=publish,
        reason=reason,
        challenger=c,
        champion=champ,
        champion_version=v,
        forced=forced,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Publication:
    """The champion after the run: ``version`` (new if ``published``) and the one before."""

    published: bool
    version: int | None
    previous: int | None


def publish_decision(
    stores: Stores,
    decision: Decision,
    challenger,
    data: ClosedTrades,
    split: Split,
    comparison: Comparison,
) -> Publication:
    """Publish the evaluated challenger when ``decision.publish``; otherwise change nothing.

    The version carries the challenger's metrics on the whole OOS window, its training window
    (first and last exit time it trained on) and row count; ``registry.publish`` mirrors it in
    SQL ``model_versions`` and moves the champion pointers.
    """
    # the champion the comparison was made against (None before the first publish)
    previous = decision.champion_version
    if not decision.publish:
        logger.info("%s: nothing published, champion stays v%s", data.strategy, previous)
        return Publication(published=False, version=previous, previous=previous)
    metrics = {k: float(v) for k, v in comparison.challenger_oos.items() if np.isfinite(v)}
    version = stores.registry.publish(
        data.strategy,
        challenger,
        metrics=metrics,
        train_start=split.train_start,
        train_end=split.train_end,
        n_rows=len(split.train),
    )
    current = stores.registry.champion_version(data.strategy)
    if current != version:  # a racing publisher with a newer version holds the pointer
        logger.warning(
            "%s v%d published, but v%s is the champion (newer)", data.strategy, version, current
        )
    return Publication(published=True, version=current, previous=previous)


@dataclass(frozen=True, kw_only=True, slots=True)
class ThresholdUpdate:
    """The ``qcal:*`` thresholds written (``table``: the adapter's per-bucket statistics);
    nothing (empty ``thresholds``, a ``note`` saying why) when the run kept the champion."""

    thresholds: dict
    table: pd.DataFrame
    n_trades: int
    ev_threshold: float | None
    scored_after: pd.Timestamp | None
    champion_version: int
    note: str = ""  # why nothing was written, when nothing was


def _nothing_written(after, champion: LoadedModel, *, note: str = "") -> ThresholdUpdate:
    """The :class:`ThresholdUpdate` of a run that leaves the live thresholds as they are."""
    return ThresholdUpdate(
        thresholds={},
        table=pd.DataFrame(columns=list(BUCKET_STATS_COLUMNS)),
        n_trades=0,
        ev_threshold=None,
        scored_after=after,
        champion_version=champion.version,
        note=note,
    )


def _scored_unseen_trades(data: ClosedTrades, champion: LoadedModel, after) -> pd.DataFrame:
    """Trades signalled after ``after`` (the champion's ``train_end``; None: every trade, with
    a warning) with outcome, R, session, volatility regime and the champion's ``qscore``."""
    trades = data.trades
    rows = np.arange(len(trades))
    if after is not None:
        rows = np.flatnonzero((trades[S.SIGNAL_TIME] > after).to_numpy())
    else:
        logger.warning(
            "champion v%d has no train_end: thresholds fitted on every trade, some of "
            "which it may have trained on",
            champion.version,
        )
    columns = [c for c in (S.OUTCOME, S.PNL_PERCENT, S.REALIZED_RR) if c in trades]
    frame = trades.iloc[rows][columns].join(
        data.features.iloc[rows][[S.SESSION, S.VOLATILITY_REGIME]]
    )
    frame[S.QSCORE] = champion.model.score_signals(data.features.iloc[rows]) if len(rows) else []
    return frame


def update_thresholds(
    stores: Stores,
    data: ClosedTrades,
    champion: LoadedModel,
    config: RetrainConfig,
    *,
    publication: Publication,
) -> ThresholdUpdate:
    """Score recent trades with the (verified) champion; refit and save the thresholds.

    Only a run that **published** refreshes the live thresholds: when the champion was kept
    (``publication.published`` is False) nothing is written and the ``qcal:*`` keys stay
    byte-identical. They were fitted when that champion was published (by the publishing run,
    or the online scorer) and a keep-run sees fewer unseen trades than that fit did (it would
    overwrite thresholds refitted on a few hundred trades, most buckets missing).

    Only trades signalled after the champion's ``train_end`` are scored: a forest's scores of
    its own training rows are over-confident and would set the thresholds too low. Writes
    ``qcal:{strategy}:thr`` and ``:last_train_count`` and, when wins and losses allow, the
    strategy-wide EV threshold ``ml:{strategy}:threshold`` (score points, as the replay saves
    it). With no such trade nothing is written (the previous thresholds stay).
    """
    strategy = data.strategy
    after = _timestamp(champion.meta.get("train_end"))
    if not publication.published:
        note = (
            f"champion v{champion.version} kept: live thresholds left as they are (only "
            "a published model refreshes them)"
        )
        logger.info("%s %s", strategy, note)
        return _nothing_written(after, champion, note=note)
    frame = _scored_unseen_trades(data, champion, after)
    cfg = ThresholdConfig(rule=config.threshold_rule)
    policy = ThresholdPolicy.from_trades(frame, config=cfg)  # logs why a part is missing
    adapter = policy.adapter
    if adapter is None:
        # without bucket thresholds the previous qcal:* keys stay, and so does the EV threshold
        logger.warning("%s thresholds not updated (no qscore buckets)", strategy)
        return _nothing_written(after, champion)
    table, n = adapter.to_dict(), len(frame)
    stores.state.save_thresholds(strategy, table, n)
    ev = None
    if policy.ev is not None:
        ev = policy.ev.score
        stores.state.save_threshold(strategy, ev)
    else:
        logger.warning("%s EV threshold not updated (no break-even)", strategy)
    logger.info(
        "%s thresholds: %d buckets from %d trades scored by v%d",
        strategy,
        len(table),
        n,
        champion.version,
    )
    return ThresholdUpdate(
        thresholds=table,
        table=adapter.bucket_stats_,
        n_trades=n,
        ev_threshold=ev,
        scored_after=after,
        champion_version=champion.version,
    )


def finish_run(
    stores: Stores,
    run_id: str,
    *,
    decision: Decision,
    publication: Publication,
    thresholds: ThresholdUpdate,
) -> dict:
    """Close the ``pipeline_runs`` row as ``ok``; return the run's result (plain JSON values).

    The result is what the runner records: ``model_version``, ``published``, ``reason`` and
    ``metrics`` (both models' fair-window numbers, the thresholds written).
    """
    metrics = {f"challenger_{k}": v for k, v in decision.challenger.items()}
    if decision.champion is not None:
        metrics |= {f"champion_{k}": v for k, v in decision.champion.items()}
    metrics |= {
        "champion_version_before": publication.previous,
        "threshold_buckets": len(thresholds.thresholds),
        "threshold_trades": thresholds.n_trades,
        "ev_threshold": thresholds.ev_threshold,
    }
    result = to_jsonable(
        {
            "model_version": publication.version,
            "published": publication.published,
            "forced": decision.forced,
            "reason": decision.reason,
            "metrics": metrics,
        }
    )
    stores.audit.finish_run(
        run_id, "ok", metrics=result["metrics"], model_version=publication.version
    )
    return result


def notify_result(result: dict, strategy: str, *, enabled: bool = True) -> bool:
    """Send "published vN" or "kept vM" with the key metrics (:func:`notifier_from_env`).

    Returns whether it was delivered (False when ``enabled`` is False: nothing is sent).
    """
    if not enabled:
        return False
    verb = "published" if result["published"] else "kept"
    m = result["metrics"]
    context = {"reason": result["reason"]}
    for who in ("challenger", "champion"):
        if f"{who}_{PRIMARY}" in m:
            context[who] = ", ".join(f"{k} {_fmt(m.get(f'{who}_{k}'))}" for k in METRICS)
    text = f"Phantom Lab {PIPELINE} {strategy}: {verb} v{result['model_version']}"
    return notifier_from_env().send(text, **context)
