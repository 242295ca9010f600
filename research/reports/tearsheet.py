"""The period tear sheet: each section composes analyses (compute) and plots (draw).

A section returns a :class:`Section` (notes, tables, figures); ``section.show()`` displays it
in a notebook. ``pipelines/report.ipynb`` calls one section per cell, so the notebook holds no
logic and the same sections can be rendered elsewhere (tests, other reports). The report
opens with :func:`verdict` (one paragraph, above any table; it and :func:`verdict_record`,
what the runner shows first on the run's page and in the index, live in
:mod:`research.reports.verdict`). :class:`Section` is in :mod:`research.reports.section` and
displays its tables formatted (:mod:`research.reports.format`). Every table and figure of R is on
one cost basis and says which — R net of costs or R gross — so executed trades and phantoms
are compared like for like, and each cumulative-R line ends on a total its section prints.
"""

from __future__ import annotations

import logging

import pandas as pd

from research import plots
from research import schema as S
from research.analysis import activity as act
from research.analysis.metrics import probability_metrics, reliability_table
from research.analysis.uplift import replay_summary
from research.reports.format import format_table
from research.reports.period import WIN, PeriodData, gate_frame
from research.reports.section import Section
from research.reports.skill import no_skill_notes
from research.reports.verdict import (  # noqa: F401 - re-exported: the notebook's tearsheet.*
    NO_GROSS,
    _decisions,
    _has_gross,
    _uplift_table,
    headline,
    uplift_display,
    verdict,
    verdict_record,
)
from research.stores.tables import CREATED_AT

logger = logging.getLogger(__name__)


def overview(period: PeriodData) -> Section:
    """Where the data came from, the period, and how much of it there is."""
    t = period.trades
    rows = {
        "first exit": t[S.EXIT_TIME].min(),
        "last exit": t[S.EXIT_TIME].max(),
        "completed trades": len(t),
        "executed": int(t[S.WAS_EXECUTED].sum()),
        "phantoms": int((~t[S.WAS_EXECUTED].astype(bool)).sum()),
        "strategies": ", ".join(period.strategies),
        "symbols": ", ".join(sorted(map(str, t[S.SYMBOL].unique()))),
    }
    rows |= {f"source: {k}": v for k, v in period.sources.items()}
    table = format_table(pd.Series(rows, name="value"))
    table.index.name = "what"
    return Section(title="Overview", tables={"overview": table})


def activity(period: PeriodData, *, freq: str = "W") -> Section:
    """Trades per period, executed vs phantom win rates and R, cumulative R — one cost basis.

    The audit trail records executed trades net of costs and phantoms gross; both are put on
    each basis with the trades' ``cost_r`` (:func:`research.analysis.activity.restate`), so
    the table's ``total_r`` / ``total_r_gross`` are the last points of the net / gross lines.
    """
    t = period.trades
    table = act.executed_vs_phantom(t)
    notes = [
        "Executed and phantom trades on the **same cost basis**: `win_rate`, `mean_r` and "
        "`total_r` are R **net of costs** for every trade (phantoms charged their `cost_r` as "
        "if they had been executed), `mean_r_gross`/`total_r_gross` the same trades before "
        "costs. A filter is doing its job when executed trades win more often than phantoms "
        "by more than the intervals' overlap."
    ]
    missing = act.missing_cost(t)
    if missing:
        notes.append(
            f"{missing:,} of {len(t):,} trades carry no `cost_r` (recorded before it was "
            "stored): their R is known only as recorded (executed net, phantoms gross), so "
            "figures that need them on the other basis are blank (NaN) and their lines are "
            "left out."
        )
    figures = {
        "activity": plots.plot_activity(act.activity_by_period(t, freq)),
        "win_rates": plots.plot_win_rates(table.loc[table[S.STRATEGY] != "all"]),
        "cumulative_r_net": plots.plot_cumulative_r_by_decision(act.cumulative_r(t, basis=act.NET)),
        "cumulative_r_gross": plots.plot_cumulative_r_by_decision(
            act.cumulative_r(t, basis=act.GROSS)
        ),
    }
    return Section(
        title="Activity", notes=notes, tables={"executed_vs_phantom": table}, figures=figures
    )


