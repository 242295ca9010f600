"""Feature extraction at signal time: ``build_features`` and ``lifecycle_features``.

Point-in-time by construction: every per-bar value is a causal indicator
(:mod:`research.indicators`), and each signal reads the row of the last bar that *closed* at or
before its ``signal_time``. A test changes every bar after a signal and checks that its
features do not move.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from research import indicators as ind
from research import schema as S
from research.candles import timeframe_of
from research.config import FeatureConfig
from research.costs import CostModel, signal_costs
from research.features.context import SymbolClusterer, session_of, volatility_regime
from research.features.registry import CATEGORIES, FEATURES, feature_names


def _run_length(flags: pd.Series, cap: int) -> pd.Series:
    """Length of the current run of True values, capped (causal)."""
    groups = (~flags).cumsum()
    return flags.astype(float).groupby(groups).cumsum().clip(upper=cap)


def bar_table(candles: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Per-bar causal values from which every signal-time feature is read.

    Columns ending in ``_l`` / ``_s`` are the long / short versions of side-dependent values;
    plain columns are already side-free or are multiplied by the side later.
    """
    cfg = config or FeatureConfig()
    o, h, lo, c, v = (candles[k] for k in S.CANDLE_COLUMNS)
    atr = ind.atr(candles, cfg.atr_period)
    e20, e50, e200 = (ind.ema(c, n) for n in (20, 50, 200))
    n = cfg.channel_bars
    hi_n = h.rolling(n, min_periods=n).max()
    lo_n = lo.rolling(n, min_periods=n).min()
    span = (hi_n - lo_n).where(hi_n > lo_n)
    prev_hi, prev_lo = (
        h.shift(1).rolling(n, min_periods=n).max(),
        lo.shift(1).rolling(n, min_periods=n).min(),
    )
    stack = sum(np.sign(a - b) for a, b in ((c, e20), (e20, e50), (e50, e200)))
    rsi = ind.rsi(c, cfg.rsi_period)
    d = cfg.divergence_bars
    new_high = c >= c.shift(1).rolling(d, min_periods=d).max()
    new_low = c <= c.shift(1).rolling(d, min_periods=d).min()
    bearish = new_high & (rsi < rsi.shift(1).rolling(d, min_periods=d).max())
    bullish = new_low & (rsi > rsi.shift(1).rolling(d, min_periods=d).min())
    macd = ind.ema(c, 12) - ind.ema(c, 26)
    vol_mean = v.shift(1).rolling(cfg.volume_lookback, min_periods=cfg.volume_lookback).mean()
    vol_sd = v.shift(1).rolling(cfg.volume_lookback, min_periods=cfg.volume_lookback).std()
    bb = ind.bollinger(c, 20)
    bb_span = (bb["upper"] - bb["lower"]).where(bb["upper"] > bb["lower"])
    rng = (h - lo).where(h > lo)
    atr_pct = atr / c * 100
    step = c.diff()
    ratio = ind.volume_ratio(v, cfg.volume_lookback)
    body_sign = np.sign(c - o)
    # volume spikes: the latest bar of the last 12 whose volume is >= 2x its 20-bar mean
    bar_no = pd.Series(np.arange(len(c), dtype=np.float64), index=c.index)
    spike = (ratio >= 2.0).to_numpy()
    last = bar_no.where(spike).ffill()
    age = bar_no - last
    recent = age <= 11
    spike_sign = body_sign.where(spike).ffill()
    return pd.DataFrame(
        {
            "atr": atr,
            "atr_pct": atr_pct,
            "breakout_l": (c - prev_hi) / atr,
            "breakout_s": (prev_lo - c) / atr,
            "retrace_l": ((hi_n - c) / span).fillna(0.0),
            "retrace_s": ((c - lo_n) / span).fillna(0.0),
            "ema_stack_score": stack,
            "ema_slope_atr": ind.slope(e20, 5, atr),
            "ema50_slope_atr": ind.slope(e50, 10, atr),
            "dist_ema200_atr": (c - e200) / atr,
            "rsi_14": rsi,
            "divergence": bullish.astype(float) - bearish.astype(float),
            "macd_hist_atr": (macd - macd.ewm(span=9, adjust=False).mean()) / atr,
            "range_position": ((c - lo_n) / span).fillna(0.5).where(hi_n.notna()),
            "volume_zscore": ((v - vol_mean) / vol_sd)
            .where(vol_sd > 0, 0.0)
            .where(vol_mean.notna()),
            "volume_ratio": ratio,
            "signed_volume_12": (ratio * body_sign).rolling(12, min_periods=12).mean(),
            "spike_dir_12": spike_sign.where(recent, 0.0).where(ratio.notna()),
            "spike_age_12": age.where(recent, 12.0).where(ratio.notna()),
            "body_ratio": ind.body_ratio(candles),
            "upper_wick_ratio": ((h - np.maximum(o, c)) / rng).fillna(0.0),
            "lower_wick_ratio": ((np.minimum(o, c) - lo) / rng).fillna(0.0),
            "bb_width_pct": bb["width"] * 100,
            "bb_position": ((c - bb["lower"]) / bb_span).fillna(0.5).where(bb["mid"].notna()),
            "bbw_percentile": ind.rolling_rank(bb["width"], cfg.bb_rank_lookback),
            "vwap_dist_atr": (c - ind.session_vwap(candles)) / atr,
            "adx_14": ind.adx(candles, 14),
            "return_1_atr": step / atr,
            "return_12_atr": (c - c.shift(12)) / atr,
            "realized_vol_pct": np.log(c).diff().rolling(cfg.realized_vol_bars).std() * 100,
            "atr_ratio": atr / ind.atr(candles, 100),
            "donchian_width_atr": (hi_n - lo_n) / atr,
            "run_l": _run_length(step > 0, 10),
            "run_s": _run_length(step < 0, 10),
            "vol_rank": ind.rolling_rank(atr_pct, cfg.regime_lookback),
        },
        index=candles.index,
    )


