"""Model registry: immutable, signed model versions and an atomically flipped champion pointer.

A published version is three keys written once (``SET … NX``) in the state store::

    ml:{strategy}:model:v{N}        skops bytes of the fitted EnsembleScorer (never pickle)
    ml:{strategy}:model:v{N}:onnx   the ONNX graph of its fast scoring path
    ml:{strategy}:model:v{N}:meta   JSON: versions, features, schema hash, training window,
                                    rows, OOS metrics, git SHA, created at, HMAC signature

The signature is HMAC-SHA256, keyed by ``PHANTOMLAB_SIGNING_KEY`` (never stored in the store),
over the SHA-256 of both blobs and the canonical metadata. The seed's ``ml:{strategy}:model``,
``:scaler`` and ``:calibrator`` keys name the champion version (the scaler and the calibrator
live inside the versioned ensemble); they are flipped together in one ``WATCH``/``MULTI``
transaction, and only forward unless it is a :meth:`ModelRegistry.rollback`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.features import CATEGORIES, FEATURES
from research.stores.errors import ModelIntegrityError
from research.stores.jsonable import canonical_json
from research.stores.state import StateStore

logger = logging.getLogger(__name__)

KEY_ENV = "PHANTOMLAB_SIGNING_KEY"
POINTERS = ("model", "scaler", "calibrator")  # the seed's keys, all naming the champion
#: The only non-builtin types a model blob may contain (skops refuses anything else).
TRUSTED_TYPES = (
    "numpy.dtype",
    "research.scoring.ensemble.EnsembleScorer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)


def schema_hash() -> str:
    """Hash of the feature registry (names, dtypes, categories): a model fitted under another
    registry would encode signals differently, so loading it is refused."""
    spec = [(n, f.dtype, f.available, CATEGORIES.get(n)) for n, f in FEATURES.items()]
    return hashlib.sha256(json.dumps(spec, default=str).encode()).hexdigest()[:16]


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import sklearn
    import skops

    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "sklearn": sklearn.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "skops": skops.__version__}  # fmt: skip


def _git_sha() -> str | None:
    if os.environ.get("PHANTOMLAB_GIT_SHA"):
        return os.environ["PHANTOMLAB_GIT_SHA"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5, check=True)  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def signing_key(key: bytes | str | None = None) -> bytes:
    """The HMAC key: ``key`` or ``$PHANTOMLAB_SIGNING_KEY``; refuses a missing or short one."""
    key = key if key is not None else os.environ.get(KEY_ENV)
    if not key:
        raise ModelIntegrityError(
            f"no signing key: models are published and loaded only with an HMAC key. Fix: "
            f"export {KEY_ENV}=<a secret of 16+ characters>, the same for publisher and loader."
        )
    key = key.encode() if isinstance(key, str) else key
    if len(key) < 16:
        raise ModelIntegrityError(f"{KEY_ENV} is {len(key)} bytes; use 16 or more.")
    return key


def _canonical(meta: dict) -> bytes:
    return canonical_json(meta).encode()


def _signature(key: bytes, blob: bytes, onnx_blob: bytes, meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "signature"}
    msg = (hashlib.sha256(blob).digest() + hashlib.sha256(onnx_blob).digest()
           + _canonical(body))  # fmt: skip
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadedModel:
    """A verified model version: the ensemble, its fast path and its metadata."""

    version: int
    model: object
    fast: object
    meta: dict


class ModelRegistry:
    """Publish, load, list and roll back signed model versions in a :class:`StateStore`."""

    def __init__(self, store: StateStore, *, key: bytes | str | None = None, audit=None) -> None:
        self.store = store
        self._key = key
        self.audit = audit  # optional AuditTrail: versions and champions also go to SQL

    def _audit(self, action: str, fn) -> None:
        """Mirror a registry change into the SQL ``model_versions`` table; never fails the
        registry (the state store is the source of truth for models)."""
        if self.audit is None:
            return
        try:
            fn(self.audit)
        except Exception:
            logger.exception("model_versions not updated in SQL (%s); the registry is", action)

    def _k(self, strategy: str, field: str) -> str:
        return self.store.keys.ml(strategy, field)

    def _vk(self, strategy: str, version: int, part: str = "") -> str:
        return self._k(strategy, f"model:v{int(version)}{part}")

    # ------------------------------------------------------------------ publish
    def publish(self, strategy: str, model, *, metrics: dict | None = None,
                train_start=None, train_end=None, n_rows: int | None = None,
                make_champion: bool = True) -> int:  # fmt: skip
        """Write ``model`` (a fitted EnsembleScorer) as a new immutable version; returns it.

        The champion pointer then moves to it, unless a newer version already holds it (two
        racing publishers keep both versions; the pointer ends at the newest, consistently).
        """
        import skops.io as sio

        from research.scoring.fast import FastScorer

        key = signing_key(self._key)
        blob = sio.dumps(model)
        fast = FastScorer.from_model(model)
        onnx_blob = fast.onnx_bytes
        calib = fast.calibration
        version = int(self.store.backend.call("incr", self._k(strategy, "model:next")))
        meta = {
            "strategy": strategy,
            "version": version,
            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "versions": _versions(),
            "features": list(model.feature_names_ or []),
            "schema_hash": schema_hash(),
            "train_start": None if train_start is None else pd.Timestamp(train_start).isoformat(),
            "train_end": None if train_end is None else pd.Timestamp(train_end).isoformat(),
            "n_rows": None if n_rows is None else int(n_rows),
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
            "git_sha": _git_sha(),
            "calibration": None if calib is None else [c.tolist() for c in calib],
            "blob_sha256": hashlib.sha256(blob).hexdigest(),
            "onnx_sha256": hashlib.sha256(onnx_blob).hexdigest(),
            "blob_bytes": len(blob),
        }
        meta["signature"] = _signature(key, blob, onnx_blob, meta)

        def write(tx, _):
            tx.set(self._vk(strategy, version, ":meta"), _canonical(meta), nx=True)
            tx.set(self._vk(strategy, version, ":onnx"), onnx_blob, nx=True)
            tx.set(self._vk(strategy, version), blob, nx=True)

        self.store.backend.atomic((), lambda c: None, write)
        logger.info("published %s model v%d (%d bytes)", strategy, version, len(blob))
        self._audit("publish", lambda a: a.record_model_version(
            strategy, version, sha256=meta["blob_sha256"], metrics=meta["metrics"],
            metadata={k: v for k, v in meta.items() if k != "calibration"},
            git_sha=meta["git_sha"], n_rows=meta["n_rows"], train_start=train_start,
            train_end=train_end))  # fmt: skip
        if make_champion and self._flip(strategy, version, forward_only=True) == version:
            self._audit("champion", lambda a: a.set_champion(strategy, version))
        return version

    def _flip(self, strategy: str, version: int, *, forward_only: bool) -> int:
        """Point the seed's model/scaler/calibrator keys at ``version`` in one transaction."""
        pointer = self._k(strategy, "model")

        def read(c):
            current = c.get(pointer)
            return int(current.decode().lstrip("v")) if current else 0

        def write(tx, current):
            if forward_only and current > version:
                return
            for field in POINTERS:
                tx.set(self._k(strategy, field), f"v{version}")

        current = self.store.backend.atomic([pointer], read, write)
        if forward_only and current > version:
            logger.info("%s v%d published; champion stays v%d (newer)", strategy, version, current)
            return current
        return version

    # ------------------------------------------------------------------ read
    def champion_version(self, strategy: str) -> int | None:
        """The champion's version (None before the first publish); refuses torn pointers."""
        keys = [self._k(strategy, f) for f in POINTERS]
        # one watched snapshot: a publish flipping the pointers between three separate reads
        # would otherwise look like torn pointers
        raw = self.store.backend.atomic(keys, lambda c: [c.get(key) for key in keys],
                                        lambda tx, plan: None)  # fmt: skip
        if raw[0] is None:
            return None
        if len(set(raw)) != 1:
            raise ModelIntegrityError(
                f"{strategy} champion pointers disagree ({dict(zip(POINTERS, raw, strict=True))})."
                f" Fix: ModelRegistry.rollback({strategy!r}, <version>) to set them together."
            )
        return int(raw[0].decode().lstrip("v"))

    def load(self, strategy: str, version: int) -> LoadedModel:
        """Load and verify one version: signature, then versions and schema, then skops."""
        import skops.io as sio

        from research.scoring.fast import FastScorer

        get = self.store.backend.call
        blob, onnx_blob, raw_meta = (get("get", self._vk(strategy, version, p))
                                     for p in ("", ":onnx", ":meta"))  # fmt: skip
        if blob is None or raw_meta is None or onnx_blob is None:
            raise ModelIntegrityError(
                f"{strategy} model v{version} is missing or incomplete in {self.store.url}. "
                f"Fix: list_versions({strategy!r}) shows what exists."
            )
        try:
            meta = json.loads(raw_meta)
        except ValueError as exc:
            raise ModelIntegrityError(f"{strategy} v{version} metadata is not JSON: {exc}") from exc
        self._verify(strategy, version, blob, onnx_blob, meta)
        untrusted = set(sio.get_untrusted_types(data=blob))
        unknown = sorted(untrusted - set(TRUSTED_TYPES))
        if unknown:
            raise ModelIntegrityError(
                f"{strategy} v{version} contains types outside the pinned trusted list: "
                f"{unknown}. Fix: publish only research.scoring.EnsembleScorer models."
            )
        model = sio.loads(blob, trusted=sorted(untrusted))
        calib = meta.get("calibration")
        fast = FastScorer(onnx_blob, feature_names=meta["features"] or None,
                          calib_x=None if calib is None else np.asarray(calib[0]),
                          calib_y=None if calib is None else np.asarray(calib[1]))  # fmt: skip
        return LoadedModel(version=int(version), model=model, fast=fast, meta=meta)

    def _verify(self, strategy, version, blob, onnx_blob, meta) -> None:
        sig = meta.get("signature")
        if not sig:
            raise ModelIntegrityError(
                f"{strategy} v{version} is unsigned; refused. Fix: republish it with "
                f"ModelRegistry.publish (which signs with {KEY_ENV})."
            )
        if not hmac.compare_digest(sig, _signature(signing_key(self._key), blob, onnx_blob, meta)):
            raise ModelIntegrityError(
                f"{strategy} v{version}: signature mismatch — the blob or its metadata was "
                f"changed, or it was signed with another key. Fix: check that {KEY_ENV} is the "
                "publisher's key; otherwise roll back to a good version or republish."
            )
        import sklearn

        have, want = sklearn.__version__.split(".")[:2], meta["versions"]["sklearn"].split(".")[:2]
        if have != want:
            raise ModelIntegrityError(
                f"{strategy} v{version} was fitted with scikit-learn {meta['versions']['sklearn']}"
                f", this environment has {sklearn.__version__}. Fix: install that version, or "
                "retrain and publish with this one."
            )
        if meta.get("schema_hash") != schema_hash():
            raise ModelIntegrityError(
                f"{strategy} v{version} was fitted under another feature registry (schema hash "
                f"{meta.get('schema_hash')} vs {schema_hash()}). Fix: retrain and republish."
            )

    def load_champion(self, strategy: str) -> LoadedModel | None:
        """The verified champion of ``strategy`` (None if nothing was published yet)."""
        version = self.champion_version(strategy)
        return None if version is None else self.load(strategy, version)

    def rollback(self, strategy: str, version: int) -> None:
        """Make an existing, verified ``version`` the champion again (backwards allowed)."""
        self.load(strategy, version)  # refuses a missing or tampered version first
        self._flip(strategy, version, forward_only=False)
        self._audit("rollback", lambda a: a.set_champion(strategy, version))
        logger.warning("%s champion rolled back to v%d", strategy, version)

    def list_versions(self, strategy: str) -> pd.DataFrame:
        """One row per published version: metadata summary and a ``champion`` flag."""
        prefix = self._k(strategy, "model:v")
        champion = self.champion_version(strategy)
        rows = []
        for raw in self.store.backend.scan_keys(prefix):  # this strategy's versions only
            key = raw.decode()
            if key.endswith(":meta"):
                meta = json.loads(self.store.backend.call("get", key))
                rows.append({"version": meta["version"], "created_at": meta["created_at"],
                             "n_rows": meta["n_rows"], "blob_bytes": meta["blob_bytes"],
                             "git_sha": meta["git_sha"], **{f"metric_{k}": v for k, v in
                                                            meta["metrics"].items()},
                             "champion": meta["version"] == champion})  # fmt: skip
        cols = ["version", "created_at", "n_rows", "blob_bytes", "git_sha", "champion"]
        frame = pd.DataFrame(rows, columns=None if rows else cols)
        return frame.sort_values("version").reset_index(drop=True) if rows else frame
