"""Durability order on real servers: Redis stopped mid-run, SQL unavailable — nothing lost.

A private redis-server is started on a free port so that it can be stopped and restarted
without touching the shared one; SQL is the real PostgreSQL (a fresh database) or SQLite.
"""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from store_faults_support import RedisServer
from support import closed_scalp_trades, empty_database

from research import schema as S
from research.cli import main
from research.online.recorder import OutcomeRecorder, rebuild_state
from research.scoring import MLScorer, ScorerConfig
from research.stores import StoreUnavailable
from research.stores.audit import AuditTrail
from research.stores.journal import OutcomeJournal
from research.stores.state import open_state

NO_TRAIN = ScorerConfig(min_trades=10**9)  # count and store, never fit (fast, deterministic)


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
def audit(request, tmp_path):
    with empty_database(request.param, tmp_path) as url:
        trail = AuditTrail(url)
        yield trail
        trail.close()


@pytest.fixture(scope="module")
def trades():
    rows, feats = closed_scalp_trades(3000, seed=11)
    assert len(rows) > 100
    return rows, feats


def _feed(recorder, rows, feats, stop_at=None, on_stop=None):
    for i, row in enumerate(rows.to_dict("records")):
        if i == stop_at:
            on_stop()
        recorder.record(row, features=feats.loc[row[S.SIGNAL_ID]].to_dict())


def _view(store):
    scorer = store.load_scorer("scalp")
    return (
        store.completed(),
        store.completed(scalp=True),
        store.win_history("scalp"),
        scorer["completed_trades"],
        scorer["ev_buckets"],
        scorer["trades"],
    )


def test_redis_stopped_mid_run_loses_nothing_and_rebuild_restores_it(
    audit, redis_server, trades, tmp_path
):
    rows, feats = trades
    live = OutcomeRecorder(
        audit=audit,
        state=open_state(redis_server.url),
        journal=OutcomeJournal(tmp_path / "journal.jsonl"),
        scorers={"scalp": MLScorer("scalp", config=NO_TRAIN)},
    )
    half = len(rows) // 2
    _feed(live, rows, feats, stop_at=half, on_stop=redis_server.stop)
    assert live.state_stale
    assert audit.count_trades() == len(rows)  # SQL has every outcome
    assert live.scorers["scalp"].completed_trades == (rows[S.OUTCOME] != "timeout").sum()
    redis_server.start()  # it comes back empty (no persistence), as after a crash
    assert open_state(redis_server.url).completed() == []
    counts = live.rebuild_state()
    assert counts == {"scalp": len(rows)} and not live.state_stale
    # the rebuilt view equals that of a store that never went down
    ref_store = open_state(f"sqlite:///{tmp_path / 'ref.db'}")
    ref = OutcomeRecorder(
        audit=audit,
        state=ref_store,
        journal=OutcomeJournal(tmp_path / "r"),
        scorers={"scalp": MLScorer("scalp", config=NO_TRAIN)},
    )
    _feed(ref, rows, feats)
    assert audit.count_trades() == len(rows)  # recording again counted nothing twice
    rebuilt, expected = _view(open_state(redis_server.url)), _view(ref_store)
    assert [r[S.SIGNAL_ID] for r in rebuilt[0]] == [r[S.SIGNAL_ID] for r in expected[0]]
    assert rebuilt[0] == expected[0] and rebuilt[1] == expected[1]
    assert rebuilt[2] == expected[2] and rebuilt[3] == expected[3]
    assert _close_buckets(rebuilt[4], expected[4])
    assert [t[S.SIGNAL_ID] for t in rebuilt[5]] == [t[S.SIGNAL_ID] for t in expected[5]]


def _close_buckets(a, b) -> bool:
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k]) for k in a)


def test_sql_unavailable_goes_to_the_journal_and_is_replayed_once(audit, trades, tmp_path):
    rows, feats = trades
    down = AuditTrail("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", upgrade=False)
    state = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    journal = OutcomeJournal(tmp_path / "journal.jsonl")
    rec = OutcomeRecorder(audit=down, state=state, journal=journal)
    first = rows.iloc[:60]
    _feed(rec, first, feats)
    assert len(journal.pending()) == 60 and len(state.completed()) == 60
    with pytest.raises(StoreUnavailable):
        rec.flush_journal()  # still down: the journal stays intact
    assert len(journal.pending()) == 60
    rec.audit = audit  # SQL is back
    assert rec.flush_journal() == 60
    assert journal.pending() == [] and audit.count_trades() == 60
    _feed(rec, first, feats)  # the same outcomes again (a retry): counted once
    _feed(rec, rows.iloc[60:80], feats)
    assert audit.count_trades() == 80 and len(state.completed()) == 80
    stored = audit.completed_trades(with_features=True).set_index(S.SIGNAL_ID)
    assert stored.loc[first[S.SIGNAL_ID].iloc[0], "features"]["session"] in S.SESSIONS


def test_state_rebuild_command(audit, trades, tmp_path):
    rows, feats = trades
    audit.record_trades(rows.iloc[:50], features=feats)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db_url = audit.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        main, ["state", "rebuild", "--state-url", url, "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    assert "50 trade(s)" in result.output
    assert len(open_state(url).completed()) == 50
    assert rebuild_state(audit, open_state(url)) == {"scalp": 50}  # idempotent
    assert len(open_state(url).completed()) == 50
    down = CliRunner().invoke(
        main, ["state", "rebuild", "--state-url", "redis://127.0.0.1:1/0", "--database-url", db_url]
    )
    assert down.exit_code == 1 and "Fix" in down.output


def test_rows_are_merged_signal_and_outcome(trades):
    rows, _ = trades
    assert {S.SIGNAL_ID, S.STRATEGY, S.EXIT_TIME, S.OUTCOME} <= set(rows.columns)
    assert pd.api.types.is_datetime64_any_dtype(rows[S.EXIT_TIME])
