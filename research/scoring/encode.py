"""Features frame -> float matrix for the models, with fixed, registry-defined columns.

Categorical features are one-hot encoded against the registry's fixed vocabularies (no fitting,
so training and live scoring can never disagree on columns); an unknown or missing category
is all-zeros in its block. Numeric features pass through as float64 with NaN kept: the models'
imputer fills them and adds missing indicators (the seed's "(Missing)" path).

**One rule for infinity:** ``+inf``/``-inf`` (a division by a zero range, say) is as unknown as
NaN, so :func:`encode` turns it into NaN and logs a warning naming the feature — the same
for training, the scikit-learn scoring path, the ONNX fast path (:func:`inf_as_missing`) and
the heuristic fallback. An infinite feature thus scores exactly as the same feature missing.

Columns named ``x_*`` (:data:`research.schema.EXTRA_PREFIX`) are a user signals file's own
features (:mod:`research.signals.external`): unregistered, numeric (categoricals arrive already
one-hot), known at signal time; they pass through like numeric features, after the registered
ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from research.features import CATEGORIES, FEATURES, check_entry_columns
from research.schema import EXTRA_PREFIX

logger = logging.getLogger(__name__)


def is_extra(name) -> bool:
    """True for a user file's own feature column (``x_*``, not a registered name)."""
    return isinstance(name, str) and name.startswith(EXTRA_PREFIX) and name not in FEATURES


def is_categorical(name: str) -> bool:
    """True for a registered categorical feature (one-hot block); extras are numeric."""
    return not is_extra(name) and FEATURES[name].dtype == "category"


def availability(name: str) -> str:
    """The registry's ``available`` of a feature; ``'signal'`` for a user file's extras."""
    return "signal" if is_extra(name) else FEATURES[name].available


def encoded_columns(features: Sequence[str]) -> list[str]:
    """Names of the matrix columns produced for ``features`` (one-hot blocks expanded)."""
    out = []
    for name in features:
        if is_categorical(name):
            out.extend(f"{name}={v}" for v in CATEGORIES[name])
        else:
            out.append(name)
    return out


def encode(frame: pd.DataFrame | Mapping, features: Sequence[str]) -> np.ndarray:
    """Encode ``features`` of a frame (or one signal's mapping) as a float64 matrix.

    Columns absent from the input are treated as missing (NaN), never as an error: a live
    signal with a missing feature still gets a score; so are non-numeric values and ``±inf``
    (:func:`inf_as_missing`, logged).
    """
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame([dict(frame)])
    n = len(frame)
    blocks = []
    for name in features:
        col = frame[name] if name in frame else pd.Series([np.nan] * n, index=frame.index)
        if is_categorical(name):
            values = col.astype(object).to_numpy()
            blocks.append(np.column_stack([values == v for v in CATEGORIES[name]]).astype(float))
        else:
            blocks.append(pd.to_numeric(col, errors="coerce").to_numpy(np.float64)[:, None])
    matrix = np.hstack(blocks) if blocks else np.empty((n, 0))
    if np.isinf(matrix).any():  # names only on this rare path: encode is on the scoring path
        matrix = inf_as_missing(matrix, encoded_columns(features))
    return matrix


def inf_as_missing(matrix: np.ndarray, columns: Sequence[str] | None = None) -> np.ndarray:
    """``matrix`` with every ``±inf`` replaced by NaN (missing), with a warning naming columns.

    The one rule of training and scoring (module doc); ``matrix`` itself is not modified.

    Parameters
    ----------
    matrix : ndarray
        Numeric, 2-D (rows x encoded columns).
    columns : sequence of str, optional
        Names of the columns, for the warning; default ``x0``, ``x1``, ...
    """
    inf = np.isinf(matrix)
    if not inf.any():
        return matrix
    where = np.flatnonzero(inf.any(axis=0))
    names = [columns[i] if columns is not None else f"x{i}" for i in where]
    logger.warning(
        "%d infinite feature value(s) in %s treated as missing (NaN), as in "
        "training; check how those features are computed",
        int(inf.sum()),
        names,
    )
    return np.where(inf, np.nan, matrix)


def entry_features(frame: pd.DataFrame, *, allow_after_entry: bool = False) -> list[str]:
    """The feature columns of ``frame`` an entry model may use: registered ones (registry
    order), then the user file's extras (``x_*``, frame order)."""
    names = [c for c in FEATURES if c in frame.columns]
    names = check_entry_columns(names, allow_after_entry=allow_after_entry)
    return names + [c for c in frame.columns if is_extra(c)]
