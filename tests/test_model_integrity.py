"""Bad model versions, pointers and blobs are refused alike; orphans never become champion.

Everything runs against the REAL Redis server (127.0.0.1:6379, one namespace per test) and, for
the SQL mirror, a fresh database on the REAL PostgreSQL server (127.0.0.1:5432). Each bad case is
made the way it happens in the field: the bad bytes are written straight into the keys the
registry uses (re-signed with the real key where the point is that a signature is not enough),
or a publishing process is really killed between its Redis write and its SQL record.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from support import closed_scalp_dataset, fresh_pg_database

from research.scoring import EnsembleScorer
from research.stores import ModelIntegrityError, StoreUnavailable
from research.stores.audit import AuditTrail, model_versions
from research.stores.registry import KEY_ENV, ModelRegistry, _canonical, _signature
from research.stores.state import open_state
from research.synthetic import make_market

REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = "unit-test-signing-key-0123456789"
DOWN_URL = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
STRATEGY = "scalp"
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def signing_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def _open(namespace: str):
    store = open_state(REDIS_URL, namespace=namespace)
    store.ping()
    return store


def _drop(store) -> None:
    keys = store.all_keys()
    if keys:
        store.backend.delete(*keys)


@pytest.fixture(scope="module")
def model_and_data():
    _, _, x, y = closed_scalp_dataset(make_market(n_bars=3000, seed=1))
    model = EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False, random_state=0)
    return model.fit(x, y), x, y


@pytest.fixture(scope="module")
def template(model_and_data):
    """The keys of two good versions (v2 the champion), published once for the module."""
    store = _open(f"mi{uuid.uuid4().hex[:10]}")
    try:
        registry = ModelRegistry(store, key=KEY)
        assert [registry.publish(STRATEGY, model_and_data[0]) for _ in range(2)] == [1, 2]
        return {k[len(store.keys.p) :]: store.backend.get(k) for k in store.all_keys()}
    finally:
        _drop(store)


@pytest.fixture
def empty_store():
    store = _open(f"mi{uuid.uuid4().hex[:10]}")  # one namespace per test: the server is shared
    yield store
    _drop(store)


@pytest.fixture
def store(empty_store, template):
    """A namespace holding the template's two good versions, v2 the champion."""
    for key, value in template.items():
        empty_store.backend.set(empty_store.keys.p + key, value)
    return empty_store


@pytest.fixture(scope="module")
def pg_url():
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def audit(pg_url):
    trail = AuditTrail(pg_url)
    with trail.engine.begin() as conn:
        conn.execute(model_versions.delete())
    yield trail
    trail.close()


# ---------------------------------------------------------------------------- helpers
def _key(store, part: str) -> str:
    return store.keys.ml(STRATEGY, part)


def _get(store, part: str):
    return store.backend.get(_key(store, part))


def _put(store, part: str, value) -> None:
    store.backend.set(_key(store, part), value)


def _resign(store, version: int, *, blob=None, onnx=None, **changes) -> None:
    """Rewrite a version's keys and sign them with the real key (what a key holder can do)."""
    v = f"model:v{version}"
    blob = _get(store, v) if blob is None else blob
    onnx = _get(store, f"{v}:onnx") if onnx is None else onnx
    meta = json.loads(_get(store, f"{v}:meta")) | changes
    meta["signature"] = _signature(KEY.encode(), blob, onnx, meta)
    for part, value in (("", blob), (":onnx", onnx), (":meta", _canonical(meta))):
        _put(store, v + part, value)


def _pointers(store) -> set:
    return {_get(store, f) for f in ("model", "scaler", "calibrator")}


def _refused_then_rolled_back(store, match: str) -> str:
    """The champion (v2) is refused with ``match`` and a fix; rolling back to v1 repairs it."""
    registry = ModelRegistry(store)
    with pytest.raises(ModelIntegrityError, match=match) as refused:
        registry.load_champion(STRATEGY)
    assert "Fix:" in str(refused.value) and "rollback" in str(refused.value)
    registry.rollback(STRATEGY, 1)
    assert registry.load_champion(STRATEGY).version == 1 and _pointers(store) == {b"v1"}
    return str(refused.value)


def _sql_champion(audit) -> list[int]:
    frame = audit.model_versions(STRATEGY)
    return frame.loc[frame["is_champion"], "version"].tolist()


