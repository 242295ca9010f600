"""State store and model registry on the REAL Redis server and on SQLite (one suite for both)."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from support import closed_scalp_dataset

from research import schema as S
from research.online.persist import restore_scorer, save_replay
from research.pipeline import load_market, run_signals_and_phantoms
from research.replay import ReplayConfig, replay
from research.scoring import EnsembleScorer, ScorerConfig
from research.stores import ModelIntegrityError, StoreUnavailable
from research.stores.audit import AuditTrail
from research.stores.registry import KEY_ENV, ModelRegistry, _canonical, _signature
from research.stores.state import open_state
from research.synthetic import make_market

REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = "unit-test-signing-key-0123456789"


def _open(kind: str, tmp_path: Path, namespace: str):
    if kind == "redis":
        return open_state(REDIS_URL, namespace=namespace)
    return open_state(f"sqlite:///{tmp_path / 'state.db'}", namespace=namespace)


@pytest.fixture(params=["redis", "sqlite"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, tmp_path):
    ns = f"t{uuid.uuid4().hex[:10]}"  # one namespace per test: tests share the real server
    st = _open(kind, tmp_path, ns)
    st.ping()
    yield st
    keys = st.all_keys()
    if keys:
        st.backend.delete(*keys)


@pytest.fixture(autouse=True)
def signing_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
def model_and_data():
    _, _, x, y = closed_scalp_dataset(make_market(n_bars=3000, seed=1))
    model = EnsembleScorer(n_estimators=10, gb_max_iter=10, random_state=0).fit(x, y)
    return model, x


def record(i: int, *, strategy="scalp", outcome=None, exit_time=None) -> dict:
    t = exit_time if exit_time is not None else pd.Timestamp("2024-03-01", tz="UTC")
    return {
        S.SIGNAL_ID: f"sig-{i}",
        S.STRATEGY: strategy,
        S.SYMBOL: "BTC",
        S.SIDE: "long",
        S.SIGNAL_TIME: t - pd.Timedelta(hours=1),
        S.EXIT_TIME: t,
        S.OUTCOME: outcome or ("win" if i % 3 == 0 else "loss"),
        S.PNL_PERCENT: 0.1,
        S.REALIZED_RR: np.float64(1.5),
        S.ML_SCORE: np.nan,
    }


# ---------------------------------------------------------------------------- state
def test_key_schema_after_a_replay_and_restore_scores_identically(store, kind):
    candles = load_market(n_bars=3000, seed=5)
    study = run_signals_and_phantoms(candles, progress=False)
    cfg = ReplayConfig(
        scorer=ScorerConfig(
            model=EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False),
            retrain_every=150,
        ),
        n_boot=50,
    )
    res = replay(candles, config=cfg, study=study, progress=False)
    registry = ModelRegistry(store)
    versions = save_replay(store, res, registry=registry, publish=True)
    p = store.keys.p
    keys = set(store.all_keys())
    trained = [s for s, sc in res.scorers.items() if sc.is_ready]
    assert trained and all(versions[s] == 1 for s in trained)
    for s in res.scorers:
        for field in (
            "completed_trades",
            "last_train_count",
            "threshold",
            "ev_buckets",
            "nn_enabled",
            "last_train_ts",
            "trades",
        ):
            assert f"{p}ml:{s}:{field}" in keys, field
        assert f"{p}phantom:wr:{s}" in keys
    for s in trained:
        assert {
            f"{p}ml:{s}:model",
            f"{p}ml:{s}:scaler",
            f"{p}ml:{s}:calibrator",
            f"{p}qcal:{s}:thr",
            f"{p}qcal:{s}:last_train_count",
        } <= keys
    assert {f"{p}phantom:completed", f"{p}scalp_phantom:completed", f"{p}phantom:active"} <= keys
    assert any(k.startswith(f"{p}phantom:blocked:2") for k in keys)
    # nothing outside the schema (plus the registry's versions and the idempotency set)
    allowed = ("ml:", "phantom:", "qcal:", "scalp_phantom:completed")
    assert all(k[len(p) :].startswith(allowed) for k in keys)
    assert len(store.completed()) == min(1000, len(store.completed()))
    # restore and score identically
    feats = study.features.iloc[:200]
    for s in trained:
        restored = restore_scorer(store, s, registry=registry, config=cfg.scorer)
        original = res.scorers[s]
        assert restored.completed_trades == original.completed_trades
        assert restored.model_version == original.model_version
        np.testing.assert_array_equal(
            restored.score_frame(feats)[0], original.score_frame(feats)[0]
        )
        one = feats.iloc[7].to_dict()
        assert restored.score_signal(one) == pytest.approx(original.score_signal(one), abs=1e-9)


def test_retention_trims_happen_with_the_push(store):
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for i in range(1100):  # one per hour: 45 days, so the 30-day age trim bites first
        assert store.record_completed(record(i, exit_time=t0 + pd.Timedelta(hours=i)))
    kept = store.completed()
    assert len(kept) == 30 * 24 + 1
    assert kept[0][S.SIGNAL_ID] == f"sig-{1099 - 720}" and kept[-1][S.SIGNAL_ID] == "sig-1099"
    wr = store.win_history("scalp")
    assert len(wr) == 200
    assert wr == ["1" if i % 3 == 0 else "0" for i in range(1099, 899, -1)]  # newest first


def test_count_trim_and_scalp_list(store):
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for i in range(1200):  # one per minute: the 1000-record cap bites
        strategy = "scalp" if i % 2 else "trend"
        store.record_completed(record(i, strategy=strategy, exit_time=t0 + pd.Timedelta(minutes=i)))
    kept = store.completed()
    assert len(kept) == 1000 and kept[0][S.SIGNAL_ID] == "sig-200"
    scalp = store.completed(scalp=True)
    assert len(scalp) == 600 and {r[S.STRATEGY] for r in scalp} == {"scalp"}
    assert len(store.win_history("trend")) == 200


def test_recording_is_idempotent_and_timeouts_do_not_enter_the_win_history(store):
    assert store.record_completed(record(1))
    assert not store.record_completed(record(1))
    assert store.record_completed(record(2, outcome="timeout"))
    assert len(store.completed()) == 2 and store.win_history("scalp") == ["0"]
    assert store.incr_blocked("2024-03-01", 3) == 3 and store.blocked("2024-03-01") == 3


def test_namespaces_do_not_see_each_other(kind, tmp_path):
    a = _open(kind, tmp_path, f"a{uuid.uuid4().hex[:6]}")
    b = _open(kind, tmp_path, f"b{uuid.uuid4().hex[:6]}")
    try:
        a.record_completed(record(1))
        assert b.completed() == [] and len(a.completed()) == 1
        assert all(k.startswith(a.keys.p) for k in a.all_keys())
    finally:
        for st in (a, b):
            if st.all_keys():
                st.backend.delete(*st.all_keys())


def test_a_store_that_is_down_says_how_to_fix_it(tmp_path):
    down = open_state("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable, match="does not answer.*Fix"):
        down.ping()
    with pytest.raises(StoreUnavailable, match="does not exist. Fix"):
        open_state(f"sqlite:///{tmp_path / 'missing' / 'state.db'}")
    with pytest.raises(ValueError, match="unknown state store URL"):
        open_state("mongodb://x")


# ---------------------------------------------------------------------------- registry
def test_publish_load_rollback_and_list(store, model_and_data, tmp_path):
    model, x = model_and_data
    audit = AuditTrail(f"sqlite:///{tmp_path / 'audit.db'}")
    reg = ModelRegistry(store, audit=audit)
    assert reg.load_champion("scalp") is None
    assert reg.publish("scalp", model, metrics={"auc": 0.61}, n_rows=len(x)) == 1
    assert reg.publish("scalp", model) == 2
    champ = reg.load_champion("scalp")
    assert champ.version == 2
    np.testing.assert_array_equal(champ.model.score_signals(x), model.score_signals(x))
    np.testing.assert_allclose(champ.fast.score_signals(x), model.score_signals(x), atol=1e-9)
    meta = champ.meta
    assert meta["features"] == model.feature_names_ and meta["versions"]["sklearn"]
    assert (
        meta["blob_sha256"]
        == hashlib.sha256(store.backend.get(store.keys.ml("scalp", "model:v2"))).hexdigest()
    )
    reg.rollback("scalp", 1)
    assert reg.champion_version("scalp") == 1
    pointers = {
        store.backend.get(store.keys.ml("scalp", f)) for f in ("model", "scaler", "calibrator")
    }
    assert pointers == {b"v1"}
    sql = audit.model_versions("scalp").set_index("version")
    assert sql.index.tolist() == [1, 2] and sql.loc[1, "is_champion"]
    assert not sql.loc[2, "is_champion"] and sql.loc[2, "sha256"] == meta["blob_sha256"]
    listed = reg.list_versions("scalp")
    assert listed["version"].tolist() == [1, 2] and listed["champion"].tolist() == [True, False]
    assert listed.loc[0, "metric_auc"] == pytest.approx(0.61)
    with pytest.raises(ModelIntegrityError, match="missing"):
        reg.rollback("scalp", 9)


def test_racing_publishers_keep_both_versions_and_a_consistent_pointer(
    kind, tmp_path, model_and_data
):
    model, _ = model_and_data
    ns = f"race{uuid.uuid4().hex[:6]}"
    stores = [_open(kind, tmp_path, ns) for _ in range(2)]  # separate connections
    barrier, errors = threading.Barrier(2), []

    def publish(st):
        try:
            barrier.wait()
            for _ in range(3):
                ModelRegistry(st).publish("trend", model)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        reg = ModelRegistry(stores[0])
        assert reg.list_versions("trend")["version"].tolist() == [1, 2, 3, 4, 5, 6]
        assert reg.champion_version("trend") == 6  # the newest; all three pointers agree
        assert reg.load_champion("trend").version == 6
    finally:
        keys = stores[0].all_keys()
        if keys:
            stores[0].backend.delete(*keys)


def test_tampered_unsigned_wrong_key_and_untrusted_blobs_are_refused(
    store, model_and_data, monkeypatch
):
    model, _ = model_and_data
    reg = ModelRegistry(store)
    reg.publish("range", model)
    blob_key, meta_key = store.keys.ml("range", "model:v1"), store.keys.ml("range", "model:v1:meta")
    blob = store.backend.get(blob_key)
    store.backend.set(blob_key, blob[:-10] + b"0123456789")
    with pytest.raises(ModelIntegrityError, match="signature mismatch"):
        reg.load_champion("range")
    store.backend.set(blob_key, blob)
    assert reg.load_champion("range").version == 1  # restored blob verifies again
    monkeypatch.setenv(KEY_ENV, "another-key-of-sufficient-length")
    with pytest.raises(ModelIntegrityError, match="another key"):
        reg.load_champion("range")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ModelIntegrityError, match=f"Fix: export {KEY_ENV}"):
        reg.load_champion("range")
    monkeypatch.setenv(KEY_ENV, KEY)
    meta = json.loads(store.backend.get(meta_key))
    store.backend.set(meta_key, _canonical({k: v for k, v in meta.items() if k != "signature"}))
    with pytest.raises(ModelIntegrityError, match="unsigned"):
        reg.load_champion("range")
    # a correctly signed blob holding a type outside the pinned list is still refused
    evil = sio.dumps({"payload": threading.Lock})
    onnx_blob = store.backend.get(store.keys.ml("range", "model:v1:onnx"))
    meta["signature"] = _signature(KEY.encode(), evil, onnx_blob, meta)
    store.backend.set(blob_key, evil)
    store.backend.set(meta_key, _canonical(meta))
    with pytest.raises(ModelIntegrityError, match="pinned trusted list"):
        reg.load_champion("range")


def test_incompatible_versions_are_refused(store, model_and_data):
    model, _ = model_and_data
    reg = ModelRegistry(store)
    reg.publish("trend", model)
    key = store.keys.ml("trend", "model:v1:meta")
    meta = json.loads(store.backend.get(key))
    meta["versions"]["sklearn"] = "0.24.2"
    blob = store.backend.get(store.keys.ml("trend", "model:v1"))
    onnx_blob = store.backend.get(store.keys.ml("trend", "model:v1:onnx"))
    meta["signature"] = _signature(KEY.encode(), blob, onnx_blob, meta)
    store.backend.set(key, _canonical(meta))
    with pytest.raises(ModelIntegrityError, match="scikit-learn 0.24.2"):
        reg.load_champion("trend")


def test_no_code_path_unpickles_store_data():
    root = Path(__file__).resolve().parents[1] / "research"
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if any(
            s in p.read_text()
            for s in ("pickle.load", "import pickle", "joblib.load", "cloudpickle")
        )
    ]
    assert offenders == []


def test_settings_read_urls_from_the_environment_with_real_defaults():
    from research.config import Settings

    default = Settings.from_env({})
    assert default.redis_url == "redis://127.0.0.1:6379/0"
    assert default.database_url.startswith("sqlite:///")
    env = Settings.from_env(
        {"PHANTOMLAB_REDIS_URL": "sqlite:///x.db", "PHANTOMLAB_DATABASE_URL": "postgresql://h/db"}
    )
    assert (env.redis_url, env.database_url) == ("sqlite:///x.db", "postgresql://h/db")


def test_both_backends_speak_the_typed_protocol(store):
    """The backend is a StateBackend: typed commands with Redis' results, no call by name."""
    from research.stores.protocol import StateBackend

    b, key = store.backend, store.keys.phantom("protocol")
    assert isinstance(b, StateBackend) and not hasattr(b, "call")
    assert b.set(key, "x") and b.get(key) == b"x" and b.exists(key, key + ":none") == 1
    assert b.incrby(key + ":n", 2) == 2 and b.incr(key + ":n") == 3
    assert b.rpush(key + ":l", "a", "b") == 2 and b.lpush(key + ":l", "z") == 3
    assert b.lrange(key + ":l", 0, -1) == [b"z", b"a", b"b"] and b.llen(key + ":l") == 3
    assert b.sadd(key + ":s", "m") == 1 and b.sismember(key + ":s", "m")
    assert b.smembers(key + ":s") == {b"m"} and b.scard(key + ":s") == 1
    assert b.zadd(key + ":z", {"q": 2.0, "p": 1.0}) == 2
    assert b.zrange(key + ":z", 0, -1) == [b"p", b"q"] and b.zcard(key + ":z") == 2
    assert b.rename(key, key + ":renamed") and b.get(key) is None
    assert b.delete(key + ":renamed") == 1
