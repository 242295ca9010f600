"""Thresholds: EV break-even, the qscore bucket adapter (seed and shrunk), the fallback policy."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from research import schema as S
from research.errors import InsufficientDataError
from research.thresholds import (
    BUCKETS,
    EVThreshold,
    QscoreAdapter,
    ThresholdConfig,
    ThresholdPolicy,
    bucket_key,
    ev_threshold,
)

US_HIGH = {S.SESSION: "us", S.VOLATILITY_REGIME: "high"}
ASIA_LOW = {S.SESSION: "asia", S.VOLATILITY_REGIME: "low"}
RIGOROUS = ThresholdConfig(rule="rigorous")


def trades(qscore, won, session="us", regime="high", win_pnl=1.5, loss_pnl=-1.0):
    """A trades frame with one bucket; pnl_percent and realized_rr from the win flags."""
    won = np.asarray(won, dtype=bool)
    value = np.where(won, win_pnl, loss_pnl)
    return pd.DataFrame(
        {
            S.QSCORE: np.asarray(qscore, dtype=np.float64),
            S.OUTCOME: np.where(won, "win", "loss"),
            S.SESSION: session,
            S.VOLATILITY_REGIME: regime,
            S.PNL_PERCENT: value,
            S.REALIZED_RR: value,
        }
    )


def calibrated_market(n_per_bucket, seed=0, prob=lambda q: q / 100.0):
    """Every bucket: qscores uniform on 0..100 (integers), win with probability ``prob(q)``."""
    rng = np.random.default_rng(seed)
    frames = []
    for bucket in BUCKETS:
        session, regime = bucket.split("|")
        q = np.round(rng.uniform(0, 100, n_per_bucket))
        frames.append(trades(q, rng.random(n_per_bucket) < prob(q), session, regime))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------
# EV threshold
# ------------------------------------------------------------------------------------------
def test_ev_seed_hand_computed():
    ev = ev_threshold([2, 2, 2, -1, -1])
    assert (ev.avg_win, ev.avg_loss, ev.n_wins, ev.n_losses) == (2.0, 1.0, 3, 2)
    assert ev.p_min == pytest.approx(1 / 3)
    assert ev.score == pytest.approx(33.33, abs=0.01)
    assert ev.unit == "pnl_percent"


def test_ev_seed_on_frame_ignores_timeouts_and_censored_rows():
    df = pd.DataFrame(
        {
            S.OUTCOME: pd.Categorical(
                ["win", "win", "win", "loss", "loss", "timeout", None], categories=S.OUTCOMES
            ),
            S.PNL_PERCENT: [2.0, 2.0, 2.0, -1.0, -1.0, -5.0, np.nan],
        }
    )
    assert ev_threshold(df).p_min == pytest.approx(1 / 3)


def test_ev_rigorous_in_r_net_of_cost_counts_breakeven_and_timeouts():
    # wins 2R, 2R; losses -1R, -1R; a break-even exit at 0R (outcome 'loss'); a timeout at +0.5R.
    df = pd.DataFrame(
        {
            S.OUTCOME: ["win", "win", "loss", "loss", "loss", "timeout"],
            S.EXIT_REASON: ["tp", "tp", "sl", "sl", "be", "timeout"],
            S.REALIZED_RR: [2.0, 2.0, -1.0, -1.0, 0.0, 0.5],
            S.PNL_PERCENT: [9.0, 9.0, -1.0, -1.0, 0.0, 0.5],  # must not be used
        }
    )
    ev = ev_threshold(df, rule="rigorous", cost_r=0.1)
    # net R: wins 1.9, 1.9 -> avg_win 1.9; others -1.1, -1.1, -0.1, 0.4 -> avg_loss 0.475
    assert (ev.n_wins, ev.n_losses, ev.unit, ev.cost_r) == (2, 4, "R", 0.1)
    assert ev.avg_win == pytest.approx(1.9)
    assert ev.avg_loss == pytest.approx(0.475)
    assert ev.p_min == pytest.approx(0.475 / 2.375)  # = 0.2
    assert ev.score == pytest.approx(20.0)
    # the seed rule on the same rows: pnl, timeouts out: 9 vs (1 + 1 + 0) / 3
    assert ev_threshold(df).p_min == pytest.approx((2 / 3) / (9 + 2 / 3))


def test_ev_array_with_explicit_won_mask():
    ev = ev_threshold([1.5, 0.2, -1.0, -1.0], won=[True, False, False, False], rule="rigorous")
    assert ev.avg_loss == pytest.approx(0.6)
    assert ev.p_min == pytest.approx(0.6 / 2.1)


@pytest.mark.parametrize(
    ("values", "missing"), [([-1.0, -2.0], "no winning"), ([1.0, 2.0], "no losing")]
)
def test_ev_errors_name_what_is_missing_and_the_fallback(values, missing):
    with pytest.raises(InsufficientDataError, match=missing) as info:
        ev_threshold(values)
    assert "static threshold" in str(info.value)
    with pytest.raises(InsufficientDataError, match=missing):
        ev_threshold(values, rule="rigorous")


def test_ev_frame_without_the_rule_column_is_a_schema_error():
    with pytest.raises(S.SchemaError, match="realized_rr"):
        ev_threshold(pd.DataFrame({S.OUTCOME: ["win"], S.PNL_PERCENT: [1.0]}), rule="rigorous")


# ------------------------------------------------------------------------------------------
# QscoreAdapter, seed rule
# ------------------------------------------------------------------------------------------
def test_adapter_recovers_break_even_on_calibrated_scores():
    # P(win | q) = q / 100 and wins pay 1.5 for a loss of 1: p_min = 0.4, true threshold 40.
    adapter = QscoreAdapter().fit(calibrated_market(1000, seed=1))
    assert sorted(adapter.thresholds_) == sorted(BUCKETS)
    assert adapter.bucket_stats_["p_min"].to_numpy() == pytest.approx(0.4)
    thr = np.array(list(adapter.thresholds_.values()))
    # isotonic first crossings are noisy per bucket (1000 trades); their median is not
    assert np.median(thr) == pytest.approx(40.0, abs=3.0)
    assert np.all(np.abs(thr - 40.0) < 15.0)
    # a given global p_min moves every threshold
    high = QscoreAdapter().fit(calibrated_market(1000, seed=1), p_min=0.7)
    assert np.median(list(high.thresholds_.values())) == pytest.approx(70.0, abs=3.0)


def test_adapter_sklearn_conventions():
    adapter = QscoreAdapter.from_config(RIGOROUS)
    df = calibrated_market(30)
    assert adapter.fit(df) is adapter
    assert clone(adapter).get_params() == {
        "rule": "rigorous",
        "min_records": 20,
        "shrink_k": 50.0,
        "cost_r": 0.0,
        "floor": 60.0,
        "ceiling": 95.0,
    }
    assert not hasattr(clone(adapter), "thresholds_")


def test_adapter_parameters_are_flat_and_clone_round_trips():
    adapter = QscoreAdapter(rule="rigorous", shrink_k=10.0, floor=55.0)
    twin = clone(adapter)
    assert twin is not adapter and twin.get_params() == adapter.get_params()
    assert twin.set_params(cost_r=0.2).cost_r == 0.2 and adapter.cost_r == 0.0
    config = ThresholdConfig(rule="rigorous", min_records=7, ceiling=90.0)
    assert clone(QscoreAdapter.from_config(config)).get_params() == {
        "rule": "rigorous",
        "min_records": 7,
        "shrink_k": 50.0,
        "cost_r": 0.0,
        "floor": 60.0,
        "ceiling": 90.0,
    }
    with pytest.raises(ValueError, match="rule must be"):
        QscoreAdapter(rule="bogus").fit(calibrated_market(30))  # checked when fitting


def test_buckets_below_min_records_have_no_seed_threshold():
    q = np.linspace(0, 100, 20)
    df = pd.concat([trades(q, q >= 50), trades(q[:19], q[:19] >= 50, "asia", "low")])
    adapter = QscoreAdapter().fit(df)
    assert "us|high" in adapter.thresholds_  # exactly 20 records
    assert "asia|low" not in adapter.thresholds_  # 19 records
    assert adapter.get_threshold(ASIA_LOW) is None
    assert adapter.bucket_stats_.loc["asia|low", "note"] == "fewer than 20 trades"
    assert adapter.bucket_stats_.loc["asia|low", "n"] == 19
    with pytest.raises(KeyError, match="no fitted curve"):
        adapter.curve("asia|low", [50.0])


def test_threshold_is_the_crossing_of_the_isotonic_curve():
    # P(win) is 0 below q=50 and 1 from q=60: the curve rises linearly between the two knots.
    q = np.array([10.0] * 10 + [50.0] * 10 + [60.0] * 10 + [90.0] * 10)
    adapter = QscoreAdapter().fit(trades(q, q >= 60), p_min=0.25)
    assert adapter.thresholds_["us|high"] == pytest.approx(52.5)
    assert adapter.curve("us|high", [0, 50, 55, 100]) == pytest.approx([0, 0, 0.5, 1])


def test_timeouts_are_left_out_by_the_seed_and_count_as_not_won_by_the_rigorous_rule():
    q = np.linspace(0, 100, 41)
    df = trades(q, q >= 50)
    timeouts = trades([80.0, 85.0, 90.0], [False] * 3).assign(**{S.OUTCOME: "timeout"})
    with_timeouts = pd.concat([df, timeouts], ignore_index=True)
    seed = QscoreAdapter().fit(with_timeouts)
    assert seed.to_dict() == QscoreAdapter().fit(df).to_dict()
    assert seed.bucket_stats_.loc["us|high", "n"] == 41
    rigorous = QscoreAdapter(rule="rigorous").fit(with_timeouts, p_min=0.5)
    assert rigorous.bucket_stats_.loc["us|high", "n"] == 44
    assert rigorous.curve("us|high", [85.0])[0] < 1.0  # the timeouts pull P(win) down


def test_bucket_that_never_reaches_break_even_has_no_threshold():
    adapter = QscoreAdapter().fit(trades(np.arange(30.0), np.arange(30) % 4 == 0), p_min=0.6)
    assert adapter.thresholds_ == {}
    assert adapter.bucket_stats_.loc["us|high", "note"] == "P(win) never reaches p_min"


def test_get_threshold_clamps_to_floor_and_ceiling():
    adapter = QscoreAdapter.from_dict({"us|high": 40.0, "asia|low": 99.0, "london|normal": 75.0})
    assert adapter.get_threshold(US_HIGH) == 60.0
    assert adapter.get_threshold(ASIA_LOW) == 95.0
    assert adapter.get_threshold({"session": "london", "volatility_regime": "normal"}) == 75.0
    assert adapter.get_threshold(US_HIGH, floor=30.0) == 40.0
    assert adapter.get_threshold(ASIA_LOW, ceiling=98.0) == 98.0
    assert adapter.get_threshold({"session": "us", "volatility_regime": "low"}) is None


@pytest.mark.parametrize(
    ("context", "match"),
    [
        ({"session": "ny", "volatility_regime": "high"}, "unknown session 'ny'"),
        ({"session": "us", "volatility_regime": "wild"}, "unknown volatility_regime 'wild'"),
        ({"session": "us"}, "lacks"),
    ],
)
def test_unknown_context_is_a_schema_error_with_a_fix(context, match):
    adapter = QscoreAdapter.from_dict({"us|high": 70.0})
    with pytest.raises(S.SchemaError, match=match) as info:
        adapter.get_threshold(context)
    assert "Fix" in str(info.value)


def test_fit_rejects_bad_contexts_and_probabilities_instead_of_scores():
    q = np.linspace(0, 100, 25)
    with pytest.raises(S.SchemaError, match="Fix"):
        QscoreAdapter().fit(trades(q, q > 50, session="ny"))
    with pytest.raises(S.SchemaError, match="multiply probabilities by 100"):
        QscoreAdapter().fit(trades(q * 2, q > 50))
    with pytest.raises(S.SchemaError, match="qscore"):
        QscoreAdapter().fit(trades(q, q > 50).drop(columns=S.QSCORE))


def test_to_dict_from_dict_json_round_trip():
    adapter = QscoreAdapter().fit(calibrated_market(200, seed=2))
    blob = json.dumps(adapter.to_dict())  # the seed's qcal:{strategy}:thr value
    restored = QscoreAdapter.from_dict(json.loads(blob))
    assert restored.to_dict() == adapter.to_dict()
    for bucket in BUCKETS:
        session, regime = bucket.split("|")
        ctx = {S.SESSION: session, S.VOLATILITY_REGIME: regime}
        assert restored.get_threshold(ctx) == adapter.get_threshold(ctx)
    with pytest.raises(S.SchemaError, match="Fix"):
        QscoreAdapter.from_dict({"us|hot": 70.0})


# ------------------------------------------------------------------------------------------
# QscoreAdapter, rigorous rule (shrunk toward the global curve)
# ------------------------------------------------------------------------------------------
def test_shrinkage_small_bucket_leans_on_global_curve_large_bucket_on_its_own():
    rng = np.random.default_rng(3)
    frames = [calibrated_market(1000, seed=4)[lambda d: ~d[S.SESSION].isin(["asia", "us"])]]
    frames.append(trades([5, 10, 15, 20, 25], [True] * 5, "asia", "low"))  # own curve: P = 1
    q = np.round(rng.uniform(0, 100, 3000))
    frames.append(trades(q, rng.random(3000) < np.clip(q / 100 + 0.3, 0, 1), "us", "high"))
    adapter = QscoreAdapter(rule="rigorous").fit(pd.concat(frames, ignore_index=True))
    grid = np.linspace(0, 100, 101)
    glob = adapter.curve(None, grid)
    tiny = adapter.curve("asia|low", grid)
    assert adapter.bucket_stats_.loc["asia|low", "weight"] == pytest.approx(5 / 55)
    assert np.max(np.abs(tiny - glob)) == pytest.approx(np.max(5 / 55 * (1 - glob)))
    assert np.max(np.abs(tiny - glob)) < 0.1
    assert "asia|low" in adapter.thresholds_  # fewer than 20 trades, still a threshold
    x, y = adapter.global_curve_
    global_thr = adapter.bucket_stats_.loc["asia|low", "p_min"]
    assert adapter.thresholds_["asia|low"] <= np.interp(global_thr, y, x) + 1e-9
    # the large bucket: within 50 / 3050 of its own isotonic curve, far from the global one
    own = QscoreAdapter(min_records=1).fit(frames[-1]).curve("us|high", grid)
    big = adapter.curve("us|high", grid)
    assert np.max(np.abs(big - own)) <= 50 / 3050 + 1e-12
    assert np.max(np.abs(big - glob)) > 0.15
    # buckets without trades get no threshold; the policy falls through for them
    assert "us|low" not in adapter.thresholds_
    assert adapter.get_threshold({S.SESSION: "us", S.VOLATILITY_REGIME: "low"}) is None


def test_rigorous_p_min_is_the_pooled_ev_in_r_net_of_cost():
    df = calibrated_market(100, seed=5)
    adapter = QscoreAdapter(rule="rigorous", cost_r=0.1).fit(df)
    expected = ev_threshold(df, rule="rigorous", cost_r=0.1).p_min
    assert adapter.bucket_stats_["p_min"].to_numpy() == pytest.approx(expected)
    assert expected == pytest.approx(1.1 / (1.4 + 1.1))


# ------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------
fit_inputs = st.integers(5, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 100), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(fit_inputs, st.sampled_from(["seed", "rigorous"]), st.floats(0.05, 0.95))
def test_more_wins_never_raise_a_threshold(data, rule, p_min):
    q, won, extra = (np.asarray(v) for v in data)
    adapter = QscoreAdapter(rule=rule, min_records=5)
    low = clone(adapter).fit(trades(q, won), p_min=p_min).thresholds_
    high = clone(adapter).fit(trades(q, won | extra), p_min=p_min).thresholds_
    low_thr, high_thr = low.get("us|high", np.inf), high.get("us|high", np.inf)
    assert high_thr <= low_thr + 1e-9


@PROPERTY
@given(
    fit_inputs,
    st.sampled_from(["seed", "rigorous"]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 100.0),
    st.floats(0.0, 100.0),
)
def test_thresholds_stay_in_the_bucket_range_and_clamp(data, rule, p_min, a, b):
    q, won, _ = (np.asarray(v) for v in data)
    adapter = QscoreAdapter(rule=rule, min_records=5).fit(trades(q, won), p_min=p_min)
    for thr in adapter.thresholds_.values():
        assert q.min() <= thr <= q.max()
    floor, ceiling = min(a, b), max(a, b)
    got = adapter.get_threshold(US_HIGH, floor=floor, ceiling=ceiling)
    assert (got is None) == ("us|high" not in adapter.thresholds_)
    assert got is None or floor <= got <= ceiling


# ------------------------------------------------------------------------------------------
# ThresholdPolicy
# ------------------------------------------------------------------------------------------
EV = EVThreshold(p_min=0.75, avg_win=1.0, avg_loss=3.0, n_wins=3, n_losses=1, rule="seed", unit="R")


def test_policy_priority_bucket_then_ev_then_static():
    adapter = QscoreAdapter.from_dict({"us|high": 82.5})
    policy = ThresholdPolicy(adapter, EV)
    assert policy.threshold(US_HIGH) == (82.5, "bucket")
    assert policy.decide(90.0, US_HIGH) == (82.5, "bucket")
    assert policy.threshold(ASIA_LOW) == (75.0, "ev")
    assert ThresholdPolicy(adapter).threshold(ASIA_LOW) == (70.0, "static")
    assert ThresholdPolicy().decide(50.0, ASIA_LOW) == (70.0, "static")
    static = ThresholdPolicy(config=ThresholdConfig(static_threshold=65.0))
    assert static.threshold(US_HIGH) == (65.0, "static")


def test_policy_clamps_ev_unless_told_not_to():
    low_ev = dataclasses.replace(EV, p_min=1 / 3)
    assert ThresholdPolicy(ev=low_ev).threshold(US_HIGH) == (60.0, "ev")
    unclamped = ThresholdPolicy(ev=low_ev, config=ThresholdConfig(clamp_ev=False))
    value, source = unclamped.threshold(US_HIGH)
    assert (value, source) == (pytest.approx(100 / 3), "ev")


def test_policy_raises_for_unknown_context_and_score_out_of_range():
    for policy in (ThresholdPolicy(), ThresholdPolicy(QscoreAdapter.from_dict({}), EV)):
        with pytest.raises(S.SchemaError, match="Fix"):
            policy.threshold({"session": "tokyo", "volatility_regime": "high"})
        with pytest.raises(S.SchemaError, match="Fix"):
            policy.decide(80.0, {"session": "us", "volatility_regime": "calm"})
    with pytest.raises(ValueError, match="0, 100"):
        ThresholdPolicy().decide(0.8 * 1000, US_HIGH)


def test_policy_from_trades_falls_through_when_data_are_missing():
    all_wins = trades(np.linspace(0, 100, 40), [True] * 40)
    policy = ThresholdPolicy.from_trades(all_wins)
    assert policy.ev is None
    assert policy.threshold(US_HIGH) == (70.0, "static")
    policy = ThresholdPolicy.from_trades(calibrated_market(300, seed=6))
    assert policy.threshold(US_HIGH)[1] == "bucket"
    assert policy.ev.p_min == pytest.approx(0.4)


def test_config_is_frozen_keyword_only_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ThresholdConfig().floor = 50.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        ThresholdConfig("rigorous")  # type: ignore[misc]
    for bad in ({"rule": "fancy"}, {"floor": 96.0}, {"shrink_k": 0.0}, {"cost_r": -0.1}):
        with pytest.raises(ValueError):
            ThresholdConfig(**bad)
    assert bucket_key(US_HIGH) == "us|high"