_SIDE_AWARE = (
    "ema_stack_score",
    "ema_slope_atr",
    "ema50_slope_atr",
    "dist_ema200_atr",
    "divergence",
    "macd_hist_atr",
    "vwap_dist_atr",
    "return_1_atr",
    "return_12_atr",
    "signed_volume_12",
    "spike_dir_12",
)
_PLAIN = (
    "atr_pct",
    "rsi_14",
    "range_position",
    "volume_zscore",
    "volume_ratio",
    "body_ratio",
    "upper_wick_ratio",
    "lower_wick_ratio",
    "bb_width_pct",
    "bb_position",
    "bbw_percentile",
    "adx_14",
    "realized_vol_pct",
    "atr_ratio",
    "donchian_width_atr",
    "spike_age_12",
)


def _symbol_features(candles, sig, config, clusters, costs) -> pd.DataFrame:
    table = bar_table(candles, config)
    open_ns = candles.index.as_unit("ns").asi8
    signal_ns = pd.DatetimeIndex(sig[S.SIGNAL_TIME]).as_unit("ns").asi8
    # the last bar whose close (open + timeframe) is at or before the signal time
    pos = np.searchsorted(open_ns, signal_ns - timeframe_of(candles).value, side="right") - 1
    if (pos < 0).any():
        first = sig.loc[pos < 0, S.SIGNAL_ID].iloc[0]
        raise S.SchemaError(
            f"{int((pos < 0).sum())} signal(s) (e.g. {first}) come before any bar of "
            f"{sig[S.SYMBOL].iloc[0]} closed. Fix: load candles covering the signals' period."
        )
    rows = table.iloc[pos].reset_index(drop=True)
    long = (sig[S.SIDE] == S.LONG).to_numpy()
    sign = np.where(long, 1.0, -1.0)
    entry, sl, tp = (sig[k].to_numpy(np.float64) for k in (S.ENTRY, S.SL, S.TP))
    risk = np.abs(entry - sl)
    out = {name: rows[name].to_numpy() for name in _PLAIN}
    out.update({name: rows[name].to_numpy() * sign for name in _SIDE_AWARE})
    out["breakout_dist_atr"] = np.where(long, rows["breakout_l"], rows["breakout_s"])
    out["retrace_depth"] = np.where(long, rows["retrace_l"], rows["retrace_s"])
    out["consecutive_bars"] = np.where(long, rows["run_l"], rows["run_s"])
    out["risk_pct"] = risk / entry * 100
    out["sl_dist_atr"] = risk / rows["atr"].to_numpy()
    out["tp_r"] = np.abs(tp - entry) / risk
    out["is_long"] = long.astype(float)
    out[S.COST_R] = signal_costs(sig, costs)[S.COST_R].to_numpy()
    times = pd.DatetimeIndex(sig[S.SIGNAL_TIME])
    out["session"] = session_of(times)
    out["volatility_regime"] = volatility_regime(rows["vol_rank"])
    out["hour"] = np.asarray(times.hour, dtype=np.int64)
    out["weekday"] = np.asarray(times.day_of_week, dtype=np.int64)
    raw_stack = rows["ema_stack_score"].to_numpy()
    out["trend_state"] = np.where(raw_stack >= 2, "up", np.where(raw_stack <= -2, "down", "flat"))
    ratio = rows["volume_ratio"].to_numpy()
    out["volume_state"] = np.where(ratio < 0.7, "low", np.where(ratio > 1.5, "high", "normal"))
    out["symbol_cluster"] = _clusters_for(sig[S.SYMBOL], clusters)
    return pd.DataFrame(out, index=pd.Index(sig[S.SIGNAL_ID].to_numpy(), name=S.SIGNAL_ID))


