"""Model registry: immutable, signed model versions and an atomically flipped champion pointer.

A published version is four keys written once (``SET … NX``, one transaction) in the state store::

    ml:{strategy}:model:v{N}        skops bytes of the fitted EnsembleScorer (never pickle)
    ml:{strategy}:model:v{N}:onnx   the ONNX graph of its fast scoring path
    ml:{strategy}:model:v{N}:meta   JSON: versions, features, schema hash, training window,
                                    rows, OOS metrics, git SHA, created at, HMAC signature
    ml:{strategy}:model:v{N}:status ``pending``, then ``ready`` once recorded in SQL

The signature is HMAC-SHA256, keyed by ``PHANTOMLAB_SIGNING_KEY`` (never stored in the store),
over the SHA-256 of both blobs and the canonical metadata; a load also checks the class and
features of what it unpacks (:mod:`research.stores.integrity`), and refuses anything bad with
:class:`ModelIntegrityError` and a fix.
The seed's ``ml:{strategy}:model``, ``:scaler`` and ``:calibrator`` keys name the champion
version (the scaler and calibrator live inside the ensemble); they are flipped together in one
``WATCH``/``MULTI``, only to a ``ready`` version, and only forward unless it is a rollback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

import pandas as pd

from research.errors import ModelIntegrityError, StoreError, StoreUnavailable
from research.stores.integrity import (
    PUBLISHABLE,
    check_model,
    class_name,
    refuse,
    unpack,
    verify_signed,
)
from research.stores.protocol import StateReader, StateWriter
from research.stores.signing import (  # noqa: F401 (KEY_ENV, signing_key re-exported)
    KEY_ENV,
    _canonical,
    _git_sha,
    _signature,
    _versions,
    schema_hash,
    signing_key,
)
from research.stores.state import StateStore

logger = logging.getLogger(__name__)

POINTERS = ("model", "scaler", "calibrator")  # the seed's keys, all naming the champion
#: A version's ``:status``; ``legacy``: published before statuses existed (treated as ready).
PENDING, READY, LEGACY = "pending", "ready", "legacy"
_POINTER = re.compile(rb"v([1-9][0-9]{0,17})")
SUMMARY = ("created_at", "n_rows", "blob_bytes", "git_sha")  # list_versions columns


def _pointer_version(raw) -> int | None:
    """The version a champion pointer names (``v<N>``, N >= 1), or None if it names none."""
    raw = raw.encode() if isinstance(raw, str) else raw
    match = _POINTER.fullmatch(raw) if isinstance(raw, bytes) else None
    return int(match.group(1)) if match else None


def _status(raw) -> str:
    """A version's ``:status`` (none: :data:`LEGACY`, published before statuses existed)."""
    return (
        LEGACY
        if raw is None
        else raw.decode(errors="replace")
        if isinstance(raw, bytes)
        else str(raw)
    )


