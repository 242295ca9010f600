"""A user signals file's own columns as model inputs (``x_*`` features).

Every other column becomes a model input under the prefix ``x_``
(:data:`research.schema.EXTRA_PREFIX`): numbers and booleans as float64 ``x_<name>`` (empty =
missing, which the models impute and flag); text columns with at most :data:`MAX_CATEGORIES`
distinct values one-hot as ``x_<name>=<value>`` (0/1, empty = all 0), with the vocabulary fixed
at load time and recorded in ``frame.attrs["extra_categories"]`` — pass it back as
``categories=`` when loading new signals for a fitted model, so the same columns come out. Other
columns (free text, ids, dates) are dropped with a logged warning.

Why a name prefix and not entries in the feature registry: the registry is the product's fixed
contract. :func:`research.features.build_features` computes every registered signal feature
from candles (a user's column cannot be), the model registry hashes it
(:func:`research.stores.registry.schema_hash`) to refuse models fitted under another registry,
and it is module state shared by everything in the process. Registering a file's columns at run
time would make all three depend on which file was loaded last. Instead
:mod:`research.scoring.encode` takes ``x_*`` columns as unregistered numeric features known at
signal time: ``entry_features`` appends them after the registered ones, so
``EnsembleScorer.fit`` records them in ``feature_names_`` and later rows are encoded by the same
names (the scikit-learn contract: same columns at predict time; an absent one is missing).
One-hot encoding at load time keeps the models' encoding as it is (no vocabulary to fit or
store in a model). The columns are taken as known when the signal fired; a column the bot
fills in after entry (the trade's result) would leak the future — names that look like one are
warned about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from research import schema as S

logger = logging.getLogger(__name__)

#: Text columns with more distinct values are not one-hot encoded (dropped, logged).
MAX_CATEGORIES = 20
#: Words in a column name that suggest a value known only after the trade (warned about).
AFTER_ENTRY_WORDS = frozenset(
    "pnl profit outcome result exit realized realised win won lost mfe mae closed".split()
)


def extra_columns(frame: pd.DataFrame) -> list[str]:
    """The ``x_*`` feature columns of a signals (or features) frame, in frame order."""
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(S.EXTRA_PREFIX)]


def extra_features(
    df: pd.DataFrame,
    *,
    source: str = "signals",
    where: Callable[[np.ndarray, pd.Series], str] | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """A signals file's other columns as ``x_*`` float64 features (module doc).

    Parameters
    ----------
    df : DataFrame
        The file's columns other than the signals contract's, one row per signal.
    source : str
        Names the file in messages.
    where : callable, optional
        ``where(mask, values)`` names the rows of ``mask`` in messages (default: 0-based rows).
    categories : mapping of column -> values, optional
        Fixed vocabularies of text columns (an earlier load's ``extra_categories``); values
        outside them give all-zero columns (counted in a warning).

    Returns
    -------
    (DataFrame, dict)
        The features, float64, indexed like ``df``; the vocabulary of each one-hot column.
    """
    where = where or (lambda mask, values: f"rows {list(np.flatnonzero(mask)[:5])}")
    categories = categories or {}
    blocks: dict[str, np.ndarray] = {}
    vocab, dropped = {}, []

    def put(name: str, values, col: str) -> None:
        if name in blocks:
            raise S.SchemaError(
                f"{source}: column {col!r} becomes feature {name!r}, which another column "
                "already became. Fix: rename one of them."
            )
        blocks[name] = np.asarray(values, dtype=np.float64)

    for col in df.columns:
        raw, name = df[col], col if col.startswith(S.EXTRA_PREFIX) else S.EXTRA_PREFIX + col
        kind = raw.dtype
        if pd.api.types.is_bool_dtype(kind) or (
            pd.api.types.is_numeric_dtype(kind) and not isinstance(kind, pd.CategoricalDtype)
        ):
            put(name, _numbers(raw, col, source=source, where=where), col)
        elif (
            pd.api.types.is_object_dtype(kind)
            or pd.api.types.is_string_dtype(kind)
            or isinstance(kind, pd.CategoricalDtype)
        ):
            text = raw.astype("string").str.strip().replace("", pd.NA)
            levels, why = _levels(text, col, categories)
            if levels is None:
                dropped.append(why)
                continue
            _warn_unseen(text, levels, col, source)
            for level in levels:
                put(f"{name}={level}", (text == level).fillna(False), col)
            vocab[col] = levels
        else:
            dropped.append(f"{col} ({kind})")
    _warn_unused(df, dropped, source)
    return pd.DataFrame(blocks, index=df.index, dtype=np.float64), vocab


def _numbers(raw: pd.Series, col: str, *, source: str, where) -> np.ndarray:
    """A number or boolean column as float64 (missing -> NaN); an infinity is refused."""
    values = raw.astype("float64").to_numpy()
    if np.isinf(values).any():
        raise S.SchemaError(
            f"{source}: infinite {col!r} at {where(np.isinf(values), raw)}. "
            "Fix: leave the cell empty where the value is unknown."
        )
    return values


def _levels(
    text: pd.Series, col: str, categories: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, ...] | None, str]:
    """The one-hot vocabulary of a text column, or None and why the column is dropped
    (it holds dates, or more than :data:`MAX_CATEGORIES` values without a fixed vocabulary)."""
    if text.notna().any() and _all_dates(text.dropna()):
        return None, f"{col} (dates)"
    levels = tuple(str(v) for v in categories.get(col, sorted(text.dropna().unique())))
    if col not in categories and len(levels) > MAX_CATEGORIES:
        return None, f"{col} ({len(levels)} distinct values)"
    return levels, ""


def _warn_unseen(text: pd.Series, levels: tuple[str, ...], col: str, source: str) -> None:
    """Warn about values outside a fixed vocabulary (their one-hot columns are all zero)."""
    unseen = int((text.notna() & ~text.isin(levels)).sum())
    if unseen:
        logger.warning(
            "%s: %d value(s) of %r outside its vocabulary %s: all-zero columns there",
            source,
            unseen,
            col,
            list(levels),
        )


def _warn_unused(df: pd.DataFrame, dropped: list[str], source: str) -> None:
    """Warn about the columns dropped and about names that look known only after entry."""
    if dropped:
        logger.warning(
            "%s: column(s) %s not used as features (numbers, booleans and text with "
            "at most %d values are)",
            source,
            dropped,
            MAX_CATEGORIES,
        )
    suspect = [c for c in df.columns if set(re.split(r"[\W_]+", c.lower())) & AFTER_ENTRY_WORDS]
    if suspect:
        logger.warning(
            "%s: column(s) %s look like values known only after the trade (a model "
            "trained on them learns from the future); drop them unless the bot knew "
            "them when the signal fired",
            source,
            suspect,
        )


def _all_dates(text: pd.Series) -> bool:
    """True if every value reads as an ISO 8601 date or time (not a category)."""
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return bool(parsed.notna().all())
