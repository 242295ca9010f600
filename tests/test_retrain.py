"""Retrain and publish: the package steps and ``pipelines/retrain_publish.ipynb``, on the REAL
PostgreSQL and Redis servers (fresh database, one Redis namespace per test)."""

from __future__ import annotations

import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
from botapi import BotAPIServer  # noqa: E402  (a local Telegram Bot API)
from support import code_outputs, execute_notebook, fresh_pg_database  # noqa: E402

from research import challenger, retrain  # noqa: E402
from research import schema as S  # noqa: E402
from research.analysis.metrics import probability_metrics  # noqa: E402
from research.dataset import ClosedTrades  # noqa: E402
from research.errors import InsufficientDataError  # noqa: E402
from research.pipeline import run_signals_and_phantoms  # noqa: E402
from research.scoring import MLScorer, ScorerConfig  # noqa: E402
from research.stores import ModelIntegrityError  # noqa: E402
from research.stores.audit import AuditTrail  # noqa: E402
from research.stores.registry import KEY_ENV, LoadedModel, ModelRegistry  # noqa: E402
from research.stores.state import open_state  # noqa: E402
from research.synthetic import edge, make_markets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "pipelines" / "retrain_publish.ipynb"
REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = "retrain-test-signing-key-0123456789"
from nbrunner import RESULT_MIME, collect_results  # noqa: E402

