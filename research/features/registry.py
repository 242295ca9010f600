"""The feature registry: every feature's name, group, dtype, unit, description and availability.

``available`` is the guard against look-ahead: ``'signal'`` features are known when the signal
fires (computed from bars closed at or before ``signal_time``); ``'after_entry'`` features exist
only once the trade has run (the seed feeds some of them, e.g. ``tp1_hit``, to its entry model —
a leak; DESIGN §6). Dataset builders for an entry model must refuse ``after_entry`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUPS = ("technical", "context", "lifecycle")
AVAILABILITY = ("signal", "after_entry")


@dataclass(frozen=True, kw_only=True, slots=True)
class Feature:
    """One registered feature. ``dtype`` is ``float64``, ``int64``, ``bool`` or ``category``."""

    name: str
    group: str
    dtype: str
    description: str
    available: str = "signal"
    unit: str = ""

    def __post_init__(self) -> None:
        if self.group not in GROUPS or self.available not in AVAILABILITY:
            raise ValueError(f"bad registry entry {self}")


def _f(name, group, dtype, unit, description, available="signal") -> Feature:
    return Feature(
        name=name, group=group, dtype=dtype, unit=unit, description=description, available=available
    )


# "side-aware" = multiplied by +1 for a long and -1 for a short, so positive favours the trade.
_ENTRIES = (
    _f("atr_pct", "technical", "float64", "% of price", "ATR(14) / close x 100"),
    _f(
        "breakout_dist_atr",
        "technical",
        "float64",
        "ATR",
        "close beyond the previous 20-bar high (long) / low (short); side-aware",
    ),
    _f(
        "retrace_depth",
        "technical",
        "float64",
        "fraction 0-1",
        "share of the 20-bar range retraced from the extreme in the trade's direction",
    ),
    _f(
        "ema_stack_score",
        "technical",
        "float64",
        "-3..3",
        "ordering of close > EMA20 > EMA50 > EMA200 (+1 per ordered pair); side-aware",
    ),
    _f(
        "ema_slope_atr",
        "technical",
        "float64",
        "ATR per bar",
        "slope of EMA20 over 5 bars; side-aware",
    ),
    _f(
        "ema50_slope_atr",
        "technical",
        "float64",
        "ATR per bar",
        "slope of EMA50 over 10 bars; side-aware",
    ),
    _f("dist_ema200_atr", "technical", "float64", "ATR", "close - EMA200; side-aware"),
    _f("rsi_14", "technical", "float64", "0-100", "Wilder RSI(14)"),
    _f(
        "divergence",
        "technical",
        "float64",
        "-1, 0, 1",
        "RSI divergence at a 20-bar extreme: +1 favours the trade, -1 opposes it",
    ),
    _f("macd_hist_atr", "technical", "float64", "ATR", "MACD(12,26,9) histogram; side-aware"),
    _f(
        "range_position",
        "technical",
        "float64",
        "fraction 0-1",
        "close within the 20-bar high-low range (0 = low, 1 = high)",
    ),
    _f(
        "volume_zscore",
        "technical",
        "float64",
        "std devs",
        "volume vs the previous 20 bars; 0 where volume is constant (e.g. FX without volume)",
    ),
    _f("volume_ratio", "technical", "float64", "ratio", "volume / mean of the previous 20 bars"),
    _f("body_ratio", "technical", "float64", "fraction 0-1", "|close - open| / (high - low)"),
    _f(
        "upper_wick_ratio",
        "technical",
        "float64",
        "fraction 0-1",
        "(high - max(open, close)) / (high - low)",
    ),
    _f(
        "lower_wick_ratio",
        "technical",
        "float64",
        "fraction 0-1",
        "(min(open, close) - low) / (high - low)",
    ),
    _f("bb_width_pct", "technical", "float64", "% of price", "Bollinger(20, 2) width / mid x 100"),
    _f("bb_position", "technical", "float64", "fraction", "close within the Bollinger bands"),
    _f(
        "bbw_percentile",
        "technical",
        "float64",
        "fraction 0-1",
        "rank of the Bollinger width within the last 200 bars",
    ),
    _f(
        "vwap_dist_atr", "technical", "float64", "ATR", "close - session VWAP (UTC day); side-aware"
    ),
    _f("adx_14", "technical", "float64", "0-100", "Wilder ADX(14), trend strength"),
    _f("return_1_atr", "technical", "float64", "ATR", "last bar's close change; side-aware"),
    _f("return_12_atr", "technical", "float64", "ATR", "close change over 12 bars; side-aware"),
    _f(
        "realized_vol_pct",
        "technical",
        "float64",
        "% per bar",
        "std of log returns over 48 bars x 100",
    ),
    _f("atr_ratio", "technical", "float64", "ratio", "ATR(14) / ATR(100): volatility expansion"),
    _f("donchian_width_atr", "technical", "float64", "ATR", "20-bar high - low"),
    _f(
        "consecutive_bars",
        "technical",
        "float64",
        "bars",
        "closes in a row moving the trade's way (capped at 10)",
    ),
    _f("risk_pct", "technical", "float64", "% of price", "|entry - sl| / entry x 100"),
    _f("sl_dist_atr", "technical", "float64", "ATR", "|entry - sl| / ATR(14)"),
    _f("tp_r", "technical", "float64", "R", "|tp - entry| / |entry - sl|"),
    _f("is_long", "technical", "float64", "0/1", "1 for a long, 0 for a short"),
    _f(
        "signed_volume_12",
        "technical",
        "float64",
        "ratio",
        "mean over the last 12 bars of volume_ratio x sign of the bar's body; side-aware",
    ),
    _f(
        "spike_dir_12",
        "technical",
        "float64",
        "-1, 0, 1",
        "body sign of the latest bar of the last 12 whose volume is >= 2x its 20-bar mean "
        "(a volume spike); 0 if none; side-aware",
    ),
    _f(
        "spike_age_12",
        "technical",
        "float64",
        "bars",
        "bars since that volume spike (0 = the signal bar; 12 if none in the last 12)",
    ),
    _f(
        "cost_r",
        "technical",
        "float64",
        "R",
        "round-trip costs of the signal's venue (fees, slippage, spread) / |entry - sl|",
    ),
    _f(
        "session",
        "context",
        "category",
        "",
        "trading session of signal_time (asia, london, "
        "overlap, us; UTC hours [22,7), [7,12), [12,16), [16,22))",
    ),
    _f(
        "volatility_regime",
        "context",
        "category",
        "",
        "low / normal / high / extreme: rank of ATR% within the last 500 bars "
        "(< 0.25, < 0.75, < 0.95, else)",
    ),
    _f(
        "symbol_cluster",
        "context",
        "int64",
        "label",
        "cluster of the symbol's return/volatility profile (SymbolClusterer, fitted before the "
        "studied period); -1 if no clustering was given",
    ),
    _f("hour", "context", "int64", "0-23", "UTC hour of signal_time"),
    _f("weekday", "context", "int64", "0-6", "UTC weekday of signal_time (Monday = 0)"),
    _f(
        "trend_state",
        "context",
        "category",
        "",
        "up / down / flat from the raw EMA stack score (>= 2, <= -2, else)",
    ),
    _f(
        "volume_state",
        "context",
        "category",
        "",
        "low / normal / high volume ratio (< 0.7, <= 1.5, > 1.5)",
    ),
    # lifecycle: known only after entry — never inputs of an entry model
    _f("tp1_hit", "lifecycle", "bool", "", "TP1 (1.6R) reached", "after_entry"),
    _f("be_moved", "lifecycle", "bool", "", "stop moved to break-even", "after_entry"),
    _f("time_to_exit_sec", "lifecycle", "float64", "s", "signal to exit", "after_entry"),
    _f("one_r_hit", "lifecycle", "bool", "", "max favourable excursion >= 1R", "after_entry"),
    _f("two_r_hit", "lifecycle", "bool", "", "max favourable excursion >= 2R", "after_entry"),
    _f("max_favorable_r", "lifecycle", "float64", "R", "max favourable excursion", "after_entry"),
    _f("max_adverse_r", "lifecycle", "float64", "R", "max adverse excursion (>= 0)", "after_entry"),
    _f("ambiguous_bar", "lifecycle", "bool", "", "SL and TP inside one bar", "after_entry"),
)

FEATURES: dict[str, Feature] = {f.name: f for f in _ENTRIES}
CATEGORIES: dict[str, tuple[str, ...]] = {
    "session": ("asia", "london", "overlap", "us"),
    "volatility_regime": ("low", "normal", "high", "extreme"),
    "trend_state": ("down", "flat", "up"),
    "volume_state": ("low", "normal", "high"),
}


def feature_names(*, available: str | None = None, group: str | None = None) -> list[str]:
    """Registered names, in registry order, optionally filtered by availability and group."""
    return [
        f.name
        for f in _ENTRIES
        if (available is None or f.available == available) and (group is None or f.group == group)
    ]


def registry_frame():
    """The registry as a DataFrame (one row per feature) — handy in a notebook."""
    import pandas as pd

    return pd.DataFrame([{k: getattr(f, k) for k in Feature.__slots__} for f in _ENTRIES])


def check_entry_columns(columns, *, allow_after_entry: bool = False) -> list[str]:
    """Refuse unknown or ``after_entry`` columns for an entry model (unless asked explicitly).

    Returns the columns as a list. ``allow_after_entry=True`` exists to *demonstrate* leakage.
    """
    columns = list(columns)
    unknown = [c for c in columns if c not in FEATURES]
    if unknown:
        raise ValueError(
            f"unregistered feature column(s) {unknown}. Fix: register them in "
            "research.features.registry with their availability, or drop them."
        )
    late = [c for c in columns if FEATURES[c].available == "after_entry"]
    if late and not allow_after_entry:
        raise ValueError(
            f"{late} are known only after entry (lifecycle); an entry model trained on them "
            "learns from the future. Fix: drop them, or pass allow_after_entry=True to study "
            "the leak on purpose."
        )
    return columns