def replay(period: PeriodData, *, n_boot: int = 1000, seed: int = 0) -> Section:
    """The replay over the period: R per set on both cost bases, the filter's skill and net
    uplift per era and rule with their intervals and null band, and the retrain timeline."""
    if not period.replay:
        return Section(
            title="Replay",
            notes=[
                "No replay frames were given (`replay_dir`), so the no-filter baseline net of costs "
                "and the retrain timeline are not shown."
            ],
        )
    frames = period.replay
    dec = _decisions(period)
    tables, figures = {}, {}
    notes = [
        "`summary`: trades and R per strategy and set (executed, phantoms, all signals): "
        "`mean_r`/`total_r` are R **net of costs** for every set (phantoms as if executed), "
        "`mean_r_gross`/`total_r_gross` before costs — the cumulative-R figures end on these "
        "totals, one figure per basis.",
        "`uplift`: the filter's choice (`passed`: score >= threshold) against taking every "
        "signal, in R per trade. **Skill** (R gross) asks whether it picked better price paths; "
        "**cost selection** is what it gained by picking cheaper trades (net - gross: it pays, "
        "but it is not forecasting); **uplift** is the net sum. Intervals are 95 % circular "
        "block-bootstrap (blocks at least the trades' overlap); the null band is the skill of "
        "the same choices shifted in time against the outcomes. The heuristic era (rule-based "
        "score, before the first model) and the model era are apart, and the seed's 60-95 rule "
        "sits below the rule in force. Under 30 passed trades there is no interval: "
        '"too few".',
    ]
    if dec is not None:
        summary = replay_summary(dec)
        if not _has_gross(dec):
            summary = summary.drop(columns=["mean_r_gross", "total_r_gross"])
            notes.append(NO_GROSS)
        tables["summary"] = summary
        table = _uplift_table(period, n_boot=n_boot, seed=seed)
        tables["uplift"] = uplift_display(table)
    if "retrains" in frames:
        tables["retrains"] = (
            frames["retrains"]
            .groupby(S.STRATEGY)
            .agg(
                retrains=(S.MODEL_VERSION, "size"),
                first=("at", "min"),
                last=("at", "max"),
                rows_at_last=("n_trades", "max"),
            )
        )
    if dec is not None:
        figures["decisions"] = plots.plot_decisions_over_time(dec)
        figures["cumulative_r_net"] = plots.plot_cumulative_r(dec, basis="net")
        if _has_gross(dec):
            figures["cumulative_r_gross"] = plots.plot_cumulative_r(dec, basis="gross")
        figures["threshold_timeline"] = plots.plot_threshold_timeline(dec)
        eras = table.loc[(table["rule"] == "in force") & (table["era"] != "all")]
        shown = eras if len(eras) else table.loc[table["rule"] == "in force"]
        if shown["n_passed"].gt(0).any():
            figures["uplift"] = plots.plot_uplift(shown)
    if "retrains" in frames and len(frames["retrains"]):
        figures["retrains"] = plots.plot_retrain_timeline(
            frames["retrains"], frames.get("threshold_fits")
        )
    return Section(title="Replay", notes=notes, tables=tables, figures=figures)


def _scored(period: PeriodData) -> tuple[pd.DataFrame, str]:
    """Trades whose decision-time score came from a model, when the replay says which."""
    t = period.trades.loc[period.trades[S.ML_SCORE].notna()]
    dec = period.replay.get("decisions")
    if dec is not None and S.SCORE_SOURCE in dec:
        ml = set(dec.loc[dec[S.SCORE_SOURCE] == "ml", S.SIGNAL_ID])
        return t.loc[t[S.SIGNAL_ID].isin(ml).to_numpy()], "model-scored trades (replay)"
    return t, "all scored trades (early ones may carry the rule-based score)"


def calibration(period: PeriodData, *, n_bins: int = 10, min_bucket: int = 30) -> Section:
    """Decision-time scores against outcomes: reliability per strategy, metrics, by bucket.

    Each score was computed before its outcome existed, so this is out-of-sample calibration
    of the filter as it ran (P(win) = score / 100).
    """
    t, which = _scored(period)
    if len(t) < n_bins:
        return Section(title="Calibration", notes=[f"Too few {which} ({len(t)}) to calibrate."])
    p = t[S.ML_SCORE].to_numpy(float) / 100.0
    rel, metrics = [], {}
    for strategy, g in t.groupby(S.STRATEGY, sort=False):
        pg = g[S.ML_SCORE].to_numpy(float) / 100.0
        rel.append(reliability_table(g[WIN], pg, n_bins).reset_index().assign(rule=strategy))
        counts = {"n": len(g), "win_rate": g[WIN].mean()}
        metrics[strategy] = probability_metrics(g[WIN], pg) | counts
    metrics["all"] = probability_metrics(t[WIN], p) | {"n": len(t), "win_rate": t[WIN].mean()}
    table = pd.DataFrame(metrics).T
    table.index.name = S.STRATEGY
    rel = pd.concat(rel, ignore_index=True)
    figures = {"reliability": plots.plot_reliability(rel)}
    notes = [
        f"Computed on {which}. Points on the diagonal: a score of 70 wins 70 % of the time. "
        "Lower Brier / log-loss / ECE is better; AUC says how well scores rank trades."
    ]
    if {S.SESSION, S.VOLATILITY_REGIME} <= set(t.columns):
        buckets = act.calibration_by_bucket(t, p, min_n=min_bucket)
        keys = map(S.bucket_name, buckets[S.SESSION], buckets[S.VOLATILITY_REGIME])
        grid = S.bucket_grid(zip(keys, buckets["gap"], strict=True))
        figures["by_bucket"] = plots.plot_pattern_heatmap(
            grid, center=0.0, title="observed - predicted win rate (blank: too few trades)"
        )
        notes.append(
            "The heatmap shows the calibration gap per session x volatility bucket: "
            "red cells are over-confident, green ones too shy."
        )
    notes += no_skill_notes(table, rel)
    return Section(title="Calibration", notes=notes, tables={"metrics": table}, figures=figures)


