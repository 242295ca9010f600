"""The phantom simulator: hand-computed cases, properties, reference and online agreement."""

from __future__ import annotations

import dataclasses
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import assert_tracker_matches_batch

from research import schema as S
from research.config import SimulatorConfig
from research.phantom import PhantomTracker, simulate
from research.phantom.batch import run_kernel
from research.phantom.reference import simulate_one

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
HOUR = pd.Timedelta("1h")


def bars(rows, start=T0, freq=HOUR, drop=()):
    """Candles from ``(open, high, low, close)`` tuples; ``drop`` removes bars to make gaps."""
    index = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC", name=S.TIMESTAMP)
    df = pd.DataFrame(rows, index=index, columns=[S.OPEN, S.HIGH, S.LOW, S.CLOSE])
    df[S.VOLUME] = 1.0
    df = df.drop(index[list(drop)])
    df.attrs["timeframe"] = freq
    df.attrs["symbol"] = "TEST"
    return df


def signal(side="long", entry=100.0, sl=99.0, tp=102.0, at=T0 + HOUR, strategy="trend", **kw):
    row = {
        S.SIGNAL_ID: str(uuid.uuid4()),
        S.SYMBOL: "TEST",
        S.STRATEGY: strategy,
        S.SIDE: side,
        S.SIGNAL_TIME: at,
        S.ENTRY: entry,
        S.SL: sl,
        S.TP: tp,
        **kw,
    }
    return pd.DataFrame([row])


def one(candles, sig, **cfg):
    out = simulate(candles, sig, SimulatorConfig(**cfg))
    assert len(out) == 1
    return out.iloc[0]


# The signal bar (00:00-01:00) would stop the trade out if it were (wrongly) simulated.
SIGNAL_BAR = (100.0, 100.2, 97.0, 100.0)


