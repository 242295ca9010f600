"""Save and restore the online loop's state: scorers, thresholds, phantoms, published models.

``save_replay`` writes what a replay (:mod:`research.replay`) ends with into the seed's keys;
``restore_scorer`` rebuilds an :class:`~research.scoring.online.MLScorer` from the state keys
and the registry's verified champion, scoring exactly as the saved one did.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from research import schema as S
from research.scoring.config import ScorerConfig
from research.scoring.online import MLScorer
from research.signals import GATE_COLUMNS
from research.stores.registry import ModelRegistry
from research.stores.state import StateStore

logger = logging.getLogger(__name__)

#: The signal and outcome columns of a completed-phantom record (``phantom:completed``).
RECORD_COLUMNS = (
    S.SIGNAL_ID,
    S.SYMBOL,
    S.STRATEGY,
    S.SIDE,
    S.SIGNAL_TIME,
    S.EXIT_TIME,
    S.EXIT_REASON,
    S.OUTCOME,
    S.PNL_PERCENT,
    S.REALIZED_RR,
    S.WAS_EXECUTED,
    S.ML_SCORE,
)


def save_scorer(
    store: StateStore,
    scorer: MLScorer,
    *,
    threshold: float | None = None,
    registry: ModelRegistry | None = None,
    publish: bool = False,
) -> int | None:
    """Write ``scorer``'s state (``ml:{strategy}:*``); with ``publish`` also its model as a new
    signed version in ``registry``. Returns the published version, if any."""
    version = None
    if publish and scorer.model is not None:
        if registry is None:
            raise ValueError(
                "publish=True needs a registry. Fix: pass registry=ModelRegistry(store)."
            )
        times = [t[S.EXIT_TIME] for t in scorer.trades if t[S.EXIT_TIME]]
        version = registry.publish(
            scorer.strategy,
            scorer.model,
            n_rows=scorer.last_train_count,
            train_start=min(times) if times else None,
            train_end=scorer.train_until,
        )
    store.save_scorer(scorer.to_state(), threshold=threshold)
    return version


def restore_scorer(
    store: StateStore,
    strategy: str,
    *,
    registry: ModelRegistry | None = None,
    config: ScorerConfig | None = None,
) -> MLScorer:
    """An MLScorer with the saved state and, if a registry is given, its verified champion.

    A strategy with no saved state starts fresh (heuristic scoring until its first retrain).
    """
    state = store.load_scorer(strategy)
    champion = registry.load_champion(strategy) if registry is not None else None
    if state is None:
        scorer = MLScorer(strategy, config=config)
        if champion is not None:
            scorer.set_model(champion.model)
        return scorer
    return MLScorer.from_state(
        state, model=None if champion is None else champion.model, config=config
    )


def completed_records(decisions: pd.DataFrame, signals: pd.DataFrame | None = None) -> list[dict]:
    """The closed rows of a decisions frame as ``phantom:completed`` records, exit order.

    With ``signals``, scalp records also carry the seed's gate flags (``GATE_COLUMNS``, as
    booleans): ``scalp_phantom:completed`` is what the seed's gate analysis reads.
    """
    closed = decisions.loc[~decisions[S.CENSORED].to_numpy()]
    closed = closed.sort_values([S.EXIT_TIME, S.SIGNAL_ID], kind="stable")
    records = closed[list(RECORD_COLUMNS)]
    gates = [g for g in GATE_COLUMNS if signals is not None and g in signals]
    if not gates:
        return records.to_dict("records")
    flags = signals.loc[signals[S.STRATEGY].eq("scalp").to_numpy(), [S.SIGNAL_ID, *gates]]
    flags = flags.set_index(S.SIGNAL_ID)[gates].astype(bool)
    out = records.to_dict("records")
    found = flags.reindex(records[S.SIGNAL_ID]).to_dict("records")
    for rec, gate in zip(out, found, strict=True):
        if rec[S.STRATEGY] == "scalp" and not pd.isna(next(iter(gate.values()))):
            rec.update({g: bool(v) for g, v in gate.items()})
    return out


def audit_rows(decisions: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Closed decisions as ``phantom_trades`` rows: the signal (entry, SL, TP) and the outcome
    recorded for it (executed net of costs, phantom hypothetical), ``was_executed``, score."""
    closed = decisions.loc[~decisions[S.CENSORED].to_numpy()]
    cols = [
        S.SIGNAL_ID,
        S.EXIT_TIME,
        S.EXIT_REASON,
        S.OUTCOME,
        S.PNL_PERCENT,
        S.REALIZED_RR,
        S.WAS_EXECUTED,
        S.ML_SCORE,
    ]
    return signals[list(S.SIGNAL_COLUMNS)].merge(closed[cols], on=S.SIGNAL_ID, validate="1:1")


def save_replay(
    store: StateStore,
    result,
    *,
    registry: ModelRegistry | None = None,
    publish: bool = False,
    signals: pd.DataFrame | None = None,
) -> dict[str, int | None]:
    """Persist the end state of a :class:`~research.replay.ReplayResult` in the seed's keys.

    Scorers (``ml:*``; models published when ``publish``), learnt thresholds (``qcal:*``),
    completed phantoms and win history (``phantom:completed``, ``scalp_phantom:completed``,
    ``phantom:wr:*``; with ``signals`` the scalp records carry their gate flags), signals
    blocked per day (``phantom:blocked:*``) and the open phantoms (``phantom:active``: signals
    whose data ended first). Returns published versions.
    """
    versions = {}
    fits = result.threshold_fits
    for strategy, scorer in result.scorers.items():
        policy = result.policies[strategy]
        # ml:{strategy}:threshold is strategy-wide: the EV threshold, else the static one
        ev = policy.ev.score if policy.ev is not None else policy.config.static_threshold
        versions[strategy] = save_scorer(
            store, scorer, threshold=float(ev), registry=registry, publish=publish
        )
        mine = fits[fits["strategy"] == strategy]
        if len(mine):
            table = policy.adapter.to_dict() if policy.adapter is not None else {}
            store.save_thresholds(strategy, table, int(mine["n_trades"].iloc[-1]))
    dec = result.decisions
    last_exit = dec[S.EXIT_TIME].max()
    for record in completed_records(dec, signals):
        store.record_completed(record, now=last_exit)
    blocked = dec.loc[~dec[S.WAS_EXECUTED].to_numpy()]
    for day, n in blocked.groupby(blocked[S.SIGNAL_TIME].dt.floor("D")).size().items():
        store.incr_blocked(day, int(n))
    open_rows = dec.loc[dec[S.CENSORED].to_numpy()]
    store.set_active(
        {
            sym: g[[S.SIGNAL_ID, S.STRATEGY, S.SIDE, S.SIGNAL_TIME, S.ML_SCORE]].to_dict("records")
            for sym, g in open_rows.groupby(S.SYMBOL)
        }
    )
    logger.info(
        "replay state saved to %s (%d completed phantoms)",
        store.url,
        int(np.sum(~dec[S.CENSORED].to_numpy())),
    )
    return versions
