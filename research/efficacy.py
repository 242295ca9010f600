"""Efficacy on known answers: how much of a planted edge the product recovers, and what it
"finds" where there is nothing.

:func:`efficacy` replays the product (signals -> features -> phantoms -> online scorer ->
thresholds -> decisions) on :mod:`research.known_answer` markets and compares it with an
oracle that knows the planted rule:

* ``planted``: the edge is real. Reported per strategy: the oracle's AUC and the product's
  decision-time (out-of-sample) AUC for "the trade's gross R is > 0", the **share of the
  oracle's AUC lift** ``(AUC - 0.5) / (AUC_oracle - 0.5)``, the oracle's gross uplift (it takes
  a signal when its expected gross R, known from the rule, beats the signal's cost) and the
  product's **skill** (gross uplift) with its interval, and the share of the oracle's uplift.
* ``null``: the same market without the edge: skill must be ~0, its interval covering 0.
* ``shuffled``: the planted market with its outcomes permuted among the signals of each
  strategy (:func:`shuffle_outcomes`): models and thresholds learn from labels unrelated to
  the features, and the verdict is judged on them: skill ~0.

Figures are gross R per trade over the model era (signals scored by a trained model), closed
signals only; the net uplift (after the venue's costs) is beside them. ``benchmarks/
bench_efficacy.py`` prints this over many seeds; notebooks call :func:`efficacy` directly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from research import schema as S
from research.analysis.uplift import filter_uplift
from research.distributed import map_tasks
from research.known_answer import known_answer_market, oracle_scores
from research.pipeline import run_signals_and_phantoms
from research.replay import ReplayConfig, replay

logger = logging.getLogger(__name__)

KINDS = ("planted", "null", "shuffled")
CALIBRATION_SEED_OFFSET = 1_000  # the oracle's map is learnt on an independent market


#: outcome columns a shuffle moves between signals (exit times stay: point in time holds)
SHUFFLED_COLUMNS = (S.OUTCOME, S.EXIT_REASON, S.PNL_PERCENT, S.REALIZED_RR, S.EXIT_PRICE)


def shuffle_outcomes(study, seed: int = 0):
    """A copy of ``study`` whose closed outcomes are permuted among the signals of each strategy.

    Labels and R move together, exit times stay with their signal (so no outcome becomes known
    before its signal), censored rows stay put. Everything the product learns from — the
    models *and* the thresholds — then sees outcomes unrelated to the features: any skill it
    reports is an artefact of the pipeline.
    """
    out = study.outcomes.copy()
    rng = np.random.default_rng(seed)
    closed = ~out[S.CENSORED].to_numpy(bool)
    for strategy in pd.unique(study.signals[S.STRATEGY]):
        rows = np.flatnonzero(closed & (study.signals[S.STRATEGY] == strategy).to_numpy())
        perm = rng.permutation(rows)
        for col in SHUFFLED_COLUMNS:
            if isinstance(out[col].dtype, pd.CategoricalDtype):
                codes = out[col].cat.codes.to_numpy(copy=True)
                codes[rows] = codes[perm]
                out[col] = pd.Categorical.from_codes(codes, out[col].cat.categories)
            else:
                values = out[col].to_numpy(copy=True)
                values[rows] = values[perm]
                out[col] = values
    return dataclasses.replace(study, outcomes=out)


def oracle_map(kind_seed: int, *, n_bars: int, strategies: Sequence[str]) -> dict:
    """Per strategy, the oracle's expected gross R as a function of its score, learnt on an
    independent planted market (seed ``kind_seed + 1000``): an isotonic fit of R on score."""
    candles = known_answer_market(
        "planted", seed=kind_seed + CALIBRATION_SEED_OFFSET, n_bars=n_bars
    )
    study = run_signals_and_phantoms(candles, strategies, progress=False)
    score = oracle_scores(candles, study.signals).to_numpy()
    ok = ~study.outcomes[S.CENSORED].to_numpy(bool)
    maps = {}
    for strategy in strategies:
        m = ok & (study.signals[S.STRATEGY] == strategy).to_numpy()
        iso = IsotonicRegression(out_of_bounds="clip")
        maps[strategy] = iso.fit(score[m], study.outcomes[S.REALIZED_RR].to_numpy()[m])
    return maps


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    ok = np.isfinite(score)
    if ok.sum() < 10 or label[ok].all() or not label[ok].any():
        return np.nan
    return float(roc_auc_score(label[ok], score[ok]))


def efficacy_table(
    decisions: pd.DataFrame, oracle: pd.Series, maps: dict, *, n_boot: int = 500
) -> pd.DataFrame:
    """Per strategy and ``'all'``: oracle vs product, model era, gross R (see module doc)."""
    d = decisions.loc[
        (~decisions[S.CENSORED].to_numpy(bool)) & (decisions[S.SCORE_SOURCE] == "ml").to_numpy()
    ].copy()
    d["oracle"] = oracle.reindex(d[S.SIGNAL_ID]).to_numpy()
    expected = np.full(len(d), np.nan)
    for strategy, iso in maps.items():
        m = (d[S.STRATEGY] == strategy).to_numpy()
        if m.any():
            expected[m] = iso.predict(d.loc[m, "oracle"].to_numpy())
    d["oracle_pass"] = expected - d[S.COST_R].to_numpy() > 0
    product = filter_uplift(d, n_boot=n_boot)
    oracle_up = filter_uplift(d, passed="oracle_pass", n_boot=50)
    rows = {}
    for key in product.index:
        g = d if key == "all" else d.loc[(d[S.STRATEGY] == key).to_numpy()]
        label = (g[S.RR_GROSS] > 0).to_numpy()
        auc_o, auc_p = _auc(label, g["oracle"].to_numpy()), _auc(label, g[S.ML_SCORE].to_numpy())
        p, o = product.loc[key], oracle_up.loc[key]
        rows[key] = {
            "signals": len(g),
            "oracle_auc": auc_o,
            "product_auc": auc_p,
            # no oracle lift to share on a null or shuffled market (nor a pooled artefact)
            "auc_share": (auc_p - 0.5) / (auc_o - 0.5) if auc_o > 0.53 else np.nan,
            "oracle_skill": o["skill"],
            "skill": p["skill"],
            "skill_low": p["skill_low"],
            "skill_high": p["skill_high"],
            "skill_share": p["skill"] / o["skill"] if o["skill"] > 0.05 else np.nan,
            "uplift_net": p["uplift"],
            "uplift_low": p["ci_low"],
            "uplift_high": p["ci_high"],
            "n_passed": p["n_passed"],
            "covers_0": bool(p["skill_low"] <= 0 <= p["skill_high"]),
            "excludes_0_above": bool(p["skill_low"] > 0),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(S.STRATEGY)


def efficacy_kind(
    kind: str,
    *,
    seed: int,
    n_bars: int,
    config: ReplayConfig,
    strategies: Sequence[str],
    maps: dict,
) -> pd.DataFrame:
    """One market of :func:`efficacy` (one task): its candles and study, the replay, the table.

    Everything it needs travels with it (a few settings and the oracle's small isotonic
    maps); the candles are regenerated from ``seed`` where it runs.
    """
    candles = known_answer_market("null" if kind == "null" else "planted", seed=seed, n_bars=n_bars)
    study = run_signals_and_phantoms(candles, strategies, progress=False)
    if kind == "shuffled":
        study = shuffle_outcomes(study, seed)
    result = replay(candles, strategies, config, study=study, progress=False)
    oracle = oracle_scores(candles, study.signals)
    table = efficacy_table(result.decisions, oracle, maps, n_boot=config.n_boot)
    return table.reset_index().assign(kind=kind, seed=seed)


def efficacy(
    kinds: Sequence[str] = KINDS,
    *,
    seed: int = 0,
    n_bars: int = 20_000,
    config: ReplayConfig | None = None,
    strategies: Sequence[str] = S.STRATEGIES,
    progress: bool = False,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Replay the product on each known-answer market ``kinds`` of one ``seed``.

    The markets are independent: one task each (:func:`efficacy_kind`) through
    :func:`research.distributed.map_tasks` — in this process by default, on a local Dask
    cluster (``scheduler='local'``) or a running one (an address, or
    ``$PHANTOMLAB_DASK_SCHEDULER``), with the same numbers wherever they run.

    Returns a long frame: ``kind``, ``seed``, ``strategy`` and the columns of
    :func:`efficacy_table`, markets in the order of ``kinds``.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown efficacy markets {unknown}. Fix: use some of {KINDS}.")
    config = config or ReplayConfig()
    strategies = tuple(strategies)
    maps = oracle_map(seed, n_bars=n_bars, strategies=strategies)
    frames = map_tasks(
        efficacy_kind,
        list(kinds),
        scheduler=scheduler,
        progress=progress,
        desc=f"efficacy seed {seed}",
        shared={
            "seed": seed,
            "n_bars": n_bars,
            "config": config,
            "strategies": strategies,
            "maps": maps,
        },
    )
    for kind, frame in zip(kinds, frames, strict=True):
        skill = frame.loc[frame[S.STRATEGY] == "all", "skill"]
        logger.info("efficacy %s seed %d: skill %.3f", kind, seed, skill.iloc[0])
    out = pd.concat(frames, ignore_index=True)
    return out[
        ["kind", "seed", S.STRATEGY]
        + [c for c in out.columns if c not in ("kind", "seed", S.STRATEGY)]
    ]