# ---------------------------------------------------------------------------- pointers
@pytest.mark.parametrize("garbage", [b"garbage", b"v0", b"v-2", b"\xff\xfe", b"v2 ", b""])
def test_a_garbage_champion_pointer_is_refused_and_rollback_repairs_it(store, garbage):
    for field in ("model", "scaler", "calibrator"):
        _put(store, field, garbage)
    registry = ModelRegistry(store)
    with pytest.raises(ModelIntegrityError, match=r"is not a version \(v<N>\)\. Fix: roll back"):
        registry.load_champion(STRATEGY)
    listed = registry.list_versions(STRATEGY)  # what the fix needs still works
    assert listed["version"].tolist() == [1, 2] and not listed["champion"].any()
    assert listed["status"].tolist() == ["ready", "ready"]
    registry.rollback(STRATEGY, 2)  # the suggested fix works although the pointer is garbage
    assert registry.load_champion(STRATEGY).version == 2 and _pointers(store) == {b"v2"}


def test_publishing_over_a_garbage_pointer_makes_the_new_version_champion(store, model_and_data):
    for field in ("model", "scaler", "calibrator"):
        _put(store, field, b"not-a-version")
    registry = ModelRegistry(store)
    assert registry.publish(STRATEGY, model_and_data[0]) == 3
    assert registry.load_champion(STRATEGY).version == 3 and _pointers(store) == {b"v3"}


# ---------------------------------------------------------------------------- metadata
@pytest.mark.parametrize(
    "raw, match",
    [
        (b"[1, 2, 3]", "metadata is not a JSON object"),
        (b"null", "metadata is not a JSON object"),
        (b'"a string"', "metadata is not a JSON object"),
        (b"\x00\xffnot json", "metadata is not a JSON object"),
    ],
)
def test_metadata_that_is_not_a_json_object_is_refused(store, raw, match):
    _put(store, "model:v2:meta", raw)
    _refused_then_rolled_back(store, match)
    listed = ModelRegistry(store).list_versions(STRATEGY)
    assert listed["status"].tolist() == ["ready", "unreadable"]


@pytest.mark.parametrize("signature", [12345, ["ab" * 32], {"hex": "ab"}, "xyz" * 20, True])
def test_a_signature_that_is_not_a_hex_string_is_refused(store, signature):
    meta = json.loads(_get(store, "model:v2:meta")) | {"signature": signature}
    _put(store, "model:v2:meta", _canonical(meta))
    _refused_then_rolled_back(store, "signature is not an HMAC-SHA256 hex string")


@pytest.mark.parametrize(
    "changes",
    [
        {"versions": "sklearn"},
        {"versions": {"numpy": "2.0"}},
        {"features": None},
        {"features": [1, 2]},
        {"calibration": [[0.5]]},
        {"calibration": "isotonic"},
        {"schema_hash": None},
    ],
)
def test_signed_metadata_with_malformed_fields_is_refused(store, changes):
    _resign(store, 2, **changes)
    _refused_then_rolled_back(store, "signed metadata is malformed")


def test_signed_keys_copied_from_another_version_are_refused(store):
    for part in ("", ":onnx", ":meta"):  # v1's keys verify: their signature is genuine
        _put(store, f"model:v2{part}", _get(store, f"model:v1{part}"))
    _refused_then_rolled_back(store, "v2 holds the signed keys of scalp v1")


# ---------------------------------------------------------------------------- blobs
@pytest.mark.parametrize("blob", [b"not a zip archive", b"PK\x03\x04" + b"\x00" * 64, b""])
def test_a_resigned_blob_that_is_not_a_skops_file_is_refused(store, blob):
    _resign(store, 2, blob=blob)
    _refused_then_rolled_back(store, "blob is not a skops file")


def test_a_resigned_onnx_graph_that_does_not_load_is_refused(store):
    _resign(store, 2, onnx=b"definitely not an onnx graph")
    _refused_then_rolled_back(store, "ONNX graph or calibration does not load")


@pytest.mark.parametrize("kind", ["logistic_regression", "dict", "array", "unfitted_ensemble"])
def test_types_skops_trusts_by_default_are_refused_after_the_signature(store, model_and_data, kind):
    _, x, y = model_and_data
    numeric = x.select_dtypes("number").fillna(0.0)
    foreign = {
        "logistic_regression": lambda: LogisticRegression(max_iter=2000).fit(numeric, y),
        "dict": lambda: {"n_features_in_": 52, "members_": {}},
        "array": lambda: np.arange(52.0),
        "unfitted_ensemble": lambda: EnsembleScorer(),
    }[kind]()
    _resign(store, 2, blob=sio.dumps(foreign))
    message = _refused_then_rolled_back(store, r"v2 holds a .*, not a fitted")
    assert "research.scoring.ensemble.EnsembleScorer" in message