def gates(
    period: PeriodData, *, min_n: int = 20, fdr: float = 0.10, n_perm: int = 200, seed: int = 0
) -> Section:
    """The seed's scalp gate ranking beside the FDR-confirmed findings, synergy, advice."""
    from research.analysis.gates import analyze_gates
    from research.signals import GATE_COLUMNS

    frame = gate_frame(period)
    if len(frame) < 4 * min_n:
        return Section(
            title="Gates",
            notes=[
                f"{len(frame)} scalp phantoms with gate flags in the period: too few for the gate "
                f"analysis (needs about {4 * min_n})."
            ],
        )
    res = analyze_gates(frame, GATE_COLUMNS, min_n=min_n, fdr=fdr, n_perm=n_perm, seed=seed)
    cols = ["seed_rank", "delta", "n_pass", "n_fail", "q_value", "confirmed", "rank"]
    ranking = res.singles.sort_values("seed_rank")[cols].head(15)
    notes = [
        "`seed_rank` is the seed's raw ranking by win-rate delta; `confirmed` gates also "
        f"survive a Benjamini-Hochberg FDR of {fdr:.0%} on the earlier 70 % and hold on the "
        "later 30 %. Act on confirmed gates only.",
        res.notes,
    ]
    figures = {"gate_deltas": plots.plot_gate_deltas(res.singles)}
    if (res.combos["size"] == 2).any():
        figures["synergy"] = plots.plot_synergy_heatmap(res.combos)
    return Section(
        title="Gates",
        notes=notes,
        figures=figures,
        tables={"ranking": ranking, "recommendations": _advice(res.recommendations)},
    )


def _advice(recs: pd.DataFrame, top: int = 12) -> pd.DataFrame:
    """The recommendations a reader acts on: confirmed ones first, then the seed's strongest."""
    cols = [
        c
        for c in ("item", "kind", "action", "seed_says", "confirmed", "delta", "q_value", "why")
        if c in recs
    ]
    order = recs.assign(_c=recs["confirmed"].astype(bool)).sort_values(
        ["_c", "delta"], ascending=[False, False], key=lambda s: s.abs() if s.name == "delta" else s
    )
    return order[cols].head(top).reset_index(drop=True)


def importance(
    period: PeriodData,
    *,
    strategy: str = "scalp",
    permutation: bool = True,
    n_splits: int = 4,
    n_repeats: int = 3,
    seed: int = 0,
    scheduler: str | None = None,
) -> Section:
    """Impurity importance after 30/100/300/all trades and out-of-sample permutation
    importance against a noise probe, on ``strategy``'s trades of the period. ``scheduler``:
    where the permutation folds run (``None`` = ``$PHANTOMLAB_DASK_SCHEDULER`` or in process;
    ``"local"``; ``"tcp://host:8786"``), the same numbers wherever they run."""
    from research.analysis.importance import (
        impurity_evolution,
        permutation_importance_oos,
        rank_stability,
    )
    from research.dataset import ClosedTrades
    from research.features import feature_names

    t = period.trades.loc[period.trades[S.STRATEGY] == strategy]
    entry = set(feature_names(available="signal"))
    cols = [c for c in period.feature_columns if c in entry]
    if len(t) < 100 or not cols:
        return Section(
            title="Importance",
            notes=[
                f"{len(t)} {strategy} trades with {len(cols)} entry features: too few to rank "
                "features (needs 100)."
            ],
        )
    data = ClosedTrades(
        features=t[cols].reset_index(drop=True),
        y=t[WIN].to_numpy(),
        signal_times=t[S.SIGNAL_TIME],
        exit_times=t[S.EXIT_TIME],
        strategy=strategy,
    )
    evo = impurity_evolution(data, random_state=seed)
    tables = {"rank_stability": rank_stability(evo)}
    figures = {"evolution": plots.plot_importance_evolution(evo)}
    notes = [
        "Lines that cross between 30, 100, 300 and all trades mean the seed's early "
        "importance ranking is not yet stable."
    ]
    if permutation:
        perm = permutation_importance_oos(
            data,
            n_splits=n_splits,
            n_repeats=n_repeats,
            random_state=seed,
            scheduler=scheduler,
        )
        figures["permutation"] = plots.plot_permutation_importance(perm)
        tables["beats_probe"] = perm.loc[
            perm["beats_probe"].astype(bool), ["mean", "diff_vs_probe", "q_value"]
        ]
        notes.append(
            "Permutation importance is the drop in out-of-sample AUC when a feature is "
            "shuffled; only features clearly right of the noise probe carry signal."
        )
    return Section(title=f"Importance ({strategy})", notes=notes, tables=tables, figures=figures)


