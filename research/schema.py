"""Column names of every frame, defined once, and ``validate(df, stage)``.

Every stage of the data flow hands the next one a frame with a fixed contract (DESIGN §3).
The names live here so that no other module spells a column as a string literal it invented,
and so a renamed column breaks loudly in one place.

Errors raised here say *what* is wrong, *which rows*, and *how to fix it* — the user of a
research notebook should never have to read a traceback to know what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

# defined with the error family; raised here and elsewhere as S.SchemaError
from research.errors import InputTypeError, SchemaError

# --------------------------------------------------------------------------------------------
# candles: DatetimeIndex (UTC bar open time) + OHLCV float64 columns
# --------------------------------------------------------------------------------------------
TIMESTAMP = "timestamp"
OPEN = "open"
HIGH = "high"
LOW = "low"
CLOSE = "close"
VOLUME = "volume"
CANDLE_COLUMNS: tuple[str, ...] = (OPEN, HIGH, LOW, CLOSE, VOLUME)

# --------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------
SIGNAL_ID = "signal_id"
SYMBOL = "symbol"
STRATEGY = "strategy"
SIDE = "side"
SIGNAL_TIME = "signal_time"
ENTRY = "entry"
SL = "sl"
TP = "tp"
QSCORE = "qscore"
TIMEOUT_HOURS = "timeout_hours"  # optional per-signal override of the strategy timeout
EXTRA_PREFIX = "x_"  # a user signals file's own feature columns (research.signals.external)
SIGNAL_COLUMNS: tuple[str, ...] = (SIGNAL_ID, SYMBOL, STRATEGY, SIDE, SIGNAL_TIME, ENTRY, SL, TP)

STRATEGIES: tuple[str, ...] = ("trend", "range", "scalp")
SIDES: tuple[str, ...] = ("long", "short")
LONG, SHORT = SIDES

# --------------------------------------------------------------------------------------------
# outcomes (phantom and executed alike)
# --------------------------------------------------------------------------------------------
EXIT_TIME = "exit_time"
EXIT_PRICE = "exit_price"
EXIT_REASON = "exit_reason"
OUTCOME = "outcome"
PNL_PERCENT = "pnl_percent"
REALIZED_RR = "realized_rr"
TP1_HIT = "tp1_hit"
TP1_TIME = "tp1_time"
BE_MOVED = "be_moved"
MAX_FAVORABLE = "max_favorable"
MAX_ADVERSE = "max_adverse"
ONE_R_HIT = "one_r_hit"
TWO_R_HIT = "two_r_hit"
TIME_TO_EXIT_SEC = "time_to_exit_sec"
AMBIGUOUS_BAR = "ambiguous_bar"
CENSORED = "censored"
WAS_EXECUTED = "was_executed"
ML_SCORE = "ml_score"
OUTCOME_COLUMNS: tuple[str, ...] = (
    SIGNAL_ID,
    EXIT_TIME,
    EXIT_PRICE,
    EXIT_REASON,
    OUTCOME,
    PNL_PERCENT,
    REALIZED_RR,
    TP1_HIT,
    TP1_TIME,
    BE_MOVED,
    MAX_FAVORABLE,
    MAX_ADVERSE,
    ONE_R_HIT,
    TWO_R_HIT,
    TIME_TO_EXIT_SEC,
    AMBIGUOUS_BAR,
    CENSORED,
    WAS_EXECUTED,
    ML_SCORE,
)
EXIT_REASONS: tuple[str, ...] = ("tp", "sl", "be", "timeout")
OUTCOMES: tuple[str, ...] = ("win", "loss", "timeout")

# --------------------------------------------------------------------------------------------
# replay decisions (research.replay): one row per signal, what the online loop decided
# --------------------------------------------------------------------------------------------
SCORE_SOURCE = "score_source"  # 'ml' | 'heuristic'
MODEL_VERSION = "model_version"  # 0 = no model yet (heuristic)
THRESHOLD = "threshold"  # score points, 0-100
THRESHOLD_SOURCE = "threshold_source"  # 'bucket' | 'ev' | 'static'
THRESHOLD_VERSION = "threshold_version"  # 0 = nothing learnt yet
PASSED = "passed"  # score >= threshold: the filter's own choice
EXPLORED = "explored"  # below threshold but executed by exploration
P_EXECUTE = "p_execute"  # propensity: probability that this signal was executed
RR_IF_EXECUTED = "rr_if_executed"  # R net of execution costs, whatever the decision
RR_GROSS = "rr_gross"  # R of the trade before any cost (what the bars alone gave)
COST_R = "cost_r"  # round-trip costs of the signal's venue in R (a registered feature)
COST_PCT = "cost_pct"  # the same in percent of entry
THRESHOLD_SEED = "threshold_seed"  # the seed rule's threshold beside the rule in force
PASSED_SEED = "passed_seed"  # score >= threshold_seed: what the seed's rule would have taken
DECISION_RAW = "decision_raw"  # the model's uncalibrated P(win), 0-1, at decision (NaN: heuristic)

# --------------------------------------------------------------------------------------------
# labels of the analyses' frames, shared by compute (analysis) and drawing (plots)
# --------------------------------------------------------------------------------------------
NOISE_PROBE = "__noise__"  # permutation importance's noise feature (analysis.importance)
ENTRY_VARIANT = "entry"  # leakage check: the feature set without after_entry features

# --------------------------------------------------------------------------------------------
# context vocabularies (the seed's 4 sessions x 4 volatility regimes = 16 buckets)
# --------------------------------------------------------------------------------------------
SESSION = "session"
VOLATILITY_REGIME = "volatility_regime"
SYMBOL_CLUSTER = "symbol_cluster"
SESSIONS: tuple[str, ...] = ("asia", "london", "overlap", "us")
VOLATILITY_REGIMES: tuple[str, ...] = ("low", "normal", "high", "extreme")
BUCKET_SEP = "|"  # seed: EV / qscore buckets are keyed "session|volatility", e.g. "us|high"


def bucket_name(session: str, volatility_regime: str) -> str:
    """The seed's bucket key ``"session|volatility"`` (no validation; see thresholds)."""
    return f"{session}{BUCKET_SEP}{volatility_regime}"