def _json_object(raw) -> dict | None:
    """Metadata bytes as a JSON object, or None if they are not one."""
    try:
        meta = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


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
        """Mirror a champion change into SQL ``model_versions``; never fails the registry (the
        state store is the source of truth; the SQL champion moves forward only, as it does)."""
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

    def _ready(self, strategy: str, version: int, status: str, pending_ok: bool = False) -> None:
        if status not in (READY, LEGACY) and not (pending_ok and status == PENDING):
            raise refuse(
                strategy,
                f"v{version} is {status!r}, not {READY!r}: its publish "
                "did not finish (the publisher died before the SQL record?), so "
                "it cannot be champion",
            )

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        strategy: str,
        model,
        *,
        metrics: dict | None = None,
        train_start=None,
        train_end=None,
        n_rows: int | None = None,
        make_champion: bool = True,
    ) -> int:
        """Write ``model`` (a fitted EnsembleScorer) as a new immutable version; returns it.

        The version is written ``pending``, recorded in the SQL audit trail (if the registry has
        one), marked ``ready``, and only then may the champion pointer move to it, unless a newer
        version already holds it (two racing publishers keep both versions; the pointer ends at
        the newest, consistently, in the state store and in SQL).

        Raises :class:`StoreError` (:class:`StoreUnavailable` if SQL does not answer) when SQL
        did not record the version: it stays ``pending`` and never becomes champion.
        """
        import skops.io as sio

        from research.scoring.fast import FastScorer

        if class_name(model) not in PUBLISHABLE:
            raise TypeError(
                f"the registry publishes {list(PUBLISHABLE)}, not {class_name(model)}"
                ". Fix: publish a fitted research.scoring.EnsembleScorer."
            )
        key = signing_key(self._key)
        blob = sio.dumps(model)
        fast = FastScorer.from_model(model)
        onnx_blob = fast.onnx_bytes
        calib = fast.calibration
        version = self.store.backend.incr(self._k(strategy, "model:next"))
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
        status_key = self._vk(strategy, version, ":status")

        def write(tx: StateWriter, _):
            tx.set(self._vk(strategy, version, ":meta"), _canonical(meta), nx=True)
            tx.set(self._vk(strategy, version, ":onnx"), onnx_blob, nx=True)
            tx.set(self._vk(strategy, version), blob, nx=True)
            tx.set(status_key, PENDING, nx=True)

        self.store.backend.atomic((), lambda c: None, write)
        logger.info("published %s model v%d (%d bytes), pending", strategy, version, len(blob))
        try:
            if self.audit is not None:
                self.audit.record_model_version(
                    strategy,
                    version,
                    sha256=meta["blob_sha256"],
                    metrics=meta["metrics"],
                    metadata={k: v for k, v in meta.items() if k != "calibration"},
                    git_sha=meta["git_sha"],
                    n_rows=meta["n_rows"],
                    train_start=train_start,
                    train_end=train_end,
                )
        except Exception as exc:
            error = StoreUnavailable if isinstance(exc, StoreUnavailable) else StoreError
            raise error(
                f"{strategy} model v{version} is in {self.store.url} but not recorded in the SQL "
                f"audit trail ({type(exc).__name__}: {exc}); it stays {PENDING!r} and never "
                "becomes champion. Fix: make the audit database reachable (or resolve the SQL "
                "error above), then publish again."
            ) from exc
        self.store.backend.set(status_key, READY)
        if make_champion and self._flip(strategy, version, forward_only=True) == version:
            self._audit("champion", lambda a: a.set_champion(strategy, version))
        return version

    def _flip(self, strategy: str, version: int, *, forward_only: bool) -> int:
        """Point the three champion keys at ready ``version`` in one transaction (a pointer
        naming no version counts as 0); returns the champion."""
        pointer, status_key = self._k(strategy, "model"), self._vk(strategy, version, ":status")

        def read(c: StateReader):
            self._ready(strategy, version, _status(c.get(status_key)))
            raw = c.get(pointer)
            if raw is not None and not _pointer_version(raw):
                logger.warning("%s champion pointer %r names no version", strategy, raw)
            return _pointer_version(raw) or 0

        def write(tx: StateWriter, current):
            if forward_only and current > version:
                return
            for field in POINTERS:
                tx.set(self._k(strategy, field), f"v{version}")

        current = self.store.backend.atomic([pointer, status_key], read, write)
        if forward_only and current > version:
            logger.info("%s v%d published; champion stays v%d (newer)", strategy, version, current)
            return current
        return version

    # ------------------------------------------------------------------ read
    def champion_version(self, strategy: str) -> int | None:
        """The champion's version (None before the first publish); refuses torn or garbage
        pointers with :class:`ModelIntegrityError` (the fix: :meth:`rollback`)."""
        keys = [self._k(strategy, f) for f in POINTERS]
        # one watched snapshot: a publish flipping the pointers between three separate reads
        # would otherwise look like torn pointers
        raw = self.store.backend.atomic(
            keys, lambda c: [c.get(key) for key in keys], lambda tx, plan: None
        )
        if all(r is None for r in raw):
            return None
        if len(set(raw)) != 1:
            pointers = dict(zip(POINTERS, raw, strict=True))
            raise refuse(
                strategy,
                f"champion pointers disagree ({pointers})",
                f"ModelRegistry.rollback({strategy!r}, <N>) sets them together.",
            )
        version = _pointer_version(raw[0])
        if version is None:
            raise refuse(strategy, f"champion pointer {raw[0]!r} is not a version (v<N>)")
        return version

    def load(self, strategy: str, version: int, *, allow_pending: bool = False) -> LoadedModel:
        """Load and verify one version (status, signature, metadata, versions, schema, skops
        with pinned types, class, features, ONNX graph); :class:`ModelIntegrityError` if bad.
        ``allow_pending`` loads a ``pending`` version to inspect it (it cannot be champion)."""
        get = self.store.backend.get
        blob, onnx_blob, raw_meta, raw_status = (
            get(self._vk(strategy, version, p)) for p in ("", ":onnx", ":meta", ":status")
        )
        if blob is None or raw_meta is None or onnx_blob is None:
            raise refuse(strategy, f"model v{version} is missing or incomplete in {self.store.url}")
        self._ready(strategy, version, _status(raw_status), allow_pending)
        meta = _json_object(raw_meta)
        if meta is None:
            raise refuse(
                strategy, f"v{version} metadata is not a JSON object ({bytes(raw_meta[:40])!r}...)"
            )
        verify_signed(strategy, version, blob, onnx_blob, meta, key=self._key)
        model = unpack(strategy, version, blob)
        fast = check_model(strategy, version, model, onnx_blob, meta)
        return LoadedModel(version=int(version), model=model, fast=fast, meta=meta)

    def load_champion(self, strategy: str) -> LoadedModel | None:
        """The verified champion of ``strategy`` (None if nothing was published yet)."""
        version = self.champion_version(strategy)
        return None if version is None else self.load(strategy, version)

    def rollback(self, strategy: str, version: int) -> None:
        """Make an existing, verified, ready ``version`` the champion again (backwards allowed),
        whatever the pointers hold now (torn, garbage, a bad version): it is their fix."""
        self.load(strategy, version)  # refuses a missing, pending, tampered or foreign version
        self._flip(strategy, version, forward_only=False)
        self._audit("rollback", lambda a: a.set_champion(strategy, version, rollback=True))
        logger.info("%s champion rolled back to v%d", strategy, version)

    def list_versions(self, strategy: str) -> pd.DataFrame:
        """One row per version: ``status`` (``pending``, ``ready``, ``legacy``, or ``unreadable``
        metadata), a metadata summary and a ``champion`` flag (none if the pointer is garbage).
        Nothing is verified here: :meth:`load` does."""
        try:
            champion = self.champion_version(strategy)
        except ModelIntegrityError as exc:  # the list is what the fix (a rollback) needs
            logger.warning("%s", exc)
            champion = None
        prefix, get, rows = self._k(strategy, "model:v"), self.store.backend.get, []
        for raw in self.store.backend.scan_keys(prefix):  # this strategy's versions only
            key = raw.decode(errors="replace")
            found = re.fullmatch(r"([0-9]+):meta", key[len(prefix) :])
            if found:
                version = int(found.group(1))
                meta = _json_object(get(key))
                status = _status(get(self._vk(strategy, version, ":status")))
                meta, status = (meta, status) if meta is not None else ({}, "unreadable")
                metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
                rows.append(
                    {
                        "version": version,
                        "status": status,
                        **{k: meta.get(k) for k in SUMMARY},
                        **{f"metric_{k}": v for k, v in metrics.items()},
                        "champion": version == champion,
                    }
                )
        frame = pd.DataFrame(
            rows, columns=None if rows else ["version", "status", *SUMMARY, "champion"]
        )
        return frame.sort_values("version").reset_index(drop=True) if rows else frame
