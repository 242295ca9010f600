"""Record completed trades in the durability order, and rebuild the state view from SQL.

:class:`OutcomeRecorder` handles one outcome at a time (DESIGN §4 "Nothing is lost"):

1. **SQL first** (:class:`~research.stores.audit.AuditTrail`, an idempotent upsert). If SQL is
   down, the row goes to the append-only local :class:`~research.stores.journal.OutcomeJournal`
   (fsynced) and :meth:`OutcomeRecorder.flush_journal` writes it to SQL when it is back.
2. **Then the state store** (``phantom:completed``, ``phantom:wr:*``, ``ml:{strategy}:*``),
   itself idempotent by ``signal_id``. If it is down, recording goes on, ``state_stale`` is set,
   and :func:`rebuild_state` (``phantomlab state rebuild``) rebuilds the view from SQL.
3. The in-memory :class:`~research.scoring.online.MLScorer` learns it (idempotent too).

Every step is keyed by ``signal_id``, so a retry after any failure never counts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from research import schema as S
from research.config import ScorerConfig
from research.scoring.online import MLScorer
from research.stores.errors import StoreUnavailable
from research.stores.persist import RECORD_COLUMNS
from research.stores.state import StateStore

logger = logging.getLogger(__name__)


class OutcomeRecorder:
    """SQL, then state store, then the scorer — degrading, never losing an outcome.

    Parameters
    ----------
    audit : AuditTrail
    state : StateStore
    journal : OutcomeJournal
    scorers : dict of strategy -> MLScorer, optional
        Learn each outcome too (their state is saved to the store after each record).
    """

    def __init__(self, *, audit, state: StateStore, journal, scorers=None) -> None:
        self.audit, self.state, self.journal = audit, state, journal
        self.scorers: dict[str, MLScorer] = dict(scorers or {})
        self.state_stale = False

    def record(self, trade: Mapping, *, features: Mapping | None = None) -> dict[str, bool]:
        """Record one completed trade (a signal row merged with its outcome).

        Returns which paths took it: ``{'sql': …, 'journal': …, 'state': …, 'scorer': …}``.
        Only bad input raises (:class:`~research.schema.SchemaError`), before anything is
        written.
        """
        row = dict(trade)
        if features is not None:
            row["features"] = dict(features)
        done = {"sql": False, "journal": False, "state": False, "scorer": False}
        try:
            self.audit.record_trades([row])
            done["sql"] = True
        except StoreUnavailable as exc:
            logger.warning("SQL down, outcome %s journaled: %s", row[S.SIGNAL_ID], exc)
            self.journal.append([row])
            done["journal"] = True
        scorer = self.scorers.get(str(row[S.STRATEGY]))
        if scorer is not None and row.get(S.OUTCOME) is not None:
            done["scorer"] = scorer.record_outcome(
                row, str(row[S.OUTCOME]), float(row[S.PNL_PERCENT]),
                features=row.get("features") or {}, exit_time=row[S.EXIT_TIME],
            )  # fmt: skip
        try:
            self.state.record_completed({k: row.get(k) for k in RECORD_COLUMNS})
            if done["scorer"]:  # newly learnt: push it (a duplicate was pushed before)
                self.state.append_scorer_trade(scorer.to_state(last_trades=1))
            done["state"] = True
        except StoreUnavailable as exc:
            if not self.state_stale:
                logger.error("state store down; recording continues, rebuild it from SQL "
                             "when it is back (phantomlab state rebuild): %s", exc)  # fmt: skip
            self.state_stale = True
        return done

    def flush_journal(self) -> int:
        """Write journaled outcomes to SQL (raises StoreUnavailable if it is still down)."""
        return self.journal.replay_into(self.audit)

    def rebuild_state(self, **kwargs) -> dict[str, int]:
        """:func:`rebuild_state` from this recorder's SQL into its state store."""
        counts = rebuild_state(self.audit, self.state, **kwargs)
        self.state_stale = False
        return counts


def rebuild_state(audit, state: StateStore, *, config: ScorerConfig | None = None,
                  now=None) -> dict[str, int]:  # fmt: skip
    """Rebuild the state store's view of completed trades from the SQL audit trail.

    Clears the namespace's state keys (not the model registry), then replays every completed
    trade in exit order: ``phantom:completed`` / ``scalp_phantom:completed`` / ``phantom:wr:*``
    with their trims, and ``ml:{strategy}:completed_trades | trades | ev_buckets`` exactly as
    the scorer counts them. Training bookkeeping (``last_train_count``, ``last_train_ts``,
    ``model_version``, ``nn_enabled``, ``threshold``) is kept from the store when it survived.

    Returns the number of trades replayed per strategy.
    """
    config = config or ScorerConfig()
    trades = audit.completed_trades(with_features=True)
    strategies = sorted(set(trades[S.STRATEGY])) if len(trades) else []
    kept = {s: state.load_scorer(s) for s in strategies}
    state.clear_state()
    now = (
        pd.Timestamp(now)
        if now is not None
        else (trades[S.EXIT_TIME].max() if len(trades) else None)
    )
    # A scorer that never trains: record_outcome's own counting, without fitting anything.
    counting = ScorerConfig(min_trades=2**62, learn_from_timeouts=config.learn_from_timeouts)
    scorers = {s: MLScorer(s, config=counting) for s in strategies}
    for row in trades.to_dict("records"):
        state.record_completed({k: row.get(k) for k in RECORD_COLUMNS}, now=now)
        scorers[row[S.STRATEGY]].record_outcome(row, str(row[S.OUTCOME]),
                                                float(row[S.PNL_PERCENT]),
                                                features=row.get("features") or {},
                                                exit_time=row[S.EXIT_TIME])  # fmt: skip
    counts = {}
    for s, scorer in scorers.items():
        snapshot = scorer.to_state()
        old = kept.get(s) or {}
        for key in ("last_train_count", "last_train_ts", "model_version", "nn_enabled"):
            if key in old:
                snapshot[key] = old[key]
        state.save_scorer(snapshot, threshold=old.get("threshold"))
        counts[s] = int((trades[S.STRATEGY] == s).sum())
    logger.info("state rebuilt from SQL: %s", counts)
    return counts
