"""MLScorer: the seed's retrain rule, idempotence, fallbacks and state round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from research import schema as S
from research.features import build_features
from research.phantom import simulate
from research.scoring import EnsembleScorer, MLScorer, ScorerConfig, heuristic_scores
from research.signals import generate_signals

SMALL = ScorerConfig(model=EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False))


@pytest.fixture(scope="module")
def trades(btc_1h):
    sig = generate_signals(btc_1h, "scalp")
    out = simulate(btc_1h, sig)
    keep = (~out[S.CENSORED]).to_numpy()
    sig, out = sig[keep].reset_index(drop=True), out[keep].reset_index(drop=True)
    feats = build_features(btc_1h, sig)
    return sig, out, feats


def feed(scorer, trades, n, start=0):
    sig, out, feats = trades
    done = 0
    i = start
    while done < n:
        row = out.iloc[i]
        if row[S.OUTCOME] != "timeout":
            scorer.record_outcome(
                sig.iloc[i].to_dict(),
                row[S.OUTCOME],
                row[S.PNL_PERCENT],
                features=feats.iloc[i].to_dict(),
                exit_time=row[S.EXIT_TIME],
            )
            done += 1
        i += 1
    return i


def test_retrain_rule_is_exactly_the_seeds(trades):
    scorer = MLScorer("scalp", config=SMALL)
    i = feed(scorer, trades, 49)
    assert not scorer.is_ready and scorer.model_version == 0  # 49: no model
    i = feed(scorer, trades, 1, i)
    assert scorer.is_ready and scorer.model_version == 1  # first training at the 50th
    assert scorer.last_train_count == 50
    i = feed(scorer, trades, 49, i)
    assert scorer.model_version == 1
    feed(scorer, trades, 1, i)
    assert scorer.model_version == 2 and scorer.last_train_count == 100  # second at 100th


def test_recording_the_same_signal_twice_changes_nothing(trades):
    sig, out, feats = trades
    scorer = MLScorer("scalp", config=SMALL)
    row = sig.iloc[0].to_dict()
    assert scorer.record_outcome(row, "win", 1.2, features=feats.iloc[0].to_dict())
    before = json.dumps(scorer.to_state(), sort_keys=True)
    assert not scorer.record_outcome(row, "loss", -1.0, features=feats.iloc[0].to_dict())
    assert json.dumps(scorer.to_state(), sort_keys=True) == before
    assert scorer.completed_trades == 1


def test_timeouts_are_skipped_as_in_the_seed_unless_configured(trades):
    sig, _, _ = trades
    seed = MLScorer("scalp", config=SMALL)
    assert not seed.record_outcome(sig.iloc[0].to_dict(), "timeout", 0.1)
    assert seed.completed_trades == 0
    rigorous = MLScorer("scalp", config=ScorerConfig(learn_from_timeouts=True))
    assert rigorous.record_outcome(sig.iloc[0].to_dict(), "timeout", 0.1)
    assert rigorous.completed_trades == 1
    with pytest.raises(ValueError, match="outcome must be one of"):
        seed.record_outcome(sig.iloc[1].to_dict(), "breakeven", 0.0)


def test_ev_buckets_are_keyed_session_volatility(trades):
    sig, _, feats = trades
    scorer = MLScorer("scalp", config=SMALL)
    f = feats.iloc[0].to_dict()
    scorer.record_outcome(sig.iloc[0].to_dict(), "win", 2.0, features=f)
    scorer.record_outcome(sig.iloc[1].to_dict(), "loss", -1.0, features=f)
    bucket = scorer.ev_buckets[f"{f['session']}|{f['volatility_regime']}"]
    assert bucket == {"wins": 1, "losses": 1, "win_pnl": 2.0, "loss_pnl": -1.0}


class Exploding:
    def fit(self, *a, **k):
        raise RuntimeError("training blew up")

    def score_signals(self, X):
        raise RuntimeError("scoring blew up")


def test_score_is_always_in_range_and_falls_back(trades):
    sig, out, feats = trades
    scorer = MLScorer("scalp", config=SMALL)
    feed(scorer, trades, 50)
    assert scorer.is_ready
    full = feats.iloc[200].to_dict()
    cases = [
        full,
        {},
        {k: np.nan for k in full},
        {**full, "session": "mars"},
        {**full, "volatility_regime": None},
        {"atr_pct": "not a number"},
    ]
    for case in cases:
        s = scorer.score_signal(case)
        assert isinstance(s, float) and 0.0 <= s <= 100.0
    scorer.model = Exploding()  # a model that raises: the heuristic answers
    assert scorer.score_signal(full) == pytest.approx(heuristic_scores(full)[0])


def test_failed_retrain_keeps_the_previous_model(trades):
    scorer = MLScorer("scalp", config=SMALL)
    i = feed(scorer, trades, 50)
    model = scorer.model
    scorer.model_factory = Exploding
    i = feed(scorer, trades, 50, i)  # the 100th record triggers a retrain that fails
    assert scorer.model is model and scorer.model_version == 1
    assert scorer.last_train_count == 50
    i = feed(scorer, trades, 5, i)  # no retry storm: waits `retry_after` records
    assert scorer._failed_at == 100


def test_state_round_trips_and_restored_scorer_scores_identically(trades):
    sig, out, feats = trades
    scorer = MLScorer("scalp", config=SMALL)
    feed(scorer, trades, 60)
    state = json.loads(json.dumps(scorer.to_state()))
    restored = MLScorer.from_state(state, model=scorer.model, config=SMALL)
    for i in (300, 301, 302):
        f = feats.iloc[i].to_dict()
        assert restored.score_signal(f) == scorer.score_signal(f)
    assert restored.completed_trades == 60 and restored.last_train_count == 50
    assert not restored.record_outcome(sig.iloc[0].to_dict(), "win", 1.0)  # already recorded
    # training on the restored state gives the same model as training on the original
    a, b = scorer.retrain(), restored.retrain()
    assert a and b
    f = feats.iloc[400].to_dict()
    assert restored.score_signal(f) == pytest.approx(scorer.score_signal(f))
    assert pd.Timestamp(state["trades"][0][S.EXIT_TIME]).tz is not None


def test_live_scoring_goes_through_the_onnx_fast_path_and_agrees(trades):
    sig, out, feats = trades
    scorer = MLScorer("scalp", config=SMALL)
    feed(scorer, trades, 50)
    assert scorer.fast is not None
    rows = feats.iloc[100:140]
    full, _ = scorer.score_frame(rows)  # the scikit-learn path
    fast = [scorer.score_signal(r) for r in rows.to_dict("records")]
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-9)
    slow = MLScorer("scalp", config=dataclasses.replace(SMALL, fast_path=False))
    feed(slow, trades, 50)
    assert slow.fast is None and slow.is_ready
