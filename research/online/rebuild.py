"""Rebuild the state store's view of completed trades from the SQL audit trail — in place,
without destroying anything it cannot rebuild.

What a rebuild touches (under the store's namespace ``{p}``), and nothing else:

* ``phantom:completed``, ``scalp_phantom:completed``, ``phantom:recorded``;
* ``phantom:wr:{strategy}`` and ``ml:{strategy}:completed_trades | trades | ev_buckets`` of
  every strategy SQL holds.

Training bookkeeping (``ml:{strategy}:last_train_count | last_train_ts | model_version |
nn_enabled | threshold``), learnt thresholds (``qcal:*``), open phantoms (``phantom:active``),
blocked counts (``phantom:blocked:*``), the model registry and every key of other applications
are left as they are.

How, so that writers never lose an outcome:

1. The journal (outcomes written while SQL was down) is replayed into SQL first.
2. The keys are built from SQL into fresh keys (``{p}rebuild:{token}:…``) with the same atomic
   step the writers use (:meth:`~research.stores.state.StateStore.record_outcome`).
3. One transaction swaps them in (``RENAME``; a writer's ``WATCH`` on those keys retries).
4. Catch-up: every SQL outcome missing from the swapped-in ``phantom:recorded`` is recorded
   through the same idempotent step. A writer writes SQL before the store, so an outcome
   whose store write landed in the old keys before the swap is in SQL by the time the
   catch-up reads it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import pandas as pd

from research import schema as S
from research.errors import RebuildRefused
from research.online.persist import RECORD_COLUMNS
from research.scoring.config import ScorerConfig
from research.scoring.online import MLScorer
from research.stores.protocol import StateReader, StateWriter
from research.stores.state import StateStore

logger = logging.getLogger(__name__)

#: Key families this package writes (after the namespace prefix): anything else is foreign.
OWNED_PREFIXES = ("ml:", "phantom:", "scalp_phantom:", "qcal:", "rebuild:")


def rebuilt_keys(store: StateStore, strategies: Iterable[str]) -> list[str]:
    """The live key names a rebuild replaces (see the module docstring)."""
    k = store.keys
    names = [k.phantom("completed"), k.scalp_completed, k.phantom("recorded")]
    for s in sorted(set(strategies)):
        names += [k.wr(s)] + [k.ml(s, f) for f in ("completed_trades", "trades", "ev_buckets")]
    return names


def foreign_keys(store: StateStore) -> list[str]:
    """Keys in the store's database (under its namespace) this package did not write."""
    p = store.keys.p
    return [key for key in store.all_keys() if not key[len(p) :].startswith(OWNED_PREFIXES)]


def rebuild_state(
    audit,
    state: StateStore,
    *,
    config: ScorerConfig | None = None,
    journal=None,
    now=None,
    allow_foreign: bool = False,
) -> dict[str, int]:
    """Rebuild the completed-trade view of ``state`` from SQL (and ``journal``), in place.

    Parameters
    ----------
    audit : AuditTrail
    state : StateStore
    config : ScorerConfig, optional
        Which outcomes the scorer learns (``learn_from_timeouts``), as the writers count them.
    journal : OutcomeJournal, optional
        Replayed into SQL first, so outcomes still waiting there are not left out.
    now : datetime-like, optional
        Reference time of the 30-day age trim (default: the latest exit time in SQL).
    allow_foreign : bool
        Run even if the database (without a namespace) holds keys of other applications.
        They are never touched either way; the refusal protects against pointing the
        command at the wrong database.

    Returns
    -------
    dict
        Trades in SQL per strategy.

    Raises
    ------
    RebuildRefused
        No namespace, foreign keys present and ``allow_foreign`` not set.
    StoreUnavailable
        SQL or the state store does not answer (nothing is swapped in).
    """
    if not state.keys.p and not allow_foreign:
        foreign = foreign_keys(state)
        if foreign:
            raise RebuildRefused(
                f"the state database {state.url} holds {len(foreign)} key(s) this package did "
                f"not write (e.g. {foreign[0]!r}). Fix: pass the namespace your writers use "
                "(--namespace / PHANTOMLAB_NAMESPACE), point --state-url at the right "
                "database, or pass --allow-foreign-keys (they are never touched)."
            )
    if journal is not None:
        n = journal.replay_into(audit)
        if n:
            logger.info("replayed %d journaled outcome(s) into SQL before the rebuild", n)
    config = config or ScorerConfig()
    trades = audit.completed_trades(with_features=True)
    strategies = sorted(set(trades[S.STRATEGY])) if len(trades) else []
    now = (
        pd.Timestamp(now)
        if now is not None
        else (trades[S.EXIT_TIME].max() if len(trades) else None)
    )
    fresh = StateStore(state.backend, namespace=f"{state.keys.p}rebuild:{uuid.uuid4().hex}")
    try:
        _record_all(fresh, trades, config, now=now)
        _swap(state, fresh, rebuilt_keys(state, strategies))
    finally:
        leftovers = fresh.all_keys()
        if leftovers:
            state.backend.delete(*leftovers)
    caught_up = _catch_up(audit, state, config, now=now)
    counts = {s: int((trades[S.STRATEGY] == s).sum()) for s in strategies}
    logger.info("state rebuilt from SQL: %s (+%d caught up)", counts, caught_up)
    return counts


def _record_all(store: StateStore, trades: pd.DataFrame, config: ScorerConfig, *, now) -> None:
    """Record every trade, in exit order, through the writers' own atomic step."""
    # A scorer that never trains: it only decides which outcomes are learnt, and how.
    counting = ScorerConfig(min_trades=2**62, learn_from_timeouts=config.learn_from_timeouts)
    scorers: dict[str, MLScorer] = {}
    for row in trades.to_dict("records"):
        scorer = scorers.setdefault(row[S.STRATEGY], MLScorer(row[S.STRATEGY], config=counting))
        learnt = scorer.trade_record_of(row)
        store.record_outcome({k: row.get(k) for k in RECORD_COLUMNS}, trade=learnt, now=now)


def _swap(live: StateStore, fresh: StateStore, names: list[str]) -> None:
    """Replace the live ``names`` by their fresh counterparts in one transaction."""
    pairs = [(fresh.keys.p + name[len(live.keys.p) :], name) for name in names]

    def read(c: StateReader):
        return [bool(c.exists(src)) for src, _ in pairs]

    def write(tx: StateWriter, present):
        for (src, dst), here in zip(pairs, present, strict=True):
            if here:
                tx.rename(src, dst)
            else:
                tx.delete(dst)

    live.backend.atomic(names, read, write)


def _catch_up(audit, state: StateStore, config: ScorerConfig, *, now) -> int:
    """Record SQL outcomes that reached SQL while the fresh keys were being built."""
    recorded = {
        m.decode() if isinstance(m, bytes) else str(m)
        for m in state.backend.smembers(state.keys.phantom("recorded"))
    }
    if audit.trade_ids() <= recorded:  # the usual case: one cheap read of ids, no rows
        return 0
    trades = audit.completed_trades(with_features=True)
    missing = trades.loc[~trades[S.SIGNAL_ID].astype(str).isin(recorded).to_numpy()]
    if len(missing):
        _record_all(state, missing, config, now=now)
    return len(missing)
