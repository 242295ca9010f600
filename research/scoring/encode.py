"""Features frame -> float matrix for the models, with fixed, registry-defined columns.

Categorical features are one-hot encoded against the registry's fixed vocabularies (no fitting,
so training and live scoring can never disagree on columns); an unknown or missing category
is all-zeros in its block. Numeric features pass through as float64 with NaN kept: the models'
imputer fills them and adds missing indicators (the seed's "(Missing)" path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from research.features import CATEGORIES, FEATURES, check_entry_columns


def encoded_columns(features: Sequence[str]) -> list[str]:
    """Names of the matrix columns produced for ``features`` (one-hot blocks expanded)."""
    out = []
    for name in features:
        if FEATURES[name].dtype == "category":
            out.extend(f"{name}={v}" for v in CATEGORIES[name])
        else:
            out.append(name)
    return out


def encode(frame: pd.DataFrame | Mapping, features: Sequence[str]) -> np.ndarray:
    """Encode ``features`` of a frame (or one signal's mapping) as a float64 matrix.

    Columns absent from the input are treated as missing (NaN), never as an error: a live
    signal with a missing feature still gets a score.
    """
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame([dict(frame)])
    n = len(frame)
    blocks = []
    for name in features:
        col = frame[name] if name in frame else pd.Series([np.nan] * n, index=frame.index)
        if FEATURES[name].dtype == "category":
            values = col.astype(object).to_numpy()
            blocks.append(np.column_stack([values == v for v in CATEGORIES[name]]).astype(float))
        else:
            blocks.append(pd.to_numeric(col, errors="coerce").to_numpy(np.float64)[:, None])
    return np.hstack(blocks) if blocks else np.empty((n, 0))


def entry_features(frame: pd.DataFrame, *, allow_after_entry: bool = False) -> list[str]:
    """The registered feature columns of ``frame`` an entry model may use (registry order)."""
    names = [c for c in FEATURES if c in frame.columns]
    return check_entry_columns(names, allow_after_entry=allow_after_entry)
