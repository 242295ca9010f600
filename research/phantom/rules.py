"""Rules of phantom trade simulation, shared by the batch simulator and the online tracker.

Both run the *same* rule function, :func:`bar_step` (numba), so a phantom tracked live and
the same signal replayed in batch can never disagree. The rules (seed "Phantom Trade
Lifecycle", DESIGN §4) for a long — a short is simulated as a long on negated prices, which
mirrors every comparison exactly:

* The trade runs from the first bar whose open time is >= ``signal_time`` (never the signal bar).
* Each bar, in order: the break-even stop decided on the previous bar takes effect; extremes are
  updated with the whole bar; **SL** (at the current stop), then **TP**; a bar that *opens*
  beyond the stop or the target fills at its open (a gap), otherwise the fill is at the level.
  When the stop and the target both lie inside one bar the stop is assumed first (the
  convention of every established backtester) and ``ambiguous_bar`` is set.
* If still open: the **TP1 milestone** (``tp1_r`` R, seed 1.6R) sets ``tp1_hit``/``tp1_time``
  and moves the stop to entry from the **next** bar on (``be_moved``); a later stop-out there is
  ``exit_reason='be'``. A trade that exits at TP has passed TP1 on its way (``tp1_hit=True``).
* If still open: **timeout** at the close of the first bar whose close time is >=
  ``signal_time + timeout`` (wall-clock time, so data gaps never shift it), at the bar's close
  (or at entry, the seed's behaviour, with ``timeout_exit='entry'``).
* ``exit_time`` is the *close* time of the exit bar: when the outcome becomes known.
* A trade still open when the data end is ``censored``: its exit fields are missing.

Units: prices in quote currency, ``pnl_percent`` in percent of entry, R multiples relative to
``R = |entry - sl|`` at signal time, times in UTC, ``time_to_exit_sec`` in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from research import schema as S
from research.config import SimulatorConfig

# exit reason codes used inside the kernels
STILL_OPEN, _TP, _SL, _BE, _TIMEOUT = 0, 1, 2, 3, 4
# reason codes 1..4 are positions 0..3 of schema.EXIT_REASONS ("tp", "sl", "be", "timeout")
NAT = np.iinfo(np.int64).min
# Relative tolerance for levels *derived* by arithmetic (TP1, 1R, 2R), so that a bar that
# touches 101.6 exactly counts as reaching 1.6R above 100 despite binary rounding.
_EPS = 1e-12


@njit(cache=True)
def bar_step(
    o,
    h,
    lo,
    c,
    t_close,
    entry,
    tp,
    tp1_level,
    next_stop,
    deadline,
    at_entry,
    tp1_hit,
    tp1_time,
    be_moved,
    mfe,
    mae,
):
    """Advance one long trade by one bar; prices are already in long space.

    Returns ``(stop, next_stop, tp1_hit, tp1_time, be_moved, mfe, mae, reason, price, ambiguous)``.
    """
    stop = next_stop  # a break-even move decided on the previous bar takes effect now
    if h > mfe:
        mfe = h
    if lo < mae:
        mae = lo
    reason = STILL_OPEN
    price = np.nan
    ambiguous = False
    stop_reason = _BE if stop >= entry else _SL
    if o <= stop:  # gap through the stop: filled at the open
        reason = stop_reason
        price = o
    elif o >= tp:  # gap through the target: filled at the open
        reason = _TP
        price = o
    elif lo <= stop:  # stop first when both lie inside the bar
        reason = stop_reason
        price = stop
        ambiguous = h >= tp
    elif h >= tp:
        reason = _TP
        price = tp
    if reason == _TP and not tp1_hit and tp >= tp1_level - _EPS * abs(tp1_level):
        tp1_hit = True
        tp1_time = t_close
    if reason == STILL_OPEN:
        if not tp1_hit and h >= tp1_level - _EPS * abs(tp1_level):
            tp1_hit = True
            tp1_time = t_close
            be_moved = True
            next_stop = max(stop, entry)
        if t_close >= deadline:
            reason = _TIMEOUT
            price = entry if at_entry else c
    return stop, next_stop, tp1_hit, tp1_time, be_moved, mfe, mae, reason, price, ambiguous


@njit(cache=True)
def simulate_batch(o, h, lo, c, t_close, start, sign, entry, sl, tp, tp1_r, deadline, at_entry):
    """Run every signal from its start bar until exit or data end. Returns result arrays."""
    n, m = len(o), len(entry)
    reason = np.zeros(m, np.int8)
    exit_price = np.full(m, np.nan)
    exit_time = np.full(m, NAT, np.int64)
    tp1_hit = np.zeros(m, np.bool_)
    tp1_time = np.full(m, NAT, np.int64)
    be_moved = np.zeros(m, np.bool_)
    mfe = np.full(m, np.nan)
    mae = np.full(m, np.nan)
    ambiguous = np.zeros(m, np.bool_)
    checks = 0
    for j in range(m):
        s = sign[j]
        e, stop, target = entry[j] * s, sl[j] * s, tp[j] * s
        tp1_level = e + tp1_r * (e - stop) if tp1_r > 0 else np.inf
        hit, t1, moved, hi, lw = False, NAT, False, -np.inf, np.inf
        for i in range(start[j], n):
            if s > 0:
                bo, bh, bl, bc = o[i], h[i], lo[i], c[i]
            else:
                bo, bh, bl, bc = -o[i], -lo[i], -h[i], -c[i]
            checks += 1
            _, stop, hit, t1, moved, hi, lw, r, px, amb = bar_step(
                bo,
                bh,
                bl,
                bc,
                t_close[i],
                e,
                target,
                tp1_level,
                stop,
                deadline[j],
                at_entry,
                hit,
                t1,
                moved,
                hi,
                lw,
            )
            if r != STILL_OPEN:
                reason[j] = r
                exit_price[j] = px * s
                exit_time[j] = t_close[i]
                ambiguous[j] = amb
                break
        tp1_hit[j], tp1_time[j], be_moved[j] = hit, t1, moved
        if hi > -np.inf:
            mfe[j], mae[j] = hi * s, lw * s
    return reason, exit_price, exit_time, tp1_hit, tp1_time, be_moved, mfe, mae, ambiguous, checks


@njit(cache=True)
def step_many(fs, ist, o, h, lo, c, t_open, t_close, at_entry, reason, price, ambiguous):
    """Advance every tracked trade of one symbol by one bar (the online path).

    ``fs`` columns: sign, entry, tp, tp1_level, next_stop, tp1_hit, be_moved, mfe, mae (long
    space); ``ist`` columns: signal_time, deadline, tp1_time (ns).
    """
    for k in range(fs.shape[0]):
        if t_open < ist[k, 0]:  # the trade starts at the first bar opening at/after the signal
            continue
        s = fs[k, 0]
        if s > 0:
            bo, bh, bl, bc = o, h, lo, c
        else:
            bo, bh, bl, bc = -o, -lo, -h, -c
        _, nxt, hit, t1, moved, hi, lw, r, px, amb = bar_step(
            bo,
            bh,
            bl,
            bc,
            t_close,
            fs[k, 1],
            fs[k, 2],
            fs[k, 3],
            fs[k, 4],
            ist[k, 1],
            at_entry,
            fs[k, 5] > 0,
            ist[k, 2],
            fs[k, 6] > 0,
            fs[k, 7],
            fs[k, 8],
        )
        fs[k, 4], fs[k, 5], fs[k, 6], fs[k, 7], fs[k, 8] = nxt, hit, moved, hi, lw
        ist[k, 2] = t1
        reason[k], price[k], ambiguous[k] = r, px * s, amb


def as_ns(values) -> np.ndarray:
    """UTC datetimes -> int64 nanoseconds (pandas 3 may store microseconds)."""
    return pd.DatetimeIndex(values).as_unit("ns").asi8


def utc_times(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds (``NAT`` for missing) -> UTC datetimes, without parsing."""
    return pd.DatetimeIndex(np.asarray(ns, np.int64).view("M8[ns]")).tz_localize("UTC")