def test_a_model_with_other_features_than_its_signed_metadata_is_refused(store, model_and_data):
    _, x, y = model_and_data
    other = EnsembleScorer(n_estimators=5, gb_max_iter=5, nn_enabled=False, random_state=0)
    other.fit(x.drop(columns=[x.columns[0]]), y)
    _resign(store, 2, blob=sio.dumps(other))  # the metadata still lists v2's own features
    _refused_then_rolled_back(store, "model features .* differ from its signed metadata")


def test_a_model_whose_features_do_not_fit_the_current_registry_is_refused(store, model_and_data):
    model = model_and_data[0]
    unregistered = copy.deepcopy(model)
    unregistered.feature_names_ = [*model.feature_names_[:-1], "no_such_feature"]
    _resign(store, 2, blob=sio.dumps(unregistered), features=unregistered.feature_names_)
    _refused_then_rolled_back(
        store,
        r"do not fit the current feature registry \(unregistered: "
        r"\['no_such_feature'\]",
    )
    wider = copy.deepcopy(model)
    wider.n_features_in_ = model.n_features_in_ + 3  # fitted on an encoding that is not ours
    _resign(store, 1, blob=sio.dumps(wider))
    with pytest.raises(ModelIntegrityError, match=r"encode to \d+ columns, the model takes"):
        ModelRegistry(store).load(STRATEGY, 1)


# ---------------------------------------------------------------------------- lifecycle
def test_a_version_published_before_statuses_existed_still_loads(store):
    store.backend.delete(_key(store, "model:v2:status"))
    registry = ModelRegistry(store)
    assert registry.load_champion(STRATEGY).version == 2
    assert registry.list_versions(STRATEGY)["status"].tolist() == ["ready", "legacy"]


KILLED_PUBLISHER = """
import os, signal, sys
from support import closed_scalp_dataset
from research.scoring import EnsembleScorer
from research.stores.audit import AuditTrail
from research.stores.registry import ModelRegistry
from research.stores.state import open_state
from research.synthetic import make_market

class KilledBeforeTheSqlRecord(AuditTrail):
    def record_model_version(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies right here

_, _, x, y = closed_scalp_dataset(make_market(n_bars=3000, seed=1))
model = EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False, random_state=0)
store = open_state(sys.argv[1], namespace=sys.argv[2])
audit = KilledBeforeTheSqlRecord(sys.argv[3], upgrade=False)
ModelRegistry(store, audit=audit).publish("scalp", model.fit(x, y))
"""


def test_an_orphan_left_by_a_killed_publisher_is_listed_pending_and_never_champion(
    empty_store, audit, model_and_data
):
    store, model = empty_store, model_and_data[0]
    registry = ModelRegistry(store, audit=audit)
    assert registry.publish(STRATEGY, model) == 1
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "OMP_NUM_THREADS": "1",
    }
    died = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_PUBLISHER,
            REDIS_URL,
            store.keys.p,
            audit.url.render_as_string(hide_password=False),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    listed = registry.list_versions(STRATEGY)
    assert listed["version"].tolist() == [1, 2]
    assert listed["status"].tolist() == ["ready", "pending"]
    assert listed["champion"].tolist() == [True, False]
    assert registry.load_champion(STRATEGY).version == 1
    assert audit.model_versions(STRATEGY)["version"].tolist() == [1] and _sql_champion(audit) == [1]
    with pytest.raises(ModelIntegrityError, match=r"v2 is 'pending', not 'ready'.*Fix: roll back"):
        registry.rollback(STRATEGY, 2)
    assert registry.load(STRATEGY, 2, allow_pending=True).version == 2  # inspectable, no more
    for field in ("model", "scaler", "calibrator"):  # even a pointer forced onto it is refused
        _put(store, field, b"v2")
    with pytest.raises(ModelIntegrityError, match=r"v2 is 'pending'.*Fix: roll back"):
        registry.load_champion(STRATEGY)
    registry.rollback(STRATEGY, 1)
    assert registry.publish(STRATEGY, model) == 3  # the next publish moves on past the orphan
    assert registry.list_versions(STRATEGY)["status"].tolist() == ["ready", "pending", "ready"]
    assert registry.champion_version(STRATEGY) == 3 and _sql_champion(audit) == [3]