def bucket_grid(values, *, dtype=np.float64) -> pd.DataFrame:
    """Values keyed by bucket (``"session|volatility"``) as a sessions x volatility grid.

    Rows follow :data:`SESSIONS`, columns :data:`VOLATILITY_REGIMES` (the seed's 16 buckets
    always show, NaN where there is no value); keys with other labels are appended.
    """
    grid = pd.DataFrame(np.nan, index=list(SESSIONS), columns=list(VOLATILITY_REGIMES), dtype=dtype)
    for bucket, value in dict(values).items():
        session, _, regime = str(bucket).partition(BUCKET_SEP)
        grid.loc[session, regime] = value
    return grid.rename_axis(index=SESSION, columns=VOLATILITY_REGIME)


#: Largest price (any quote currency) and volume a candle may carry. Real markets stay far
#: below (BTC quoted in VND or IDR is ~1e9; a memecoin's volume per bar ~1e13 units): beyond
#: them a value is a parse error, a wrong unit or a placeholder, and 1e300 would overflow the
#: indicators' squares and products to inf.
MAX_PRICE, MAX_VOLUME = 1e12, 1e18


def check_features_mapping(features, who: str):
    """Return ``features`` if it is one signal's mapping of feature name -> value.

    A :class:`pandas.Series` (a row of a features frame) counts as a mapping.

    Raises
    ------
    InputTypeError
        For anything else (``None``, a list, a string, a frame...), naming ``who`` and the fix.
    """
    if isinstance(features, Mapping | pd.Series):
        return features
    hint = " (many signals: use score_frame(frame))" if isinstance(features, pd.DataFrame) else ""
    raise InputTypeError(
        f"{who} takes one signal's features as a mapping of feature name -> number, got "
        f"{type(features).__name__} {_short_repr(features)}{hint}. Fix: pass a dict such as "
        "{'rsi_14': 55.0, 'session': 'us'} (an empty dict means nothing is known)."
    )


def check_features_frame(features, who: str) -> pd.DataFrame:
    """Return ``features`` if it is a DataFrame of signals (one row each), else raise."""
    if isinstance(features, pd.DataFrame):
        return features
    raise InputTypeError(
        f"{who} takes a DataFrame of features (one row per signal, one column per feature), "
        f"got {type(features).__name__} {_short_repr(features)}. Fix: pass "
        "pd.DataFrame(rows), or score one signal's mapping with score_signal(features)."
    )


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rows_preview(index: Iterable, limit: int = 5) -> str:
    items = list(index)
    shown = ", ".join(str(i) for i in items[:limit])
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return f"{shown}{more}"


