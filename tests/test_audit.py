"""SQL audit trail and outcome journal, against a real PostgreSQL server and SQLite files.

PostgreSQL: a fresh database per module (``phantomlab_t_<hex>``) on the server at
127.0.0.1:5432 (override the admin URL with ``PHANTOMLAB_TEST_PG_ADMIN_URL``), dropped at
teardown. No server answering is a failure, not a skip: these tests exist to use it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from support import closed_scalp_trades, empty_database, fresh_pg_database

from research import schema as S
from research.errors import StoreError, StoreUnavailable
from research.stores.audit import (
    FEATURES,
    FEATURES_JSON,
    META,
    STRATEGY_NAME,
    TRADE_COLUMNS,
    AuditTrail,
    model_versions,
    phantom_trades,
    pipeline_runs,
)
from research.stores.journal import OutcomeJournal

# Nothing listens on port 1: a server that is down, without stopping the real one.
DOWN_URL = "postgresql://phantom:s3cret@127.0.0.1:1/phantomlab"
TABLES = ("phantom_trades", "model_versions", "pipeline_runs")


@pytest.fixture(scope="module")
def pg_url():
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def audit(db_url):
    """An upgraded, empty audit trail on each backend."""
    trail = AuditTrail(db_url)
    with trail.engine.begin() as conn:
        for table in (phantom_trades, model_versions, pipeline_runs):
            conn.execute(table.delete())
    yield trail
    trail.close()


@pytest.fixture(scope="module")
def market_trades():
    """Real scalp trades: signals merged with their simulated outcomes, and their features."""
    trades, features = closed_scalp_trades(3000, seed=1)
    assert len(trades) > 100
    return trades, features


@pytest.fixture
def trades(market_trades):
    return market_trades[0].copy()


# -- migrations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_empty_creates_the_tables_and_is_idempotent(backend, tmp_path):
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(empty_database(backend, tmp_path))
        trail = stack.enter_context(AuditTrail(url, upgrade=False))
        assert sa.inspect(trail.engine).get_table_names() == []
        trail.upgrade()
        trail.upgrade()  # a no-op the second time
        AuditTrail(url).close()  # and on construction
        inspector = sa.inspect(trail.engine)
        assert set(TABLES) <= set(inspector.get_table_names())
        for name in TABLES:
            columns = {c["name"]: c for c in inspector.get_columns(name)}
            assert set(META.tables[name].columns.keys()) == set(columns)
        columns = {c["name"]: c for c in inspector.get_columns("phantom_trades")}
        for name in (
            "id",
            "symbol",
            "side",
            "entry",
            "sl",
            "tp",
            "signal_time",
            "exit_time",
            "outcome",
            "pnl_percent",
            "exit_reason",
            "strategy_name",
            "was_executed",
            "ml_score",
            "realized_rr",
            "features_json",
            "created_at",
            "updated_at",
            "signal_id",
            "exit_price",
            "tp1_hit",
            "be_moved",
            "max_favorable",
            "max_adverse",
            "time_to_exit_sec",
            "ambiguous_bar",
        ):
            assert name in columns  # the seed's columns, spelled as the seed spells them
        indexes = {i["name"] for i in inspector.get_indexes("phantom_trades")}
        assert {"ix_phantom_trades_strategy_exit", "ix_phantom_trades_symbol"} <= indexes
        if backend == "postgresql":
            assert isinstance(columns[FEATURES_JSON]["type"], sa.dialects.postgresql.JSONB)
            assert columns["signal_time"]["type"].timezone
        with trail.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert versions == [("0001",)]


def test_a_plain_postgresql_url_gets_the_psycopg3_driver():
    trail = AuditTrail("postgresql://u@127.0.0.1:5432/db", upgrade=False)
    assert trail.url.drivername == "postgresql+psycopg"


# -- trades -------------------------------------------------------------------------------------
def test_record_trades_is_an_idempotent_upsert(audit, trades):
    assert audit.record_trades(trades) == len(trades)
    assert audit.record_trades(trades) == len(trades)
    assert audit.count_trades() == len(trades)
    assert audit.trade_ids() == set(trades[S.SIGNAL_ID])

    first = trades.iloc[:3].copy()
    stamps = _stamps(audit, first[S.SIGNAL_ID])
    first[S.PNL_PERCENT] = [1.5, -2.5, 3.5]
    first[S.WAS_EXECUTED] = True
    time.sleep(0.01)
    assert audit.record_trades(first) == 3
    assert audit.count_trades() == len(trades)
    got = audit.completed_trades().set_index(S.SIGNAL_ID).loc[first[S.SIGNAL_ID]]
    assert got[S.PNL_PERCENT].tolist() == [1.5, -2.5, 3.5]  # the updated values win
    assert got[S.WAS_EXECUTED].all()
    after = _stamps(audit, first[S.SIGNAL_ID])
    for sid, (created, updated) in stamps.items():
        assert after[sid][0] == created  # created_at kept
        assert after[sid][1] > updated  # updated_at refreshed


def _stamps(audit, ids):
    t = phantom_trades
    query = sa.select(t.c[S.SIGNAL_ID], t.c.created_at, t.c.updated_at).where(
        t.c[S.SIGNAL_ID].in_(list(ids))
    )
    with audit.engine.connect() as conn:
        return {sid: (c, u) for sid, c, u in conn.execute(query)}


def test_a_signal_repeated_in_one_call_keeps_its_last_row(audit, trades):
    rows = trades.iloc[[0, 0, 1]].copy()
    rows[S.PNL_PERCENT] = [1.0, 2.0, 3.0]
    assert audit.record_trades(rows) == 2
    got = audit.completed_trades().set_index(S.SIGNAL_ID)
    assert got.loc[trades[S.SIGNAL_ID].iloc[0], S.PNL_PERCENT] == 2.0


def test_completed_trades_round_trips_the_values(audit, trades):
    audit.record_trades(trades)
    got = audit.completed_trades()
    assert list(got.columns) == list(TRADE_COLUMNS)  # schema names, STRATEGY mapped back
    assert S.STRATEGY in got and STRATEGY_NAME not in got
    want = trades.sort_values([S.EXIT_TIME, S.SIGNAL_ID], kind="stable").reset_index(drop=True)
    assert got[S.SIGNAL_ID].tolist() == want[S.SIGNAL_ID].tolist()
    assert str(got[S.EXIT_TIME].dt.tz) == "UTC"
    for name in (S.SIGNAL_TIME, S.EXIT_TIME):
        assert (got[name].to_numpy() == want[name].to_numpy()).all()
    for name in (
        S.ENTRY,
        S.SL,
        S.TP,
        S.EXIT_PRICE,
        S.PNL_PERCENT,
        S.REALIZED_RR,
        S.MAX_FAVORABLE,
        S.MAX_ADVERSE,
        S.TIME_TO_EXIT_SEC,
        S.ML_SCORE,
    ):
        np.testing.assert_allclose(got[name], want[name].astype(float), rtol=1e-12)
    for name in (S.TP1_HIT, S.BE_MOVED, S.AMBIGUOUS_BAR, S.WAS_EXECUTED):
        assert got[name].tolist() == want[name].tolist()
    for name in (S.OUTCOME, S.EXIT_REASON, S.SIDE, S.SYMBOL, S.STRATEGY):
        assert got[name].astype(str).tolist() == want[name].astype(str).tolist()
    assert list(got[S.OUTCOME].cat.categories) == list(S.OUTCOMES)


def test_features_round_trip_as_json_with_nan_as_null(audit, market_trades):
    trades, features = market_trades
    features = features.copy()
    first, second = trades[S.SIGNAL_ID].iloc[0], trades[S.SIGNAL_ID].iloc[1]
    features.loc[first, "atr_pct"] = np.nan
    audit.record_trades(trades, features=features)
    # A row's own mapping wins over the features frame (numpy scalars are accepted).
    own = trades.iloc[[1]].copy()
    own[FEATURES] = [{"a": np.float64(np.nan), "b": np.int64(3), "c": [np.bool_(True), 1.5]}]
    audit.record_trades(own)

    got = audit.completed_trades(with_features=True).set_index(S.SIGNAL_ID)[FEATURES]
    assert got[first]["atr_pct"] is None
    row = features.loc[trades[S.SIGNAL_ID].iloc[2]]
    stored = got[trades[S.SIGNAL_ID].iloc[2]]
    assert set(stored) == set(features.columns)
    assert stored["session"] == row["session"]
    assert stored["hour"] == int(row["hour"])
    assert stored["rsi_14"] == pytest.approx(float(row["rsi_14"]), rel=1e-12)
    assert got[second] == {"a": None, "b": 3, "c": [True, 1.5]}
    assert FEATURES not in audit.completed_trades()


def test_query_helpers_filter_window_and_order(audit, trades):
    half = len(trades) // 2
    trades.loc[: half - 1, S.STRATEGY] = "trend"
    open_trade = trades.iloc[[0]].copy()
    open_trade[S.SIGNAL_ID] = "still-open"
    open_trade[S.OUTCOME] = None
    open_trade[S.EXIT_REASON] = None
    open_trade[S.EXIT_TIME] = pd.NaT
    audit.record_trades(trades)
    audit.record_trades(open_trade)

    assert audit.count_trades() == len(trades)  # the open trade is not completed
    assert audit.count_trades(completed=False) == len(trades) + 1
    assert audit.count_trades("trend") == half
    assert "still-open" in audit.trade_ids()
    assert "still-open" not in set(audit.completed_trades()[S.SIGNAL_ID])

    scalp = audit.completed_trades(strategy="scalp")
    assert len(scalp) == len(trades) - half and set(scalp[S.STRATEGY]) == {"scalp"}
    assert len(audit.completed_trades(strategy=["scalp", "trend"])) == len(trades)
    assert audit.completed_trades(symbol="NOPE").empty
    assert len(audit.completed_trades(symbol=trades[S.SYMBOL].iloc[0])) == len(trades)

    exits = trades[S.EXIT_TIME].sort_values()
    start, end = exits.iloc[10], exits.iloc[40]
    window = audit.completed_trades(start=start, end=end)
    want = trades[(trades[S.EXIT_TIME] >= start) & (trades[S.EXIT_TIME] < end)]
    assert len(window) == len(want) > 0
    assert window[S.EXIT_TIME].min() >= start and window[S.EXIT_TIME].max() < end
    naive = audit.completed_trades(start=start.tz_localize(None), end=end.tz_convert(None))
    assert naive[S.SIGNAL_ID].tolist() == window[S.SIGNAL_ID].tolist()  # naive = UTC
    ordered = audit.completed_trades()
    keys = list(zip(ordered[S.EXIT_TIME], ordered[S.SIGNAL_ID], strict=True))
    assert keys == sorted(keys)


# -- bad input ----------------------------------------------------------------------------------
def test_missing_columns_are_refused_with_a_fix(audit, trades):
    with pytest.raises(S.SchemaError, match=r"missing column.*outcome.*Fix") as err:
        audit.record_trades(trades.drop(columns=[S.OUTCOME]))
    assert "merge" in str(err.value)
    assert audit.count_trades() == 0


def test_unknown_outcome_and_side_are_refused_with_a_fix(audit, trades):
    rows = trades.iloc[:5].astype({S.OUTCOME: object}).copy()
    rows.loc[2, S.OUTCOME] = "draw"
    with pytest.raises(S.SchemaError, match=r"unknown or missing outcome \['draw'\].*Fix"):
        audit.record_trades(rows)
    rows = trades.iloc[:5].copy()
    rows[S.SIDE] = "up"
    with pytest.raises(S.SchemaError, match=r"side \['up'\].*\['long', 'short'\]"):
        audit.record_trades(rows)
    assert audit.count_trades() == 0


# -- models and runs ----------------------------------------------------------------------------
def test_model_versions_keep_exactly_one_champion_per_strategy(audit):
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for version in (1, 2, 3):
        audit.record_model_version(
            "scalp",
            version,
            sha256=f"{version:064x}",
            metadata={"kind": "ensemble", "auc": np.float64(0.61)},
            metrics={"brier": 0.2, "nan": float("nan")},
            git_sha="abc123",
            n_rows=100 * version,
            train_start=t0,
            train_end=t0 + pd.Timedelta(days=version),
            is_champion=version == 2,
        )
    audit.record_model_version("trend", 1, sha256="f" * 64, is_champion=True)
    audit.record_model_version("scalp", 1, sha256=f"{1:064x}")  # same blob again: a no-op
    with pytest.raises(StoreError, match="immutable"):
        audit.record_model_version("scalp", 1, sha256="e" * 64)

    frame = audit.model_versions()
    assert len(frame) == 4
    assert frame.loc[frame["is_champion"], ["strategy", "version"]].values.tolist() == [
        ["scalp", 2],
        ["trend", 1],
    ]
    audit.set_champion("scalp", 3)
    scalp = audit.model_versions("scalp")
    assert scalp["version"].tolist() == [1, 2, 3]
    assert scalp["is_champion"].tolist() == [False, False, True]
    assert audit.model_versions("trend")["is_champion"].tolist() == [True]  # untouched
    row = scalp.iloc[2]
    assert row["metadata"] == {"kind": "ensemble", "auc": 0.61}
    assert row["metrics"] == {"brier": 0.2, "nan": None}
    assert row["train_end"] == t0 + pd.Timedelta(days=3) and row["n_rows"] == 300
    with pytest.raises(StoreError, match=r"no model version scalp v9.*Fix"):
        audit.set_champion("scalp", 9)
    assert audit.model_versions("scalp")["is_champion"].sum() == 1
    # The database itself refuses a second champion.
    with pytest.raises(sa.exc.IntegrityError), audit.engine.begin() as conn:
        conn.execute(
            model_versions.update()
            .where(model_versions.c.strategy == "scalp")
            .values(is_champion=True)
        )


def test_pipeline_runs(audit, tmp_path):
    run_id = audit.start_run("retrain", {"strategy": "scalp", "path": tmp_path, "n": np.int64(3)})
    failed = audit.start_run("retrain", {})
    other = audit.start_run("report", None)
    assert len(run_id) == 32 and len({run_id, failed, other}) == 3
    assert audit.runs("retrain")["status"].tolist() == ["running", "running"]
    audit.finish_run(
        run_id, "ok", metrics={"auc": 0.6}, model_version=4, report_path=tmp_path / "r.html"
    )
    audit.finish_run(failed, "failed", error=RuntimeError("boom"))
    runs = audit.runs("retrain").set_index("run_id")
    assert runs.loc[run_id, "status"] == "ok" and runs.loc[failed, "status"] == "failed"
    assert runs.loc[run_id, "parameters"] == {"strategy": "scalp", "path": str(tmp_path), "n": 3}
    assert runs.loc[run_id, "metrics"] == {"auc": 0.6} and runs.loc[run_id, "model_version"] == 4
    assert runs.loc[run_id, "report_path"] == str(tmp_path / "r.html")
    assert runs.loc[failed, "error"] == "boom" and pd.isna(runs.loc[failed, "model_version"])
    assert runs.loc[run_id, "finished_at"] >= runs.loc[run_id, "started_at"]
    assert len(audit.runs()) == 3
    with pytest.raises(ValueError, match="'ok' or 'failed'"):
        audit.finish_run(run_id, "done")
    with pytest.raises(StoreError, match="no pipeline run"):
        audit.finish_run("nope", "ok")


# -- a database that does not answer ------------------------------------------------------------
def test_a_server_that_is_down_fails_fast_with_a_fix(trades):
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        AuditTrail(DOWN_URL)
    message = str(err.value)
    assert "PostgreSQL at 127.0.0.1:1 does not answer" in message and "Fix:" in message
    assert "s3cret" not in message and "***" in message
    trail = AuditTrail(DOWN_URL, upgrade=False)
    for call in (
        trail.ping,
        lambda: trail.record_trades(trades),
        trail.completed_trades,
        trail.count_trades,
        lambda: trail.start_run("x", {}),
        trail.model_versions,
    ):
        with pytest.raises(StoreUnavailable):
            call()
    assert time.monotonic() - started < 10


def test_sqlite_in_a_missing_folder_does_not_answer(tmp_path):
    with pytest.raises(StoreUnavailable, match=r"SQLite database .* does not answer.*Fix"):
        AuditTrail(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_tables_not_migrated_say_how_to_fix(backend, tmp_path, trades):
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(empty_database(backend, tmp_path))
        bare = stack.enter_context(AuditTrail(url, upgrade=False))
        with pytest.raises(StoreError, match=r"audit tables do not exist.*Fix: run .*upgrade"):
            bare.record_trades(trades)
        with pytest.raises(StoreError, match=r"audit tables do not exist"):
            bare.count_trades()


def test_the_default_url_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PHANTOMLAB_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with AuditTrail() as trail:
        assert trail.url.database == str(tmp_path / "env.db")
        trail.ping()
    assert (tmp_path / "env.db").exists()


# -- the journal --------------------------------------------------------------------------------
def test_journal_append_pending_replay(audit, trades, tmp_path):
    journal = OutcomeJournal(tmp_path / "j" / "outcomes.jsonl")
    assert journal.pending() == [] and journal.replay_into(audit) == 0
    assert journal.append(trades.iloc[:10]) == 10
    assert journal.append(trades.iloc[10:15].to_dict("records")) == 5
    pending = journal.pending()
    assert len(pending) == 15 and pending[0][S.SIGNAL_ID] == trades[S.SIGNAL_ID].iloc[0]
    assert pending[0][S.SIGNAL_TIME].endswith("+00:00")  # ISO strings, UTC
    assert journal.replay_into(audit) == 15
    assert journal.pending() == [] and audit.count_trades() == 15
    got = audit.completed_trades().set_index(S.SIGNAL_ID).loc[trades[S.SIGNAL_ID].iloc[:15]]
    np.testing.assert_allclose(got[S.REALIZED_RR], trades[S.REALIZED_RR].iloc[:15])
    assert (got[S.EXIT_TIME].to_numpy() == trades[S.EXIT_TIME].iloc[:15].to_numpy()).all()
    with pytest.raises(S.SchemaError):  # refused now, not when it could no longer be fixed
        journal.append(trades.iloc[:2].drop(columns=[S.SIDE]))


def test_journal_interrupted_replay_loses_and_doubles_nothing(audit, trades, tmp_path):
    journal = OutcomeJournal(tmp_path / "outcomes.jsonl")
    journal.append(trades.iloc[:5])
    # A replay died after its rotation: the batch is left in <path>.replaying. Rows 0-2 as if
    # it died after the SQL commit (before the delete), rows 3-4 as if before the write.
    os.replace(journal.path, journal.replaying_path)
    audit.record_trades(trades.iloc[:3])
    journal.append(trades.iloc[5:8])  # and outcomes kept arriving.
    assert len(journal.pending()) == 8

    # SQL is down during the next replay: the journal keeps everything.
    down = AuditTrail(DOWN_URL, upgrade=False)
    with pytest.raises(StoreUnavailable):
        journal.replay_into(down)
    assert [r[S.SIGNAL_ID] for r in journal.pending()] == trades[S.SIGNAL_ID].iloc[:8].tolist()
    journal.append(trades.iloc[8:10])
    assert len(journal.pending()) == 10

    journal.replay_into(audit)
    assert journal.pending() == []
    assert not journal.replaying_path.exists() and not journal.path.exists()
    assert audit.count_trades() == 10  # nothing lost, nothing twice
    assert audit.trade_ids() == set(trades[S.SIGNAL_ID].iloc[:10])


def test_journal_skips_a_torn_last_line(audit, trades, tmp_path, caplog):
    journal = OutcomeJournal(tmp_path / "outcomes.jsonl")
    journal.append(trades.iloc[:3])
    with open(journal.path, "ab") as f:  # a crash in the middle of an append
        f.write(b'{"signal_id": "torn", "symb')
    with caplog.at_level(logging.WARNING, logger="research.stores.journal"):
        assert len(journal.pending()) == 3
    assert "torn line 4" in caplog.text
    journal.append(trades.iloc[3:5])  # starts on a new line: the new rows are intact
    assert [r[S.SIGNAL_ID] for r in journal.pending()] == trades[S.SIGNAL_ID].iloc[:5].tolist()
    assert journal.replay_into(audit) == 5
    assert audit.count_trades() == 5 and journal.pending() == []
