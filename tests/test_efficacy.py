"""Known answers: the null market is null, the verdict's interval keeps its error rate, a
planted edge is found by its oracle and by the product, costs are charged once and exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research import schema as S
from research.analysis.uplift import filter_uplift, overlap_block, uplift_table
from research.analysis.verdict import classify, verdict_text
from research.costs import CostModel, apply_costs, futures, is_fx, profile_for, signal_costs
from research.known_answer import known_answer_market, oracle_scores
from research.pipeline import run_signals_and_phantoms
from research.replay import ReplayConfig, replay
from research.scoring import EnsembleScorer, ScorerConfig


def _study(kind: str, seed: int, n_bars: int):
    candles = known_answer_market(kind, seed=seed, n_bars=n_bars)
    return candles, run_signals_and_phantoms(candles, progress=False)


def _decisions(study, passed: np.ndarray, score=None) -> pd.DataFrame:
    """A decisions frame as the replay writes it, for a filter given as a boolean array."""
    out, sig = study.outcomes, study.signals
    cost = signal_costs(sig)
    return pd.DataFrame(
        {
            S.SIGNAL_ID: sig[S.SIGNAL_ID],
            S.STRATEGY: sig[S.STRATEGY],
            S.SYMBOL: sig[S.SYMBOL],
            S.SIGNAL_TIME: sig[S.SIGNAL_TIME],
            S.EXIT_TIME: out[S.EXIT_TIME],
            S.CENSORED: out[S.CENSORED],
            S.OUTCOME: out[S.OUTCOME],
            "rr_gross": out[S.REALIZED_RR],
            S.RR_IF_EXECUTED: out[S.REALIZED_RR] - cost["cost_r"],
            "cost_r": cost["cost_r"],
            S.PASSED: passed,
            S.WAS_EXECUTED: passed,
            S.ML_SCORE: np.zeros(len(sig)) if score is None else score,
            S.SCORE_SOURCE: "ml",
            S.P_EXECUTE: np.where(passed, 1.0, 0.0),
        }
    )


def test_the_null_market_has_zero_expected_gross_r():
    rs = []
    for seed in range(3):
        _, study = _study("null", seed, 8_000)
        done = ~study.outcomes[S.CENSORED]
        rs.append(study.outcomes.loc[done, S.REALIZED_RR].to_numpy())
    r = np.concatenate(rs)
    se = r.std(ddof=1) / np.sqrt(len(r))
    assert len(r) > 5_000
    assert abs(r.mean()) < 2 * se, f"mean gross R {r.mean():+.4f}, SE {se:.4f}"


@pytest.mark.slow
def test_the_skill_interval_covers_zero_on_null_markets_at_its_stated_rate():
    """20 null seeds, an uninformative but realistic filter (the rule-based score, whose passes
    cluster in time like a model's): the 95 % interval must cover 0 in >= 90 % of them."""
    from research.scoring.heuristic import heuristic_scores

    covered = 0
    for seed in range(20):
        _, study = _study("null", 100 + seed, 6_000)
        score = heuristic_scores(study.features.reset_index(drop=True), strategy=None)
        passed = score >= np.median(score)
        up = filter_uplift(_decisions(study, passed, score), n_boot=400, seed=seed)
        row = up.loc["all"]
        covered += row["skill_low"] <= 0 <= row["skill_high"]
    assert covered >= 18, f"interval covered 0 in {covered} of 20 null seeds"


def test_the_oracle_finds_the_planted_edge_and_nothing_on_the_null_market():
    for kind in ("planted", "null"):
        candles, study = _study(kind, 5, 10_000)
        oracle = oracle_scores(candles, study.signals).to_numpy()
        dec = _decisions(study, oracle > 0, score=oracle)
        row = filter_uplift(dec, n_boot=400).loc["all"]
        if kind == "planted":
            assert row["skill_low"] > 0.05 and row["auc"] > 0.55
            assert classify(row) == "skill"
        else:
            assert (oracle == 0).all() and row["n_passed"] == 0


def test_uplift_splits_exactly_into_skill_and_cost_selection():
    _, study = _study("planted", 1, 6_000)
    rng = np.random.default_rng(0)
    passed = rng.random(len(study.signals)) < 0.4
    dec = _decisions(study, passed)
    up = filter_uplift(dec, n_boot=100)
    closed = dec[~dec[S.CENSORED]]
    p = closed[S.PASSED].to_numpy()
    net, gross = closed[S.RR_IF_EXECUTED].to_numpy(), closed["rr_gross"].to_numpy()
    assert up.loc["all", "skill"] == pytest.approx(gross[p].mean() - gross.mean())
    assert up.loc["all", "uplift"] == pytest.approx(net[p].mean() - net.mean())
    cost = closed["cost_r"].to_numpy()
    assert up.loc["all", "cost_selection"] == pytest.approx(cost.mean() - cost[p].mean())
    # the overlap block: at least the mean number of signals opened during a trade
    t = closed.sort_values(S.SIGNAL_TIME)
    block = overlap_block(t[S.SIGNAL_TIME], t[S.EXIT_TIME])
    assert up.loc["all", "block"] == block > len(t) ** (1 / 3)


def test_too_few_passed_trades_get_no_interval_and_the_verdict_says_so():
    _, study = _study("planted", 2, 4_000)
    passed = np.zeros(len(study.signals), dtype=bool)
    passed[:12] = True
    table = uplift_table(_decisions(study, passed), n_boot=100)
    row = table[(table["era"] == "all") & (table[S.STRATEGY] == "all")].iloc[0]
    assert np.isnan(row["skill_low"]) and np.isnan(row["ci_low"]) and "too few" in row["note"]
    text = verdict_text(table, costs="crypto perpetual costs")
    assert "too few trades to judge" in text and "no interval" in text


def test_costs_per_venue_in_r_and_charged_exactly_once():
    assert is_fx("EURUSD_1h") and is_fx("GBP/USD") and not is_fx("BTC_USDT_5m")
    assert profile_for("USDJPY").spread == pytest.approx(0.01)
    assert profile_for("ETH_USDT_1h").name == "crypto_perp"
    sig = pd.DataFrame(
        {
            S.SYMBOL: ["BTC_USDT", "EURUSD", "ES"],
            S.ENTRY: [100.0, 1.1, 5000.0],
            S.SL: [99.0, 1.099, 4990.0],
        }
    )
    model = CostModel(symbols={"ES": futures(0.25)})
    c = signal_costs(sig, model)
    # 0.10 % + 2 x 0.01 % of 100 = 0.12 against a stop of 1; 1 pip against 10 pips; 2.4 ticks
    np.testing.assert_allclose(c["cost_r"], [0.12, 0.1, 2 * 1.2 * 0.25 / 10])
    with pytest.raises(ValueError, match="unknown cost profile"):
        CostModel(default="crypto_perps")
    out = pd.DataFrame(
        {
            S.REALIZED_RR: [2.0, 0.0, -1.0, 0.05],
            S.PNL_PERCENT: [2.0, 0.0, -1.0, 0.05],
            S.OUTCOME: pd.Categorical(["win", "loss", "loss", "win"], categories=S.OUTCOMES),
        }
    )
    net = apply_costs(out, pd.DataFrame({"cost_r": [0.1] * 4, "cost_pct": [0.1] * 4}))
    np.testing.assert_allclose(net[S.REALIZED_RR], [1.9, -0.1, -1.1, -0.05])
    assert net[S.OUTCOME].tolist() == ["win", "loss", "loss", "loss"]  # a win smaller than costs


def test_the_replay_learns_the_planted_edge_and_the_model_chooses():
    """Light settings, 1/3 of the demo's market: the model era's skill is positive; the
    models (not the heuristic) choose most executed trades; costs are charged once."""
    candles, study = _study("planted", 0, 8_000)
    cfg = ReplayConfig(
        scorer=ScorerConfig(
            retrain_every=150,
            model=EnsembleScorer(n_estimators=60, gb_max_iter=60, nn_enabled=False),
            learn_from_timeouts=True,
        ),
        retrain_every={"range": 50},
        n_boot=300,
    )
    res = replay(candles, config=cfg, study=study, progress=False)
    dec = res.decisions
    ex = dec[S.WAS_EXECUTED]
    assert (dec.loc[ex, S.SCORE_SOURCE] == "ml").mean() > 0.5
    model = res.uplift  # the rule in force, all eras
    assert model.loc["all", "skill"] > 0
    closed = ~dec[S.CENSORED]
    np.testing.assert_allclose(
        dec.loc[closed, S.RR_IF_EXECUTED], dec.loc[closed, "rr_gross"] - dec.loc[closed, "cost_r"]
    )
    # thresholds of the rule in force come from the model's own out-of-fold scores
    assert (res.threshold_fits["scores"] == "oof").any()
    assert set(res.retrains["strategy"]) == {"trend", "range", "scalp"}  # range learns too


def test_shuffled_outcomes_move_between_signals_of_a_strategy_and_keep_exit_times():
    from research.efficacy import shuffle_outcomes

    _, study = _study("planted", 4, 3_000)
    shuffled = shuffle_outcomes(study, seed=1)
    before, after = study.outcomes, shuffled.outcomes
    assert after[S.EXIT_TIME].equals(before[S.EXIT_TIME])
    assert after[S.CENSORED].equals(before[S.CENSORED])
    assert (after[S.REALIZED_RR] != before[S.REALIZED_RR]).mean() > 0.4
    by = study.signals[S.STRATEGY]
    pd.testing.assert_series_equal(
        after.groupby(by)[S.REALIZED_RR].sum(), before.groupby(by)[S.REALIZED_RR].sum()
    )
    won = (after[S.OUTCOME] == "win") == (after[S.EXIT_REASON] == "tp")
    assert won.all(), "label and R travel together"


def test_efficacy_reports_the_product_against_its_oracle():
    from research.efficacy import efficacy

    light = ReplayConfig(
        scorer=ScorerConfig(
            retrain_every=100,
            model=EnsembleScorer(n_estimators=20, gb_max_iter=20, nn_enabled=False),
            learn_from_timeouts=True,
        ),
        n_boot=100,
    )
    table = efficacy(("planted", "null"), seed=0, n_bars=3_000, config=light, strategies=("scalp",))
    assert set(table["kind"]) == {"planted", "null"}
    planted = table[(table["kind"] == "planted") & (table[S.STRATEGY] == "all")].iloc[0]
    null = table[(table["kind"] == "null") & (table[S.STRATEGY] == "all")].iloc[0]
    assert planted["oracle_auc"] > 0.55 and planted["oracle_skill"] > 0.05
    assert np.isnan(null["oracle_auc"]) or abs(null["oracle_auc"] - 0.5) < 1e-9
    for col in ("product_auc", "auc_share", "skill", "skill_low", "skill_high", "uplift_net"):
        assert col in table