def timeouts_ns(signals: pd.DataFrame, config: SimulatorConfig) -> np.ndarray:
    names, inverse = np.unique(signals[S.STRATEGY].to_numpy(dtype=object), return_inverse=True)
    per_name = np.array([config.timeout_hours.get(n, np.nan) for n in names], dtype=np.float64)
    hours = pd.Series(per_name[inverse], index=signals.index)
    if S.TIMEOUT_HOURS in signals:
        hours = signals[S.TIMEOUT_HOURS].astype("float64").fillna(hours)
    unknown = signals.loc[hours.isna().to_numpy(), S.STRATEGY]
    if len(unknown):
        raise S.SchemaError(
            f"no timeout for strategy {sorted(unknown.astype(str).unique())} "
            f"(configured: {sorted(config.timeout_hours)}). Fix: pass "
            "SimulatorConfig(timeout_hours={...}) with that strategy, or add a "
            "'timeout_hours' column to the signals."
        )
    return (hours.to_numpy() * 3600e9).astype(np.int64)


def finalize(
    sig: pd.DataFrame,
    reason,
    exit_price,
    exit_ns,
    tp1_hit,
    tp1_ns,
    be_moved,
    mfe,
    mae,
    ambiguous,
    config: SimulatorConfig,
) -> pd.DataFrame:
    """Turn kernel arrays into the outcomes frame (DESIGN §3). Shared by batch and online."""
    sign = np.where(sig[S.SIDE].to_numpy() == S.LONG, 1.0, -1.0)
    entry = sig[S.ENTRY].to_numpy(np.float64)
    risk = np.abs(entry - sig[S.SL].to_numpy(np.float64))
    censored = reason == STILL_OPEN
    # Costs in price units: round-trip fees plus adverse slippage on both fills.
    cost = entry * (config.fee_percent + 2.0 * config.slippage_percent) / 100.0
    rr = (sign * (exit_price - entry) - cost) / risk
    pnl = (sign * (exit_price - entry) - cost) / entry * 100.0
    # Categoricals with the fixed vocabularies, built from codes (fast); -1 = missing
    # (a censored row's outcome is unknown, whatever else is in the batch).
    outcome_codes = np.where(reason == _TIMEOUT, 2, np.where(rr > 0, 0, 1))
    outcome = pd.Categorical.from_codes(np.where(censored, -1, outcome_codes), S.OUTCOMES)
    fav = sign * (mfe - entry)
    signal_ns = as_ns(sig[S.SIGNAL_TIME])
    return pd.DataFrame(
        {
            S.SIGNAL_ID: sig[S.SIGNAL_ID].to_numpy(),
            S.EXIT_TIME: utc_times(np.where(censored, NAT, exit_ns)),
            S.EXIT_PRICE: exit_price,
            S.EXIT_REASON: pd.Categorical.from_codes(reason.astype(np.int64) - 1, S.EXIT_REASONS),
            S.OUTCOME: outcome,
            S.PNL_PERCENT: pnl,
            S.REALIZED_RR: rr,
            S.TP1_HIT: tp1_hit.astype(bool),
            S.TP1_TIME: utc_times(tp1_ns),
            S.BE_MOVED: be_moved.astype(bool),
            S.MAX_FAVORABLE: mfe,
            S.MAX_ADVERSE: mae,
            S.ONE_R_HIT: fav >= risk * (1.0 - _EPS),
            S.TWO_R_HIT: fav >= 2.0 * risk * (1.0 - _EPS),
            S.TIME_TO_EXIT_SEC: np.where(censored, np.nan, (exit_ns - signal_ns) / 1e9),
            S.AMBIGUOUS_BAR: ambiguous.astype(bool),
            S.CENSORED: censored,
            S.WAS_EXECUTED: column_or(sig, S.WAS_EXECUTED, False).astype(bool),
            S.ML_SCORE: column_or(sig, S.ML_SCORE, np.nan).astype(np.float64),
        }
    )


def column_or(df: pd.DataFrame, name: str, default) -> np.ndarray:
    return df[name].to_numpy() if name in df else np.full(len(df), default)