def _clusters_for(symbols: pd.Series, clusters) -> np.ndarray:
    if clusters is None:
        return np.full(len(symbols), -1, dtype=np.int64)
    if isinstance(clusters, SymbolClusterer):
        return clusters.predict(symbols)
    return np.array([clusters.get(s, -1) for s in symbols], dtype=np.int64)


def build_features(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    *,
    clusters: SymbolClusterer | Mapping[str, int] | None = None,
    config: FeatureConfig | None = None,
    costs: CostModel | None = None,
) -> pd.DataFrame:
    """Every ``signal``-available registered feature of every signal, at its signal time.

    Parameters
    ----------
    candles : DataFrame or mapping of symbol -> DataFrame
    signals : DataFrame
        A signals frame (DESIGN §3).
    clusters : SymbolClusterer or mapping, optional
        Symbol -> cluster label, fitted on data before the studied period; -1 without it.
    config : FeatureConfig, optional
    costs : CostModel, optional
        Venue costs per symbol, for ``cost_r`` (default :class:`research.costs.CostModel`:
        crypto perpetual, FX pairs by spread).

    Returns
    -------
    DataFrame
        Indexed by ``signal_id``, columns in registry order, dtypes as registered
        (categoricals with their fixed vocabularies). Values are NaN only for signals within
        the first ``config.warmup_bars`` bars of a series.
    """
    S.validate_signals(signals)
    if isinstance(candles, pd.DataFrame) and signals[S.SYMBOL].nunique() > 1:
        raise S.SchemaError(
            "one candle frame was given for signals of several symbols. Fix: pass a "
            "dict {symbol: candles}."
        )
    frames = []
    for symbol, sig in signals.groupby(S.SYMBOL, sort=False):
        if isinstance(candles, pd.DataFrame):
            bars = candles
        elif symbol in candles:
            bars = candles[symbol]
        else:
            raise S.SchemaError(
                f"no candles for symbol {symbol!r}; given: {sorted(candles)}. Fix: load it."
            )
        frames.append(_symbol_features(S.validate_candles(bars), sig, config, clusters, costs))
    names = feature_names(available="signal")
    out = pd.concat(frames) if frames else pd.DataFrame(columns=names)
    out = out.reindex(index=pd.Index(signals[S.SIGNAL_ID], name=S.SIGNAL_ID), columns=names)
    return _typed(out)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in frame.columns:
        dtype = FEATURES[name].dtype
        if dtype == "category":
            frame[name] = pd.Categorical(frame[name], categories=CATEGORIES[name])
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def lifecycle_features(signals: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The ``after_entry`` (lifecycle) features of simulated trades, indexed by ``signal_id``.

    Only for leakage studies and post-trade analysis: never inputs of an entry model.
    """
    merged = signals.merge(outcomes, on=S.SIGNAL_ID, validate="one_to_one")
    sign = np.where(merged[S.SIDE] == S.LONG, 1.0, -1.0)
    risk = (merged[S.ENTRY] - merged[S.SL]).abs()
    out = pd.DataFrame(
        {
            "tp1_hit": merged[S.TP1_HIT],
            "be_moved": merged[S.BE_MOVED],
            "time_to_exit_sec": merged[S.TIME_TO_EXIT_SEC],
            "one_r_hit": merged[S.ONE_R_HIT],
            "two_r_hit": merged[S.TWO_R_HIT],
            "max_favorable_r": sign * (merged[S.MAX_FAVORABLE] - merged[S.ENTRY]) / risk,
            "max_adverse_r": sign * (merged[S.ENTRY] - merged[S.MAX_ADVERSE]) / risk,
            "ambiguous_bar": merged[S.AMBIGUOUS_BAR],
        }
    )
    out.index = pd.Index(merged[S.SIGNAL_ID], name=S.SIGNAL_ID)
    return _typed(out[feature_names(available="after_entry")])
