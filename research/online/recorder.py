"""Record completed trades in the durability order, from any number of processes.

:class:`OutcomeRecorder` handles one outcome at a time (DESIGN §4 "Nothing is lost"):

1. **SQL first** (:class:`~research.stores.audit.AuditTrail`, an idempotent upsert). If SQL is
   down or does not answer within its timeout, the row goes to the append-only local
   :class:`~research.stores.journal.OutcomeJournal` (fsynced) and
   :meth:`OutcomeRecorder.flush_journal` writes it to SQL when it is back.
2. **Then the state store**, in one atomic step guarded by ``phantom:recorded``
   (:meth:`~research.stores.state.StateStore.record_outcome`): the completed-phantom lists, the
   win history and, when the scorer learns the outcome, ``ml:{strategy}:trades``,
   ``completed_trades`` and the EV buckets. Counters change only for a new ``signal_id``,
   whichever process records it, so several recorders sharing one store count exactly. If the
   store is down, recording goes on, ``state_stale`` is set, and
   :func:`~research.online.rebuild.rebuild_state` (``phantomlab state rebuild``) catches up.
3. **The scorer** learns it, and the retrain rule reads the *shared* counters: the recorder
   whose step makes a retrain due claims it (:meth:`~research.stores.state.StateStore.
   claim_retrain`), fits on every writer's trades, and with a registry publishes the model,
   which the other recorders then load.

Every step is keyed by ``signal_id``, so a retry after any failure never counts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from research import schema as S
from research.errors import StoreUnavailable
from research.online.persist import RECORD_COLUMNS
from research.online.rebuild import rebuild_state
from research.scoring.online import MLScorer
from research.stores.state import StateStore

logger = logging.getLogger(__name__)

_DOWN = object()  # the state store did not take the outcome


class OutcomeRecorder:
    """SQL, then state store, then the scorer — degrading, never losing an outcome.

    Parameters
    ----------
    audit : AuditTrail
    state : StateStore
    journal : OutcomeJournal
    scorers : dict of strategy -> MLScorer, optional
        Learn each outcome too. Their counters follow the store's shared ones.
    registry : ModelRegistry, optional
        Where a retrain's model is published, and where the recorders that did not retrain
        load it from (a new champion version). Without one, only the recorder that retrained
        scores with its new model.
    """

    def __init__(self, *, audit, state: StateStore, journal, scorers=None, registry=None) -> None:
        self.audit, self.state, self.journal = audit, state, journal
        self.scorers: dict[str, MLScorer] = dict(scorers or {})
        self.registry = registry
        self.state_stale = False

    def record(self, trade: Mapping, *, features: Mapping | None = None) -> dict[str, bool]:
        """Record one completed trade (a signal row merged with its outcome).

        Returns which paths took it: ``{'sql', 'journal', 'state', 'scorer', 'retrained'}``.
        Only bad input raises (:class:`~research.schema.SchemaError`), before anything is
        written.
        """
        row = dict(trade)
        if features is not None:
            row["features"] = dict(features)
        done = {"sql": False, "journal": False, "state": False, "scorer": False, "retrained": False}
        try:
            self.audit.record_trades([row])
            done["sql"] = True
        except StoreUnavailable as exc:
            logger.warning("SQL down, outcome %s journaled: %s", row[S.SIGNAL_ID], exc)
            self.journal.append([row])
            done["journal"] = True
        scorer = self.scorers.get(str(row[S.STRATEGY]))
        learnt = None
        if scorer is not None and row.get(S.OUTCOME) is not None:
            learnt = scorer.trade_record_of(row)
        shared = self._to_state(row, learnt)
        done["state"] = shared is not _DOWN
        if learnt is None:
            return done
        if shared is _DOWN:  # alone for now: the scorer counts for itself, as it would offline
            before = scorer.model_version
            done["scorer"] = scorer.record_outcome(
                row,
                learnt[S.OUTCOME],
                learnt[S.PNL_PERCENT],
                features=learnt["features"],
                exit_time=row[S.EXIT_TIME],
            )
            done["retrained"] = scorer.model_version > before
        elif shared is not None:  # new to the store: follow its counts
            scorer.learn(learnt, completed_trades=shared["completed_trades"])
            scorer.last_train_count = max(scorer.last_train_count, shared["last_train_count"])
            done["scorer"] = True
            self._follow_champion(scorer, shared["model_version"])
            done["retrained"] = self._shared_retrain(scorer, row[S.EXIT_TIME])
        return done

    def _to_state(self, row: Mapping, learnt: Mapping | None):
        """The store's shared counters after this outcome, None if it had it, or _DOWN."""
        try:
            return self.state.record_outcome({k: row.get(k) for k in RECORD_COLUMNS}, trade=learnt)
        except StoreUnavailable as exc:
            if not self.state_stale:
                logger.error(
                    "state store down; recording continues, rebuild it from SQL "
                    "when it is back (phantomlab state rebuild): %s",
                    exc,
                )
            self.state_stale = True
            return _DOWN

    def _shared_retrain(self, scorer: MLScorer, now) -> bool:
        """Retrain if the shared counters make it due and this recorder wins the claim."""
        c, s = scorer.config, scorer.strategy
        previous = scorer.last_train_count
        claimed = self.state.claim_retrain(
            s, min_trades=c.min_trades, retrain_every=c.retrain_every
        )
        if claimed is None:
            return False
        snapshot = self.state.load_scorer(s)  # every writer's trades, not only this one's
        if snapshot is not None:
            scorer.adopt(snapshot | {"nn_enabled": scorer.nn_enabled})
        if not scorer.retrain(now=now):
            # due again after retry_after more outcomes (the seed's back-off), for any writer
            self.state.release_retrain(s, claimed, claimed + c.retry_after - c.retrain_every)
            scorer.last_train_count = previous
            return False
        if self.registry is not None:
            scorer.model_version = self.registry.publish(
                s, scorer.model, n_rows=len(scorer.trades), train_end=scorer.train_until
            )
        else:  # the scorer's own +1 collides when two writers' fits overlap: take a new one
            scorer.model_version = self.state.next_model_version(s)
        self.state.save_training(
            s,
            last_train_ts=scorer.last_train_ts,
            model_version=scorer.model_version,
            nn_enabled=scorer.nn_enabled,
        )
        return True

    def _follow_champion(self, scorer: MLScorer, shared_version: int) -> None:
        """Load the registry's champion when another recorder published a newer model."""
        if self.registry is None or shared_version <= scorer.model_version:
            return
        try:
            champion = self.registry.load_champion(scorer.strategy)
        except Exception:  # a bad blob or a store hiccup must not stop recording
            logger.exception(
                "%s: champion not loaded; the current model keeps scoring", scorer.strategy
            )
            return
        if champion is not None:
            scorer.set_model(champion.model)
            scorer.model_version = int(champion.version)
            logger.info(
                "%s: loaded champion v%d published by another recorder",
                scorer.strategy,
                scorer.model_version,
            )

    def flush_journal(self) -> int:
        """Write journaled outcomes to SQL (raises StoreUnavailable if it is still down)."""
        return self.journal.replay_into(self.audit)

    def rebuild_state(self, **kwargs) -> dict[str, int]:
        """:func:`~research.online.rebuild.rebuild_state` from this recorder's SQL (and
        journal) into its state store."""
        kwargs.setdefault("journal", self.journal)
        counts = rebuild_state(self.audit, self.state, **kwargs)
        self.state_stale = False
        return counts


__all__ = ["OutcomeRecorder", "rebuild_state"]
