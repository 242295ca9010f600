"""Plain-JSON values: what a pipeline run records in its manifest (and what the workbench's
stores write, through ``research.jsonable``). numpy and pandas only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: NaN/inf/NA -> None, numpy scalars -> Python, times -> ISO."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # fast path, most values
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Path, UUID, Decimal, Enum...: their text is what an auditor wants


def canonical_json(value) -> str:
    """Compact JSON with sorted keys: equal data, equal text (set members, HMAC input)."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))