SMALL = {"n_estimators": 10, "gb_max_iter": 10}  # model size: seconds, not minutes
TOKEN, CHAT = "123456:retrain-token", "-100777"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    for name in (
        "PHANTOMLAB_TELEGRAM_TOKEN",
        "PHANTOMLAB_TELEGRAM_CHAT_ID",
        "PHANTOMLAB_NAMESPACE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def market_trades():
    """Closed scalp trades of a 3-symbol market with a planted session edge, and features."""
    candles = make_markets(n_bars=4000, seed=1, edges=(edge("session_trend", drift=0.4),))
    study = run_signals_and_phantoms(candles, ["scalp"], progress=False)
    trades = study.signals.merge(study.outcomes, on=S.SIGNAL_ID)
    trades = trades.loc[~trades[S.CENSORED].to_numpy()].reset_index(drop=True)
    trades[S.WAS_EXECUTED] = np.arange(len(trades)) % 3 == 0  # executed and phantoms alike
    return trades, study.features


@pytest.fixture(scope="module")
def database_url(market_trades):
    trades, features = market_trades
    with fresh_pg_database() as url:
        with AuditTrail(url) as audit:
            audit.record_trades(trades, features=features)
            # trend trades WITHOUT features: the "features missing" path
            bare = trades.head(60).assign(**{S.STRATEGY: "trend"})
            bare[S.SIGNAL_ID] = "bare-" + bare[S.SIGNAL_ID].astype(str)
            audit.record_trades(bare)
        yield url


@pytest.fixture
def namespace():
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    store = open_state(REDIS_URL, namespace=ns)
    keys = store.all_keys()
    if keys:
        store.backend.delete(*keys)


@pytest.fixture
def stores(database_url, namespace):
    opened = retrain.open_stores(
        database_url=database_url, state_url=REDIS_URL, namespace=namespace
    )
    yield opened
    opened.close()


@pytest.fixture
def bot_api(monkeypatch):
    server = BotAPIServer(token=TOKEN)
    server.start()
    monkeypatch.setenv("PHANTOMLAB_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("PHANTOMLAB_TELEGRAM_CHAT_ID", CHAT)
    monkeypatch.setenv("PHANTOMLAB_TELEGRAM_BASE_URL", server.url)
    yield server
    server.stop()


def _config(**overrides) -> retrain.RetrainConfig:
    return retrain.RetrainConfig(model=retrain.challenger_model(**SMALL), **overrides)


# ---------------------------------------------------------------------------- split
def _hand_made() -> ClosedTrades:
    """10 hourly signals; trade 5 stays open until 08:45, trade 3 times out."""
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    exits = [0.5, 1.5, 2.5, 3.5, 4.5, 8.75, 6.5, 7.5, 8.5, 9.5]
    frame = pd.DataFrame(
        {
            S.SIGNAL_ID: [f"s{i}" for i in range(10)],
            S.SIGNAL_TIME: [t0 + pd.Timedelta(hours=i) for i in range(10)],
            S.EXIT_TIME: [t0 + pd.Timedelta(hours=h) for h in exits],
            S.OUTCOME: [
                "win",
                "loss",
                "win",
                "timeout",
                "loss",
                "win",
                "loss",
                "win",
                "loss",
                "win",
            ],
        }
    ).sort_values(S.EXIT_TIME, ignore_index=True)
    return ClosedTrades.from_audit(frame, pd.DataFrame(index=frame.index), strategy="scalp")


def test_split_holds_out_the_latest_exits_and_purges_what_was_still_open():
    data = _hand_made()
    split = retrain.split_point_in_time(data, _config(oos_fraction=0.3))
    ids = data.trades[S.SIGNAL_ID]
    # 9 eligible (the timeout is neither trained on nor scored): the last ceil(2.7) = 3 exits
    assert sorted(ids.iloc[split.oos]) == ["s5", "s8", "s9"]
    # the long trade s5 was signalled at 05:00: only outcomes known before then train
    assert split.oos_start == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert sorted(ids.iloc[split.train]) == ["s0", "s1", "s2", "s4"]
    assert split.purged == 2  # s6 and s7 closed after 05:00
    assert split.train_end == pd.Timestamp("2024-01-01 04:30", tz="UTC")
    assert split.summary().loc["train", "trades"] == 4


def test_split_on_real_trades_is_point_in_time_and_cap_keeps_the_latest(stores):
    data = retrain.load_trades(stores, _config())
    full = retrain.split_point_in_time(data, _config())
    t = data.trades
    assert not set(full.train) & set(full.oos)
    assert (t[S.EXIT_TIME].iloc[full.train] < full.oos_start).all()
    assert full.oos_start == t[S.SIGNAL_TIME].iloc[full.oos].min()
    before = np.setdiff1d(np.arange(len(t)), full.oos)
    assert t[S.EXIT_TIME].iloc[full.oos].min() >= t[S.EXIT_TIME].iloc[before].max()
    assert len(full.oos) == int(np.ceil(0.2 * len(t)))
    capped = retrain.split_point_in_time(data, _config(max_train_trades=100))
    np.testing.assert_array_equal(capped.train, full.train[-100:])
    assert capped.capped == len(full.train) - 100
    np.testing.assert_array_equal(capped.oos, full.oos)


# ---------------------------------------------------------------------------- loading
def test_too_few_trades_or_missing_features_fail_with_a_fix(stores):
    with pytest.raises(InsufficientDataError, match=r"min_trades=100000.*Fix:"):
        retrain.load_trades(stores, _config(min_trades=100_000))
    # 60 trend trades were recorded without features: none is usable
    with pytest.raises(InsufficientDataError, match="60 without features.*Fix:"):
        retrain.load_trades(stores, _config(strategy="trend", min_trades=10))
    with pytest.raises(ValueError, match="unknown strategy 'breakout'.*Fix:"):
        _config(strategy="breakout")
    with pytest.raises(ValueError, match="unknown source 'csv'.*Fix:"):
        _config(source="csv")


def test_state_source_reads_the_scorers_trades_with_their_features(stores, market_trades):
    trades, features = market_trades
    scorer = MLScorer("scalp", config=ScorerConfig(min_trades=10**9))  # record only
    for row in trades.sort_values([S.EXIT_TIME, S.SIGNAL_ID]).itertuples(index=False):
        sid = getattr(row, S.SIGNAL_ID)
        scorer.record_outcome(
            {S.SIGNAL_ID: sid, S.SIGNAL_TIME: getattr(row, S.SIGNAL_TIME)},
            getattr(row, S.OUTCOME),
            getattr(row, S.PNL_PERCENT),
            features=features.loc[sid].to_dict(),
            exit_time=getattr(row, S.EXIT_TIME),
        )
    stores.state.save_scorer(scorer.to_state())
    from_state = retrain.load_trades(stores, _config(source="state"))
    from_sql = retrain.load_trades(stores, _config())
    ids = from_sql.trades[S.OUTCOME] != "timeout"  # the online scorer skips timeouts (seed)
    assert list(from_state.trades[S.SIGNAL_ID]) == list(from_sql.trades.loc[ids, S.SIGNAL_ID])
    pd.testing.assert_frame_equal(
        from_state.features, from_sql.features.loc[ids].reset_index(drop=True), check_dtype=False
    )


# ---------------------------------------------------------------------------- decision
def _comparison(mine: float | None, theirs: float | None, n: int = 200) -> challenger.Comparison:
    def metrics(brier):
        return {"n": n, "win_rate": 0.4, "auc": 0.6, "brier": brier, "log_loss": 0.7, "ece": 0.05}

    t = pd.Timestamp("2024-01-01", tz="UTC")
    return challenger.Comparison(
        challenger=metrics(mine),
        challenger_oos=metrics(mine),
        champion=None if theirs is None else metrics(theirs),
        champion_version=None if theirs is None else 3,
        challenger_train_end=t,
        champion_train_end=None if theirs is None else t,
        window_start=t,
        reliability=pd.DataFrame(),
    )


@pytest.mark.parametrize(
    ("mine", "theirs", "n", "kw", "publish", "words"),
    [
        (0.30, None, 200, {}, True, "no champion"),
        (0.230, 0.240, 200, {}, True, "challenger published"),
        (0.240, 0.240, 200, {}, True, "<="),  # equal is enough with min_improvement 0
        (0.235, 0.240, 200, {"min_improvement": 0.01}, False, "champion v3 kept"),
        (0.250, 0.240, 200, {}, False, "champion v3 kept"),
        (0.250, 0.240, 200, {"force": True}, True, "forced"),
        (0.200, 0.240, 49, {}, False, "fewer than min_window=50"),
        (0.200, 0.240, 49, {"force": True}, True, "forced"),
    ],
)
def test_decision_rule(mine, theirs, n, kw, publish, words):
    decision = challenger.decide(_comparison(mine, theirs, n), _config(**kw))
    assert decision.publish is publish
    assert words in decision.reason
    assert decision.forced is ("forced" in words)
    assert decision.summary()["challenger_brier"] == mine


def test_champion_is_judged_only_after_its_own_training_cut_off(stores):
    data = retrain.load_trades(stores, _config())
    split = retrain.split_point_in_time(data, _config())
    model = retrain.fit_challenger(data, split, _config())
    oos_signals = data.trades[S.SIGNAL_TIME].iloc[split.oos]
    champ_end = oos_signals.sort_values().iloc[len(split.oos) // 2]  # saw half of the window
    champion = LoadedModel(
        version=7, model=model, fast=None, meta={"train_end": champ_end.isoformat()}
    )
    comp = challenger.compare_models(model, champion, data, split)
    window = split.oos[(oos_signals > champ_end).to_numpy()]
    assert comp.n_window == len(window) == comp.champion["n"]
    p = model.predict_proba(data.features.iloc[window])[:, 1]
    assert comp.champion["brier"] == pytest.approx(probability_metrics(data.y[window], p)["brier"])
    assert comp.challenger_oos["n"] == len(split.oos)
    # no train_end: nothing is known unseen, so the champion is kept unless forced
    blind = LoadedModel(version=7, model=model, fast=None, meta={})
    comp = challenger.compare_models(model, blind, data, split)
    decision = challenger.decide(comp, _config())
    assert comp.n_window == 0 and not decision.publish and "no train_end" in decision.reason


def test_notify_false_sends_nothing(bot_api):
    result = {"published": False, "model_version": 3, "reason": "r", "metrics": {}}
    assert challenger.notify_result(result, "scalp", enabled=False) is False
    assert challenger.notify_result(result, "scalp") is True
    assert len(bot_api.requests) == 1 and "kept v3" in bot_api.requests[0]["body"]["text"]


# ---------------------------------------------------------------------------- notebook
def _run(tmp_path: Path, name: str, **parameters) -> nbformat.NotebookNode:
    return execute_notebook(NOTEBOOK, tmp_path / f"{name}.ipynb", {**SMALL, **parameters})


_outputs = code_outputs


def _result(nb) -> dict:
    outputs = _outputs(nb)
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    assert any("image/png" in o.get("data", {}) for o in outputs), "no reliability figure"
    results = [o["data"][RESULT_MIME] for o in outputs if RESULT_MIME in o.get("data", {})]
    # first the SQL run id (so the runner can close the row if a later cell fails), then the
    # result of the run; the runner merges them, later keys winning
    assert len(results) == 2, "the notebook must hand its run id, then its result, to the runner"
    assert set(results[0]) == {"pipeline_run_id"}
    merged = collect_results(nb)
    assert merged["pipeline_run_id"] == results[0]["pipeline_run_id"]
    return merged


def test_notebook_publishes_then_keeps_the_champion_against_a_worse_challenger(
    tmp_path, database_url, namespace, bot_api
):
    where = {
        "strategy": "scalp",
        "database_url": database_url,
        "state_url": REDIS_URL,
        "namespace": namespace,
    }
    store = open_state(REDIS_URL, namespace=namespace)
    store.save_thresholds("scalp", {"stale|bucket": 99.0}, 1)  # a publish must replace them
    first = _result(_run(tmp_path, "first", **where))
    assert first["published"] is True and first["model_version"] == 1
    champion = ModelRegistry(store).load_champion("scalp")  # verifies the signature
    assert champion.version == 1 and champion.meta["n_rows"] > 0
    with pytest.raises(ModelIntegrityError, match="signature mismatch"):
        ModelRegistry(store, key="some-other-key-0123456789").load_champion("scalp")
    table, count = store.load_thresholds("scalp")
    assert table and count == first["metrics"]["threshold_trades"] > 0
    assert len(table) == first["metrics"]["threshold_buckets"]
    assert float(store.backend.get(store.keys.ml("scalp", "threshold"))) == pytest.approx(
        first["metrics"]["ev_threshold"]
    )
    with AuditTrail(database_url, upgrade=False) as audit:
        runs = audit.runs("retrain_publish")
        versions = audit.model_versions("scalp")
    assert list(runs["status"]) == ["ok"] and runs[S.MODEL_VERSION].iloc[0] == 1
    assert versions.loc[versions["is_champion"].astype(bool), "version"].tolist() == [1]
    assert "stale|bucket" not in table
    keys = store.keys
    live = [
        keys.qcal("scalp", "thr"),
        keys.qcal("scalp", "last_train_count"),
        keys.ml("scalp", "threshold"),
    ]
    published_thresholds = [store.backend.get(key) for key in live]

    second = _result(_run(tmp_path, "second", max_train_trades=40, **where))
    m = second["metrics"]
    assert second["published"] is False and second["model_version"] == 1
    # kept because it IS worse, on the same fair window: check the numbers, not the flag
    assert m["challenger_n"] == m["champion_n"] >= 50
    assert m["challenger_brier"] > m["champion_brier"]
    assert "champion v1 kept" in second["reason"]
    # the champion on that window is the first run's challenger: the same number
    assert m["champion_brier"] == pytest.approx(first["metrics"]["challenger_brier"])
    assert ModelRegistry(store).champion_version("scalp") == 1
    assert len(ModelRegistry(store).list_versions("scalp")) == 1
    # only a published model refreshes the live thresholds: a keep leaves them byte-identical
    assert [store.backend.get(key) for key in live] == published_thresholds
    assert m["threshold_buckets"] == 0 and m["threshold_trades"] == 0
    with AuditTrail(database_url, upgrade=False) as audit:
        runs = audit.runs("retrain_publish")
    assert list(runs["status"]) == ["ok", "ok"] and runs[S.MODEL_VERSION].tolist() == [1, 1]
    assert runs["metrics"].iloc[1]["challenger_brier"] == pytest.approx(m["challenger_brier"])
    texts = [r["body"]["text"] for r in bot_api.requests]
    assert len(texts) == 2
    assert "published v1" in texts[0] and "kept v1" in texts[1] and "brier" in texts[1]


def test_notebook_fails_with_a_fix_when_the_database_is_down(tmp_path, namespace):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        _run(
            tmp_path,
            "down",
            database_url="postgresql://postgres@127.0.0.1:1/none",
            state_url=REDIS_URL,
            namespace=namespace,
        )
    assert info.value.ename == "StoreUnavailable"
    assert "does not answer" in info.value.evalue and "Fix:" in info.value.evalue