def test_sql_down_while_publishing_leaves_the_version_pending_and_the_champion_alone(
    empty_store, audit, model_and_data
):
    store, model = empty_store, model_and_data[0]
    assert ModelRegistry(store, audit=audit).publish(STRATEGY, model) == 1
    down = ModelRegistry(store, audit=AuditTrail(DOWN_URL, upgrade=False))
    with pytest.raises(
        StoreUnavailable,
        match=r"v2 .* stays 'pending' and never becomes champion"
        r"\. Fix: make the audit database reachable",
    ):
        down.publish(STRATEGY, model)
    registry = ModelRegistry(store, audit=audit)
    assert registry.list_versions(STRATEGY)["status"].tolist() == ["ready", "pending"]
    assert registry.champion_version(STRATEGY) == 1 and _sql_champion(audit) == [1]


# ---------------------------------------------------------------------------- SQL mirror
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_sql_champion_moves_forward_only_unless_rolled_back(backend, request, tmp_path):
    audit = (
        request.getfixturevalue("audit")
        if backend == "postgresql"
        else (AuditTrail(f"sqlite:///{tmp_path / 'audit.db'}"))
    )
    for version in (1, 2, 3):
        audit.record_model_version(STRATEGY, version, sha256=f"{version:064x}")
    assert audit.set_champion(STRATEGY, 3) == 3
    assert audit.set_champion(STRATEGY, 1) == 3  # a late mirror of an older champion
    assert audit.set_champion(STRATEGY, 2) == 3 and _sql_champion(audit) == [3]
    audit.record_model_version(STRATEGY, 0, sha256="0" * 64, is_champion=True)
    assert _sql_champion(audit) == [3]
    assert audit.set_champion(STRATEGY, 1, rollback=True) == 1 and _sql_champion(audit) == [1]
    assert audit.set_champion(STRATEGY, 2) == 2 and _sql_champion(audit) == [2]


class SlowChampionMirror(AuditTrail):
    """The real audit trail, whose champion write is late: it waits until told to go on."""

    def __init__(self, url: str, flipped: threading.Event, go: threading.Event) -> None:
        super().__init__(url, upgrade=False)
        self.flipped, self.go = flipped, go

    def set_champion(self, strategy, version, **kwargs):
        self.flipped.set()  # the Redis pointer already names `version`
        assert self.go.wait(120), "the test never let the late SQL write go on"
        return super().set_champion(strategy, version, **kwargs)


def test_a_late_sql_mirror_never_leaves_sql_naming_an_older_champion_than_redis(
    empty_store, audit, pg_url, model_and_data
):
    model, flipped, go, errors = model_and_data[0], threading.Event(), threading.Event(), []
    slow = SlowChampionMirror(pg_url, flipped, go)

    def publish_slowly():
        try:
            ModelRegistry(_open(empty_store.keys.p), audit=slow).publish(STRATEGY, model)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    first = threading.Thread(target=publish_slowly)
    first.start()
    try:
        assert flipped.wait(120)  # v1 is champion in Redis; its SQL write is still to come
        fast = ModelRegistry(_open(empty_store.keys.p), audit=audit)
        assert fast.publish(STRATEGY, model) == 2
    finally:
        go.set()
        first.join(120)
        slow.close()
    assert not errors
    assert ModelRegistry(empty_store).champion_version(STRATEGY) == 2
    assert _sql_champion(audit) == [2]  # the late write of v1 did not move it back


def test_racing_publishers_leave_redis_and_sql_naming_the_same_champion(
    empty_store, pg_url, audit, model_and_data
):
    model, barrier, errors = model_and_data[0], threading.Barrier(2), []

    def publish():
        trail = AuditTrail(pg_url, upgrade=False)  # separate connections, as two processes
        try:
            registry = ModelRegistry(_open(empty_store.keys.p), audit=trail)
            barrier.wait()
            for _ in range(2):
                registry.publish(STRATEGY, model)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            trail.close()

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    listed = ModelRegistry(empty_store).list_versions(STRATEGY)
    assert listed["version"].tolist() == [1, 2, 3, 4] and set(listed["status"]) == {"ready"}
    assert ModelRegistry(empty_store).champion_version(STRATEGY) == 4
    assert audit.model_versions(STRATEGY)["version"].tolist() == [1, 2, 3, 4]
    assert _sql_champion(audit) == [4]