def _refit(period: PeriodData, strategy: str, notes: list[str]) -> dict[str, object]:
    """Seed and rigorous (shrunk) qscore adapters refitted on ``strategy``'s model-scored
    trades of the period: their P(win) curves and their thresholds side by side."""
    from research.errors import InsufficientDataError
    from research.thresholds import QscoreAdapter

    t, _ = _scored(period)
    t = t.loc[t[S.STRATEGY] == strategy].assign(**{S.QSCORE: lambda d: d[S.ML_SCORE]})
    if len(t) < 100 or not {S.SESSION, S.VOLATILITY_REGIME} <= set(t.columns):
        notes.append(f"{strategy}: {len(t)} model-scored trades, too few to refit the curves.")
        return {}
    try:
        seed = QscoreAdapter(rule="seed").fit(t)
        rigorous = QscoreAdapter(rule="rigorous").fit(t)
    except InsufficientDataError as exc:
        notes.append(f"{strategy}: curves not refitted ({exc}).")
        return {}
    notes.append(
        f"{strategy}: P(win) against the decision-time score per bucket, refitted on "
        f"the period's {len(t)} model-scored trades, and each bucket's threshold under "
        "the seed's rule beside the rigorous rule, which shrinks small buckets towards "
        "the pooled curve (a bucket of 15 trades should not move a threshold by 20 "
        "points)."
    )
    return {
        f"{strategy}_curves": plots.plot_qscore_curves(seed),
        f"{strategy}_rules": plots.plot_threshold_rules(seed.bucket_stats_, rigorous.bucket_stats_),
    }


def thresholds(period: PeriodData, *, strategy: str = "scalp") -> Section:
    """The learnt ``qcal:*`` thresholds per session x volatility bucket, as stored, and for
    ``strategy`` the curves behind them, seed vs shrunk rule, refitted on the period."""
    grids, notes = {}, []
    # `stored`, not `strategy`: the loop must not overwrite the strategy refitted below
    for stored, (table, n) in period.thresholds.items():
        if not table:
            notes.append(f"{stored}: no learnt bucket thresholds in the state store.")
            continue
        grids[stored] = S.bucket_grid(table)
        notes.append(
            f"{stored}: fitted on {n} trades; {len(table)} of 16 buckets have their "
            "own threshold (blank ones fall back to the EV threshold, then 70)."
        )
    figures = {
        s: plots.plot_pattern_heatmap(g, title=f"{s}: qscore threshold per bucket")
        for s, g in grids.items()
    }
    if strategy in period.strategies:
        figures |= _refit(period, strategy, notes)
    tables = {}
    if period.replay.get("threshold_fits") is not None:
        fits = period.replay["threshold_fits"]
        tables["fits"] = fits.groupby(S.STRATEGY).agg(
            refits=("threshold_version", "size"), last=("at", "max"), buckets=("buckets", "last")
        )
    notes.append(
        "A threshold is in score points (0-100): signals scoring at least this are "
        "executed, the rest tracked as phantoms."
    )
    return Section(title="Thresholds", notes=notes, tables=tables, figures=figures)


def models(period: PeriodData) -> Section:
    """Published model versions (the audit trail's ``model_versions``), champions flagged."""
    mv = period.model_versions
    if mv.empty:
        return Section(title="Models", notes=["No model version has been published yet."])
    cols = [
        c
        for c in (S.STRATEGY, "version", "is_champion", CREATED_AT, "n_rows", "train_end")
        if c in mv
    ]
    return Section(title="Models", tables={"versions": mv[cols]})