class TestHandComputed:
    def test_long_tp(self):
        c = bars([SIGNAL_BAR, (100, 101, 99.5, 100.5), (100.5, 102.5, 100.2, 102.2)])
        r = one(c, signal())
        assert r[S.EXIT_REASON] == "tp" and r[S.OUTCOME] == "win"
        assert r[S.EXIT_PRICE] == 102.0
        assert r[S.EXIT_TIME] == T0 + 3 * HOUR  # close of the exit bar
        assert r[S.REALIZED_RR] == pytest.approx(2.0)
        assert r[S.PNL_PERCENT] == pytest.approx(2.0)
        assert r[S.TP1_HIT] and r[S.TP1_TIME] == T0 + 3 * HOUR and not r[S.BE_MOVED]
        assert (r[S.MAX_FAVORABLE], r[S.MAX_ADVERSE]) == (102.5, 99.5)
        assert r[S.ONE_R_HIT] and r[S.TWO_R_HIT]
        assert r[S.TIME_TO_EXIT_SEC] == 7200
        assert not r[S.AMBIGUOUS_BAR] and not r[S.CENSORED]

    def test_long_sl(self):
        c = bars([SIGNAL_BAR, (100, 100.5, 98.9, 99.2)])
        r = one(c, signal())
        assert (r[S.EXIT_REASON], r[S.OUTCOME], r[S.EXIT_PRICE]) == ("sl", "loss", 99.0)
        assert r[S.REALIZED_RR] == pytest.approx(-1.0)
        assert r[S.PNL_PERCENT] == pytest.approx(-1.0)
        assert r[S.EXIT_TIME] == T0 + 2 * HOUR
        assert not r[S.ONE_R_HIT] and not r[S.TP1_HIT]

    def test_sl_and_tp_in_one_bar_assumes_sl_first(self):
        c = bars([SIGNAL_BAR, (100, 102.5, 98.5, 101)])
        r = one(c, signal())
        assert (r[S.EXIT_REASON], r[S.OUTCOME]) == ("sl", "loss")
        assert r[S.AMBIGUOUS_BAR]
        assert not r[S.TP1_HIT]  # the stop came first, so TP1 was never reached
        assert r[S.TWO_R_HIT]  # but the excursion still touched 2R

    def test_tp1_then_break_even(self):
        c = bars([SIGNAL_BAR, (100, 101.7, 99.8, 101.5), (101.4, 101.5, 99.9, 100.0)])
        r = one(c, signal())
        assert r[S.TP1_HIT] and r[S.BE_MOVED]
        assert r[S.TP1_TIME] == T0 + 2 * HOUR
        assert (r[S.EXIT_REASON], r[S.EXIT_PRICE], r[S.OUTCOME]) == ("be", 100.0, "loss")
        assert r[S.REALIZED_RR] == 0.0
        assert r[S.EXIT_TIME] == T0 + 3 * HOUR

    def test_break_even_takes_effect_from_the_next_bar(self):
        # TP1 reached and price dips below entry in the same bar: not stopped at BE there.
        c = bars([SIGNAL_BAR, (100, 101.7, 99.5, 101.0), (101, 102.1, 100.5, 102)])
        r = one(c, signal())
        assert r[S.EXIT_REASON] == "tp" and r[S.BE_MOVED]
        assert r[S.EXIT_TIME] == T0 + 3 * HOUR

    def test_short_tp_and_short_gap_through_stop(self):
        c = bars([SIGNAL_BAR, (100, 100.4, 97.9, 98.2)])
        r = one(c, signal("short", 100, 101, 98))
        assert (r[S.EXIT_REASON], r[S.EXIT_PRICE]) == ("tp", 98.0)
        assert r[S.REALIZED_RR] == pytest.approx(2.0)
        assert r[S.PNL_PERCENT] == pytest.approx(2.0)
        assert (r[S.MAX_FAVORABLE], r[S.MAX_ADVERSE]) == (97.9, 100.4)
        c = bars([SIGNAL_BAR, (101.5, 101.8, 100.9, 101.6)])
        r = one(c, signal("short", 100, 101, 98))
        assert (r[S.EXIT_REASON], r[S.EXIT_PRICE]) == ("sl", 101.5)  # gap: filled at the open
        assert r[S.REALIZED_RR] == pytest.approx(-1.5)

    def test_short_both_in_one_bar_and_short_break_even(self):
        r = one(bars([SIGNAL_BAR, (100, 101.2, 97.5, 99)]), signal("short", 100, 101, 98))
        assert r[S.EXIT_REASON] == "sl" and r[S.AMBIGUOUS_BAR]
        c = bars([SIGNAL_BAR, (100, 100.1, 98.3, 98.6), (98.6, 100.0, 98.5, 99.9)])
        r = one(c, signal("short", 100, 101, 98))
        assert r[S.TP1_HIT] and r[S.EXIT_REASON] == "be" and r[S.EXIT_PRICE] == 100.0

    def test_long_gap_through_target_fills_at_open(self):
        r = one(bars([SIGNAL_BAR, (103, 103.5, 102.8, 103.2)]), signal())
        assert (r[S.EXIT_REASON], r[S.EXIT_PRICE]) == ("tp", 103.0)
        assert r[S.REALIZED_RR] == pytest.approx(3.0)

    def test_timeout_is_wall_clock_time_across_a_data_gap(self):
        flat = (100, 100.3, 99.7, 100.1)
        # 1h bars; bars 30..42 are missing (a 13-hour outage). Trend timeout = 36 h after the
        # signal at 01:00 -> deadline Jan 2 13:00, which falls inside the gap.
        rows = [SIGNAL_BAR] + [flat] * 50
        c = bars(rows, drop=range(30, 43))
        r = one(c, signal())
        assert (r[S.EXIT_REASON], r[S.OUTCOME]) == ("timeout", "timeout")
        # first bar after the gap opens at 43:00 and closes at 44:00 >= deadline (37:00)
        assert r[S.EXIT_TIME] == T0 + 44 * HOUR
        assert r[S.EXIT_PRICE] == 100.1
        assert r[S.TIME_TO_EXIT_SEC] == 43 * 3600
        # without the gap the same trade times out exactly at the deadline
        r = one(bars(rows), signal())
        assert r[S.EXIT_TIME] == T0 + 37 * HOUR
        # the seed's rule closes at the entry price; scalp times out after 24 h
        r = one(bars(rows), signal(), timeout_exit="entry")
        assert r[S.EXIT_PRICE] == 100.0 and r[S.REALIZED_RR] == 0.0
        assert one(bars(rows), signal(strategy="scalp"))[S.EXIT_TIME] == T0 + 25 * HOUR

    def test_stop_beats_timeout_in_the_deadline_bar(self):
        flat = (100, 100.3, 99.7, 100.1)
        rows = [SIGNAL_BAR] + [flat] * 35 + [(100, 100.2, 98.8, 99)]  # bar 36 closes at 37:00
        r = one(bars(rows), signal())
        assert r[S.EXIT_REASON] == "sl" and r[S.EXIT_TIME] == T0 + 37 * HOUR

    def test_censored_when_data_end_first(self):
        r = one(bars([SIGNAL_BAR, (100, 101, 99.5, 100.5)]), signal())
        assert r[S.CENSORED] and pd.isna(r[S.OUTCOME]) and pd.isna(r[S.EXIT_TIME])
        assert pd.isna(r[S.EXIT_REASON]) and np.isnan(r[S.REALIZED_RR])
        assert r[S.MAX_FAVORABLE] == 101 and r[S.MAX_ADVERSE] == 99.5
        r = one(bars([SIGNAL_BAR]), signal())  # no bar after the signal at all
        assert r[S.CENSORED] and np.isnan(r[S.MAX_FAVORABLE])

    def test_costs_turn_break_even_into_a_loss_and_shrink_r(self):
        c = bars([SIGNAL_BAR, (100, 101, 99.5, 100.5), (100.5, 102.5, 100.2, 102.2)])
        r = one(c, signal(), fee_percent=0.1)
        assert r[S.REALIZED_RR] == pytest.approx(1.9)  # 0.1% of 100 = 0.1 price = 0.1 R
        assert r[S.PNL_PERCENT] == pytest.approx(1.9)
        c = bars([SIGNAL_BAR, (100, 101.7, 99.8, 101.5), (101.4, 101.5, 99.9, 100.0)])
        r = one(c, signal(), fee_percent=0.05, slippage_percent=0.01)
        assert r[S.OUTCOME] == "loss" and r[S.REALIZED_RR] == pytest.approx(-0.07)

    def test_signal_inside_a_gap_starts_at_the_next_bar(self):
        c = bars(
            [SIGNAL_BAR, (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100), (100, 102.5, 99.9, 102)],
            drop=[1, 2],
        )
        r = one(c, signal())
        assert r[S.EXIT_REASON] == "tp" and r[S.EXIT_TIME] == T0 + 4 * HOUR


