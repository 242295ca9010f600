"""Signing of model versions: the HMAC key, the signed metadata's canonical bytes, provenance.

The key is ``PHANTOMLAB_SIGNING_KEY``, else the key file the settings name; it is never stored
in the state store. :func:`schema_hash` fingerprints the feature registry a model was fitted
under.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from research.errors import ModelIntegrityError
from research.features import CATEGORIES, FEATURES
from research.jsonable import canonical_json

KEY_ENV = "PHANTOMLAB_SIGNING_KEY"


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

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "skops": skops.__version__,
    }


def _git_sha() -> str | None:
    if os.environ.get("PHANTOMLAB_GIT_SHA"):
        return os.environ["PHANTOMLAB_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def signing_key(key: bytes | str | None = None) -> bytes:
    """The HMAC key: ``key``, else ``$PHANTOMLAB_SIGNING_KEY``, else the key file the settings
    name (``signing_key_file``: ``PHANTOMLAB_SIGNING_KEY_FILE`` or the workspace the demo left,
    :mod:`research.workspace`); refuses a missing or short key, and a key file that is not mode
    0600 and owned by the user."""
    if key is None:
        key = os.environ.get(KEY_ENV) or _key_from_file()
    if not key:
        raise ModelIntegrityError(
            f"no signing key: models are published and loaded only with an HMAC key. Fix: "
            f"export {KEY_ENV}=<a secret of 16+ characters>, the same for publisher and loader "
            f"(or name a key file: `phantomlab config` shows the workspace file in use, which "
            f"`phantomlab demo` writes in ./.phantomlab)."
        )
    key = key.encode() if isinstance(key, str) else key
    if len(key) < 16:
        raise ModelIntegrityError(f"{KEY_ENV} is {len(key)} bytes; use 16 or more.")
    return key


def _key_from_file() -> str | None:
    """The key held in the settings' ``signing_key_file`` (``None`` if none is named); refused
    when the file is missing, not a regular file, not the user's, or not mode 0600."""
    from research.config import Settings
    from research.workspace import private_file_problem

    path = Settings.from_env().signing_key_file
    if path is None:
        return None
    problem = private_file_problem(path)
    try:
        if problem:
            raise PermissionError(problem)
        return path.read_text(encoding="utf-8").strip()
    except PermissionError as exc:  # not private, not the user's, or unreadable
        raise ModelIntegrityError(f"refused: {exc}") from None


def _canonical(meta: dict) -> bytes:
    return canonical_json(meta).encode()


def _signature(key: bytes, blob: bytes, onnx_blob: bytes, meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "signature"}
    msg = hashlib.sha256(blob).digest() + hashlib.sha256(onnx_blob).digest() + _canonical(body)
    return hmac.new(key, msg, hashlib.sha256).hexdigest()