def require_columns(df: pd.DataFrame, columns: Sequence[str], stage: str) -> None:
    """Raise :class:`SchemaError` naming every required column that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{stage} frame is missing column(s) {missing}; it has {list(df.columns)}. "
            f"Fix: rename or add them so the frame has {list(columns)}."
        )


def validate_candles(df: pd.DataFrame) -> pd.DataFrame:
    """Check the candles contract; return ``df`` unchanged if it holds.

    Rejects: a non-UTC or non-datetime index, unsorted or duplicate stamps, NaN, infinite or
    implausibly large values (prices >= :data:`MAX_PRICE`, volume >= :data:`MAX_VOLUME`),
    non-positive prices, ``high < max(open, close)`` and ``low > min(open, close)``, negative
    volume.
    """
    if not isinstance(df.index, pd.DatetimeIndex):
        raise SchemaError(
            f"candles need a DatetimeIndex of bar open times, got {type(df.index).__name__}. "
            "Fix: load them with research.load_candles(), or df.set_index(pd.to_datetime("
            "df['timestamp'], utc=True))."
        )
    if df.index.tz is None or str(df.index.tz) != "UTC":
        raise SchemaError(
            f"candle timestamps must be UTC, got tz={df.index.tz}. "
            "Fix: df.index = df.index.tz_localize('UTC') (naive stamps) or .tz_convert('UTC')."
        )
    require_columns(df, CANDLE_COLUMNS, "candles")
    dup = df.index[df.index.duplicated(keep=False)]
    if len(dup):
        raise SchemaError(
            f"candles have {len(dup)} rows with duplicate timestamps: {_rows_preview(dup.unique())}. "
            "Fix: drop the duplicates (df[~df.index.duplicated(keep='last')]) after checking "
            "which copy is right."
        )
    if not df.index.is_monotonic_increasing:
        steps = np.flatnonzero(np.diff(df.index.as_unit("ns").asi8) < 0) + 1
        raise SchemaError(
            f"candle timestamps are not sorted ascending; first out-of-order rows: "
            f"{_rows_preview(df.index[steps])}. Fix: df = df.sort_index()."
        )
    values = df[list(CANDLE_COLUMNS)]
    nan_rows = df.index[values.isna().any(axis=1).to_numpy()]
    if len(nan_rows):
        cols = [c for c in CANDLE_COLUMNS if values[c].isna().any()]
        raise SchemaError(
            f"candles contain NaN in {cols} at {len(nan_rows)} row(s): {_rows_preview(nan_rows)}. "
            "Fix: drop those bars (gaps are allowed and are reported, not filled) or repair "
            "them from the source; never forward-fill prices silently."
        )
    prices = values[[OPEN, HIGH, LOW, CLOSE]].to_numpy()
    limits = np.array([MAX_PRICE] * 4 + [MAX_VOLUME])
    huge = ~(np.abs(values.to_numpy()) < limits)  # inf too (and nothing else: NaN is refused)
    if huge.any():
        rows = df.index[huge.any(axis=1)]
        cols = [c for c, h in zip(CANDLE_COLUMNS, huge.any(axis=0), strict=True) if h]
        raise SchemaError(
            f"candles have infinite or implausibly large values in {cols} at {len(rows)} "
            f"row(s): {_rows_preview(rows)} (e.g. {float(values.loc[rows[0], cols[0]])!r}). Fix: "
            f"repair or drop those rows; prices must be finite and below {MAX_PRICE:g}, volume "
            f"below {MAX_VOLUME:g} (such values are parse errors, wrong units or placeholders)."
        )
    bad = df.index[(prices <= 0).any(axis=1)]
    if len(bad):
        raise SchemaError(
            f"candles have non-positive prices at {len(bad)} row(s): {_rows_preview(bad)}. "
            "Fix: drop or repair those rows; prices must be > 0."
        )
    o, h, lo, c = (values[k].to_numpy() for k in (OPEN, HIGH, LOW, CLOSE))
    bad = df.index[h < np.maximum(o, c)]
    if len(bad):
        raise SchemaError(
            f"candles have high below open or close at {len(bad)} row(s): {_rows_preview(bad)}. "
            "Fix: check the column order of the source (open, high, low, close, volume) "
            "or repair high = max(open, high, close)."
        )
    bad = df.index[lo > np.minimum(o, c)]
    if len(bad):
        raise SchemaError(
            f"candles have low above open or close at {len(bad)} row(s): {_rows_preview(bad)}. "
            "Fix: check the column order of the source (open, high, low, close, volume) "
            "or repair low = min(open, low, close)."
        )
    bad = df.index[values[VOLUME].to_numpy() < 0]
    if len(bad):
        raise SchemaError(
            f"candles have negative volume at {len(bad)} row(s): {_rows_preview(bad)}. "
            "Fix: volume must be >= 0 (use 0 where the source has none, e.g. FX quotes)."
        )
    return df


def validate_signals(df: pd.DataFrame) -> pd.DataFrame:
    """Check the signals contract: columns, sides, strategies, and SL/TP geometry."""
    require_columns(df, SIGNAL_COLUMNS, "signals")
    if df[SIGNAL_ID].duplicated().any():
        dup = df.loc[df[SIGNAL_ID].duplicated(keep=False), SIGNAL_ID]
        raise SchemaError(
            f"signals have duplicate signal_id values: {_rows_preview(dup.unique())}. "
            "Fix: give every signal its own id (research.signals.new_signal_ids)."
        )
    bad_side = df.index[~df[SIDE].isin(SIDES).to_numpy()]
    if len(bad_side):
        raise SchemaError(
            f"signals have unknown side at rows {_rows_preview(bad_side)} "
            f"(values {sorted(df.loc[bad_side, SIDE].astype(str).unique())}). "
            f"Fix: side must be one of {list(SIDES)}."
        )
    times = df[SIGNAL_TIME]
    if not isinstance(times.dtype, pd.DatetimeTZDtype) or str(times.dt.tz) != "UTC":
        raise SchemaError(
            f"signals.signal_time must be tz-aware UTC datetimes, got dtype {times.dtype}. "
            "Fix: df['signal_time'] = pd.to_datetime(df['signal_time'], utc=True)."
        )
    num = df[[ENTRY, SL, TP]].astype("float64")
    bad = df.index[num.isna().any(axis=1).to_numpy() | (num <= 0).any(axis=1).to_numpy()]
    if len(bad):
        raise SchemaError(
            f"signals have NaN or non-positive entry/sl/tp at rows {_rows_preview(bad)}. "
            "Fix: every signal needs positive entry, sl and tp prices."
        )
    long = (df[SIDE] == LONG).to_numpy()
    e, s, t = (num[k].to_numpy() for k in (ENTRY, SL, TP))
    wrong = np.where(long, ~((s < e) & (e < t)), ~((t < e) & (e < s)))
    bad = df.index[wrong]
    if len(bad):
        raise SchemaError(
            f"signals have SL/TP on the wrong side of entry at rows {_rows_preview(bad)}. "
            "Fix: a long needs sl < entry < tp, a short needs tp < entry < sl."
        )
    return df


def validate(df: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Validate ``df`` against the contract of ``stage`` (``'candles'`` or ``'signals'``)."""
    checks = {"candles": validate_candles, "signals": validate_signals}
    if stage not in checks:
        raise ValueError(f"unknown stage {stage!r}; known stages: {sorted(checks)}")
    return checks[stage](df)


def check_session(session: str) -> str:
    """Return ``session`` if it is one of :data:`SESSIONS`, else raise a fix-it error."""
    if session not in SESSIONS:
        raise SchemaError(
            f"unknown session {session!r}. Fix: use one of {list(SESSIONS)} "
            "(research.features.session_of(timestamp) maps a UTC time to its session)."
        )
    return session


def utc_timestamp(value) -> pd.Timestamp:
    """``value`` (datetime-like; naive means UTC) as a tz-aware UTC :class:`pandas.Timestamp`."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def timeframe_label(value) -> str:
    """A candle period as traders write it: ``Timedelta('0 days 00:05:00')`` -> ``"5m"``.

    Whole days give ``"1d"``, whole hours ``"4h"``, whole minutes ``"5m"``, else seconds.
    Text is returned unchanged (it already is a label).
    """
    if isinstance(value, str):
        return value
    seconds = pd.Timedelta(value).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