class TestBadInput:
    def test_unknown_strategy_needs_a_timeout(self):
        with pytest.raises(S.SchemaError, match="timeout_hours"):
            simulate(bars([SIGNAL_BAR] * 3), signal(strategy="breakout"))
        flat = bars([SIGNAL_BAR] + [(100, 100.3, 99.7, 100.1)] * 3)
        out = simulate(flat, signal(strategy="breakout", timeout_hours=1.0))
        assert out.iloc[0][S.EXIT_REASON] == "timeout"
        assert out.iloc[0][S.EXIT_TIME] == T0 + 2 * HOUR

    def test_wrong_side_geometry(self):
        with pytest.raises(S.SchemaError, match="sl < entry < tp"):
            simulate(bars([SIGNAL_BAR] * 3), signal(sl=101.0))

    def test_signals_before_the_data(self):
        with pytest.raises(S.SchemaError, match="before the first candle"):
            simulate(bars([SIGNAL_BAR] * 3), signal(at=T0 - HOUR))

    def test_missing_symbol_candles(self):
        sig = signal()
        with pytest.raises(S.SchemaError, match="no candles for symbol"):
            simulate({"OTHER": bars([SIGNAL_BAR] * 3)}, sig)

    def test_malformed_candles(self):
        c = bars([SIGNAL_BAR, (100, 99, 98, 100.5)])  # high below close
        with pytest.raises(S.SchemaError, match="high below open or close"):
            simulate(c, signal())


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------
@st.composite
def market_and_signals(draw, max_bars=60):
    n = draw(st.integers(5, max_bars))
    steps = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    wicks = draw(
        st.lists(st.tuples(st.floats(0, 0.02), st.floats(0, 0.02)), min_size=n, max_size=n)
    )
    gaps = draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))
    rows, price = [], 100.0
    for step, (up, down), gap in zip(steps, wicks, gaps, strict=True):
        o = price * (1 + gap)
        c = o * (1 + step)
        rows.append((o, max(o, c) * (1 + up), min(o, c) * (1 - down), c))
        price = c
    drop = draw(st.lists(st.integers(1, n - 1), max_size=n // 4, unique=True))
    candles = bars(rows, drop=drop)
    k = draw(st.integers(1, 6))
    sigs = []
    for _ in range(k):
        i = draw(st.integers(0, n - 1))
        long = draw(st.booleans())
        entry = rows[i][3]
        risk = entry * draw(st.floats(0.002, 0.03))
        rr = draw(st.sampled_from([0.5, 1.0, 1.6, 2.0, 3.0]))
        side = S.LONG if long else S.SHORT
        sl, tp = (entry - risk, entry + rr * risk) if long else (entry + risk, entry - rr * risk)
        sigs.append(
            signal(
                side,
                entry,
                sl,
                tp,
                at=T0 + (i + 1) * HOUR,
                strategy=draw(st.sampled_from(["trend", "scalp"])),
                timeout_hours=draw(st.sampled_from([np.nan, 3.0, 10.0])),
            )
        )
    return candles, pd.concat(sigs, ignore_index=True)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_outcomes(candles, sigs, config):
    t_open = candles.index.as_unit("ns").asi8
    table = list(
        zip(
            *(candles[k] for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE)),
            t_open + HOUR.value,
            strict=True,
        )
    )
    out = []
    for _, s in sigs.iterrows():
        t_sig = pd.Timestamp(s[S.SIGNAL_TIME]).as_unit("ns").value
        hours = (
            s[S.TIMEOUT_HOURS]
            if pd.notna(s[S.TIMEOUT_HOURS])
            else (config.timeout_hours[s[S.STRATEGY]])
        )
        out.append(
            simulate_one(
                table,
                int(np.searchsorted(t_open, t_sig)),
                s[S.SIDE],
                s[S.ENTRY],
                s[S.SL],
                s[S.TP],
                t_sig + int(hours * 3600e9),
                tp1_r=config.tp1_r,
                at_entry=config.timeout_exit == "entry",
            )
        )
    return out


@FAST
@given(market_and_signals(), st.sampled_from([1.6, 0.0, 1.0]), st.sampled_from(["close", "entry"]))
def test_kernel_agrees_with_plain_python_reference(data, tp1_r, timeout_exit):
    candles, sigs = data
    config = SimulatorConfig(tp1_r=tp1_r, timeout_exit=timeout_exit)
    got = simulate(candles, sigs, config)
    for (_, g), ref in zip(got.iterrows(), reference_outcomes(candles, sigs, config), strict=True):
        assert (None if pd.isna(g[S.EXIT_REASON]) else g[S.EXIT_REASON]) == ref["reason"]
        np.testing.assert_equal(g[S.EXIT_PRICE], ref["price"])
        assert g[S.TP1_HIT] == ref["tp1_hit"] and g[S.BE_MOVED] == ref["be_moved"]
        assert g[S.AMBIGUOUS_BAR] == ref["ambiguous"]
        np.testing.assert_equal((g[S.MAX_FAVORABLE], g[S.MAX_ADVERSE]), (ref["mfe"], ref["mae"]))
        if ref["exit_time"] is not None:
            assert g[S.EXIT_TIME].value == ref["exit_time"]


@FAST
@given(market_and_signals(), st.floats(1.0, 3.0))
def test_wider_stop_never_turns_a_win_into_a_loss_without_tp1(data, widen):
    candles, sigs = data
    config = SimulatorConfig(tp1_r=0.0)
    base = simulate(candles, sigs, config)
    sign = np.where(sigs[S.SIDE] == S.LONG, 1.0, -1.0)
    wider = sigs.assign(**{S.SL: sigs[S.ENTRY] - sign * widen * (sigs[S.ENTRY] - sigs[S.SL]).abs()})
    wide = simulate(candles, wider, config)
    was_win = (base[S.OUTCOME] == "win").to_numpy()
    assert (wide.loc[was_win, S.OUTCOME] == "win").all()
    assert (wide.loc[was_win, S.EXIT_TIME] == base.loc[was_win, S.EXIT_TIME]).all()


@FAST
@given(market_and_signals(), st.floats(0.5, 2.0))
def test_outcomes_never_use_bars_before_the_signal(data, scale):
    candles, sigs = data
    before = simulate(candles, sigs)
    for i, s in sigs.iterrows():
        # Distort every bar that opens before the signal time (incl. the signal bar).
        early = candles.index < s[S.SIGNAL_TIME]
        if not early.any():
            continue
        changed = candles.copy()
        changed.loc[early, [S.OPEN, S.HIGH, S.LOW, S.CLOSE]] *= scale
        after = simulate(changed, sigs.iloc[[i]])
        pd.testing.assert_series_equal(after.iloc[0], before.iloc[i], check_names=False)


@FAST
@given(market_and_signals())
def test_long_short_mirror_symmetry(data):
    candles, sigs = data
    # k - p rounds, so a bar touching a level *exactly* may miss it once mirrored: that tie is
    # float arithmetic, not the rule under test (found by hypothesis: high == tp to the bit)
    risk = (sigs[S.ENTRY] - sigs[S.SL]).to_numpy()
    levels = np.concatenate(
        [sigs[S.SL], sigs[S.TP], sigs[S.ENTRY] + SimulatorConfig().tp1_r * risk]
    )
    prices = candles[[S.OPEN, S.HIGH, S.LOW]].to_numpy().ravel()
    assume(np.abs(prices[:, None] - levels[None, :]).min() > 1e-9 * np.abs(levels).max())
    k = 1000.0  # reflect prices p -> k - p: a long becomes a short with identical outcome
    mirror = candles.copy()
    mirror[S.OPEN], mirror[S.CLOSE] = k - candles[S.OPEN], k - candles[S.CLOSE]
    mirror[S.HIGH], mirror[S.LOW] = k - candles[S.LOW], k - candles[S.HIGH]
    flipped = sigs.assign(
        **{
            S.SIDE: np.where(sigs[S.SIDE] == S.LONG, S.SHORT, S.LONG),
            S.ENTRY: k - sigs[S.ENTRY],
            S.SL: k - sigs[S.SL],
            S.TP: k - sigs[S.TP],
        }
    )
    a, b = simulate(candles, sigs), simulate(mirror, flipped)
    for col in (S.EXIT_REASON, S.EXIT_TIME, S.TP1_HIT, S.BE_MOVED, S.AMBIGUOUS_BAR, S.CENSORED):
        assert a[col].equals(b[col]), col
    np.testing.assert_allclose(a[S.REALIZED_RR], b[S.REALIZED_RR], rtol=1e-6, atol=1e-9)


@FAST
@given(market_and_signals())
def test_online_tracker_agrees_with_batch(data):
    candles, sigs = data
    assert_tracker_matches_batch(candles, sigs, SimulatorConfig())


class TestTracker:
    def test_bad_bars_are_refused_and_change_nothing(self):
        tracker = PhantomTracker(timeframe="1h")
        tracker.add(signal().iloc[0])
        bar = {S.OPEN: 100, S.HIGH: 99, S.LOW: 98, S.CLOSE: 100}
        with pytest.raises(S.SchemaError, match="high >= max"):
            tracker.update("TEST", bar, timestamp=T0 + HOUR)
        ok = {S.OPEN: 100, S.HIGH: 100.5, S.LOW: 99.5, S.CLOSE: 100}
        assert tracker.update("TEST", ok, timestamp=T0 + HOUR).empty
        with pytest.raises(S.SchemaError, match="not after the last bar"):
            tracker.update("TEST", ok, timestamp=T0 + HOUR)
        assert len(tracker) == 1

    def test_duplicate_signal_id_is_refused(self):
        tracker = PhantomTracker(timeframe="1h")
        sig = signal()
        tracker.add_many(sig)
        with pytest.raises(S.SchemaError, match="already tracked"):
            tracker.add_many(sig)
        assert len(tracker) == 1

    def test_state_round_trips_through_json(self):
        c = bars([SIGNAL_BAR, (100, 101.7, 99.8, 101.5), (101.4, 101.5, 99.9, 100.0)])
        sig = pd.concat([signal(), signal("short", 100, 101, 98)], ignore_index=True)
        tracker = PhantomTracker(timeframe="1h")
        tracker.add_many(sig)
        tracker.update("TEST", c.iloc[1])
        restored = PhantomTracker.from_state(json.loads(json.dumps(tracker.to_state())))
        assert restored.active == tracker.active
        a, b = tracker.update("TEST", c.iloc[2]), restored.update("TEST", c.iloc[2])
        pd.testing.assert_frame_equal(a, b)
        assert a.iloc[0][S.EXIT_REASON] == "be"


def test_config_is_frozen_and_keyword_only():
    with pytest.raises(TypeError):
        SimulatorConfig(1.6)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SimulatorConfig().tp1_r = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="timeout_exit"):
        SimulatorConfig(timeout_exit="market")


def test_bar_checks_count_the_work_done():
    c = bars([SIGNAL_BAR, (100, 101, 99.5, 100.5), (100.5, 102.5, 100.2, 102.2)] + [SIGNAL_BAR] * 5)
    assert run_kernel(c, signal(), SimulatorConfig())[-1] == 2  # exits on the 2nd bar checked
