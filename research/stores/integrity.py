"""Integrity checks of a model version: signature, signed metadata, skops types, class, ONNX.

:class:`~research.stores.registry.ModelRegistry` reads a version's keys; this module decides
whether what it read may be loaded, and refuses anything bad with
:class:`~research.errors.ModelIntegrityError` and a fix (:func:`refuse`).
"""

from __future__ import annotations

import hmac
import re

import numpy as np

from research.errors import ModelIntegrityError
from research.features import FEATURES
from research.stores.signing import KEY_ENV, _signature, schema_hash, signing_key

#: The only non-builtin types a model blob may contain (skops refuses anything else).
TRUSTED_TYPES = (
    "numpy.dtype",
    "research.scoring.ensemble.EnsembleScorer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)
#: The classes a version may hold once loaded (skops also loads its default-trusted types).
PUBLISHABLE = ("research.scoring.ensemble.EnsembleScorer",)


def malformed_fields(meta: dict) -> list[str]:
    """The fields a load relies on that are malformed in (signed) metadata."""
    v, f, c = meta.get("versions"), meta.get("features"), meta.get("calibration")
    ok = {
        "versions": isinstance(v, dict) and isinstance(v.get("sklearn"), str),
        "features": isinstance(f, list) and all(isinstance(n, str) for n in f),
        "calibration": c is None
        or (isinstance(c, list) and len(c) == 2 and all(isinstance(x, list) for x in c)),
        "schema_hash": isinstance(meta.get("schema_hash"), str),
    }
    return [name for name, good in ok.items() if not good]


def class_name(obj) -> str:
    """``module.QualName`` of ``obj``'s class, as skops and :data:`PUBLISHABLE` name it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def refuse(strategy: str, what: str, fix: str = "") -> ModelIntegrityError:
    """The error refusing a version of ``strategy``: ``what`` is wrong, ``fix`` the way out
    (default: roll back, or republish, or check the signing key)."""
    fix = fix or (
        f"roll back to a good version: ModelRegistry.rollback({strategy!r}, <N>) "
        f"(list_versions({strategy!r}) shows versions and status), or republish; "
        f"if it should verify, check that {KEY_ENV} is the publisher's key."
    )
    return ModelIntegrityError(f"{strategy} {what}. Fix: {fix}")


def verify_signed(
    strategy: str,
    version: int,
    blob: bytes,
    onnx_blob: bytes,
    meta: dict,
    *,
    key: bytes | str | None = None,
) -> None:
    """The signature (HMAC, :func:`~research.stores.signing.signing_key` of ``key``) over both
    blobs and the metadata, whose owner, fields, scikit-learn version and feature-registry
    hash must match this environment."""
    sig, bad = meta.get("signature"), f"v{version}"
    if not sig:
        raise refuse(
            strategy,
            f"{bad} is unsigned; refused",
            f"republish it with ModelRegistry.publish (which signs with {KEY_ENV}).",
        )
    if not isinstance(sig, str) or not re.fullmatch(r"[0-9a-f]{64}", sig):
        raise refuse(
            strategy,
            f"{bad} signature is not an HMAC-SHA256 hex string "
            f"({type(sig).__name__} {str(sig)[:40]!r})",
        )
    if not hmac.compare_digest(sig, _signature(signing_key(key), blob, onnx_blob, meta)):
        raise refuse(
            strategy,
            f"{bad}: signature mismatch — the blob or its metadata "
            "was changed, or it was signed with another key",
        )
    if meta.get("strategy") != strategy or meta.get("version") != int(version):
        raise refuse(
            strategy,
            f"{bad} holds the signed keys of {meta.get('strategy')} "
            f"v{meta.get('version')} (copied)",
        )
    if malformed_fields(meta):
        raise refuse(strategy, f"{bad} signed metadata is malformed: {malformed_fields(meta)}")
    import sklearn

    fitted = meta["versions"]["sklearn"]
    if sklearn.__version__.split(".")[:2] != fitted.split(".")[:2]:
        raise refuse(
            strategy,
            f"{bad} was fitted with scikit-learn {fitted}, this "
            f"environment has {sklearn.__version__}",
            "install that version, or retrain and publish with this one.",
        )
    if meta["schema_hash"] != schema_hash():
        raise refuse(
            strategy,
            f"{bad} was fitted under another feature registry "
            f"(schema hash {meta['schema_hash']} vs {schema_hash()})",
            "retrain and republish.",
        )


def unpack(strategy: str, version: int, blob: bytes):
    """The skops blob as an object, with only the pinned types beyond skops' defaults."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=blob))
    except Exception as exc:  # zipfile, json or skops errors: the blob is no skops file
        raise refuse(
            strategy,
            f"v{version} blob is not a skops file ({type(exc).__name__}: {str(exc)[:120]})",
        ) from exc
    unknown = sorted(untrusted - set(TRUSTED_TYPES))
    if unknown:
        raise refuse(
            strategy, f"v{version} contains types outside the pinned trusted list: {unknown}"
        )
    try:
        return sio.loads(blob, trusted=sorted(untrusted))
    except Exception as exc:  # a skops file whose content does not construct
        raise refuse(
            strategy, f"v{version} blob does not load ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc


def check_model(strategy: str, version: int, model, onnx_blob: bytes, meta: dict):
    """The loaded object is what the registry publishes, with the signed features, which
    fit the current feature registry; returns its checked ONNX fast path."""
    from research.scoring.encode import encoded_columns, is_extra
    from research.scoring.fast import FastScorer

    names, width = (
        getattr(model, "feature_names_", None),
        getattr(model, "n_features_in_", None),
    )
    if class_name(model) not in PUBLISHABLE or not isinstance(width, int):
        raise refuse(
            strategy,
            f"v{version} holds a {class_name(model)}, not a fitted "
            f"{' or '.join(PUBLISHABLE)} (all the registry publishes)",
        )
    if list(names or []) != meta["features"]:
        raise refuse(
            strategy,
            f"v{version} model features ({len(names or [])}) differ "
            f"from its signed metadata ({len(meta['features'])})",
        )
    unknown = [f for f in names or [] if f not in FEATURES and not is_extra(f)]
    cols = len(encoded_columns([f for f in names if f not in unknown])) if names else width
    if unknown or cols != width:
        raise refuse(
            strategy,
            f"v{version} features do not fit the current feature "
            f"registry (unregistered: {unknown[:5]}; they encode to {cols} "
            f"columns, the model takes {width}); retrain and republish",
        )
    calib = meta["calibration"]
    try:
        fast = FastScorer(
            onnx_blob,
            feature_names=meta["features"] or None,
            calib_x=None if calib is None else np.asarray(calib[0]),
            calib_y=None if calib is None else np.asarray(calib[1]),
        )
    except (ValueError, TypeError) as exc:  # OnnxModelError is a ValueError
        raise refuse(
            strategy,
            f"v{version} ONNX graph or calibration does not load "
            f"({type(exc).__name__}: {str(exc)[:160]})",
        ) from exc
    if fast.n_columns != width:
        raise refuse(
            strategy, f"v{version} ONNX graph takes {fast.n_columns} columns, the model {width}"
        )
    return fast
