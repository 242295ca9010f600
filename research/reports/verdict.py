"""The report's verdict: the paragraph that opens it, its null control, and the same verdict as
plain values for the runner (:func:`verdict_record`: the top of the run's page, the index row).

Split from :mod:`research.reports.tearsheet`, which re-exports :func:`verdict`,
:func:`uplift_display` and :func:`headline`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from research import plots
from research import schema as S
from research.analysis import activity as act
from research.analysis.uplift import uplift_table
from research.analysis.verdict import LABELS, _headline, classify, verdict_text
from research.reports.period import META, PeriodData
from research.reports.section import Section

logger = logging.getLogger(__name__)

#: the era of the verdict's headline row in words
ERA_WORDS = {
    "model": "model era (signals scored by a trained model)",
    "all": "all signals (heuristic and model eras)",
    "heuristic": "heuristic era (rule-based score)",
}


def _decisions(period: PeriodData) -> pd.DataFrame | None:
    """The period's replay decisions with at least one closed signal, else None."""
    dec = period.replay.get("decisions") if period.replay else None
    if dec is None or not (~dec[S.CENSORED].to_numpy(bool)).any():
        return None
    return dec


#: Words for replay frames saved before ``rr_gross``/``cost_r`` travelled with the decisions.
NO_GROSS = (
    "These replay frames carry neither `rr_gross` nor `cost_r` (saved by an older "
    "version): R gross is unknown, so gross figures are left out and skill cannot be "
    "told apart from cost selection. Fix: rerun the replay (`phantomlab demo`)."
)


def _has_gross(dec: pd.DataFrame) -> bool:
    return S.RR_GROSS in dec or act.COST_R in dec


def _uplift_table(period: PeriodData, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`uplift_table` of the period's decisions, computed once per period."""
    key = f"_uplift_table:{n_boot}:{seed}"
    if key not in period.replay:
        period.replay[key] = uplift_table(_decisions(period), n_boot=n_boot, seed=seed)
    return period.replay[key]


def _costs_words(period: PeriodData, dec: pd.DataFrame) -> str:
    """The cost basis in words (the replay's own when saved) with the median cost in R."""
    meta = period.replay.get(META)
    words = "the replay's costs"
    if meta is not None and "costs" in set(meta["key"]):
        words = str(meta.set_index("key").at["costs", "value"])
    if act.COST_R in dec and np.isfinite(dec[act.COST_R].to_numpy(np.float64)).any():
        words += f", a median {np.nanmedian(dec[act.COST_R].to_numpy(np.float64)):.2f} R per trade"
    return words


def _market_words(dec: pd.DataFrame) -> str:
    times = pd.to_datetime(dec[S.SIGNAL_TIME], utc=True)
    symbols = ", ".join(sorted(map(str, pd.unique(dec[S.SYMBOL])))) if S.SYMBOL in dec else "?"
    return f"{symbols}, {len(dec):,} signals from {times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}"


def _interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "too few"
    return f"[{low:+.3f}, {high:+.3f}]"


def uplift_display(table: pd.DataFrame) -> pd.DataFrame:
    """An :func:`uplift_table` as the report prints it: R per trade, intervals in words.

    One row per era x strategy x rule, the seed's rule right below the rule in force; skill
    (R gross) with its 95 % interval beside the rotation null's band, cost selection and the
    net uplift (R net of costs) apart; "too few" instead of an interval under 30 passed trades.
    """
    era_order = {e: i for i, e in enumerate(("all", "heuristic", "model"))}
    order = table.assign(
        _e=table["era"].map(era_order),
        _s=table[S.STRATEGY].eq("all"),
        _r=table["rule"].ne("in force"),
    )
    order = order.sort_values(["_e", "_s", S.STRATEGY, "_r"], kind="stable")
    order = order.reset_index(drop=True)
    return pd.DataFrame(
        {
            "era": order["era"],
            S.STRATEGY: order[S.STRATEGY],
            "rule": order["rule"],
            "passed": [
                f"{int(p):,}/{int(n):,}" for p, n in zip(order["n_passed"], order["n"], strict=True)
            ],
            "skill (R gross)": order["skill"],
            "skill 95 %": list(map(_interval, order["skill_low"], order["skill_high"])),
            "null 95 % (R gross)": list(map(_interval, order["null_low"], order["null_high"])),
            "null p": order["null_p"],
            "cost selection (R)": order["cost_selection"],
            "uplift (R net)": order["uplift"],
            "uplift 95 %": list(map(_interval, order["ci_low"], order["ci_high"])),
            "mean R net passed": order["mean_r_passed"],
            "mean R net all": order["mean_r_all"],
            "total R net passed": order["total_r_passed"],
            "total R net all": order["total_r_all"],
            "AUC": order["auc"],
            "PSR": order["psr"],
        }
    )


def verdict(period: PeriodData, *, n_boot: int = 1000, seed: int = 0) -> Section:
    """The filter's verdict in one paragraph, first, with the null control beside the result.

    From the replay frames only (:func:`research.analysis.verdict.verdict_text` of the
    period's decisions: skill gross, cost selection and net uplift apart, the model era apart
    from the heuristic one, the cost basis stated); the audit trail alone cannot give one.
    """
    dec = _decisions(period)
    if dec is None:
        return Section(
            title="Verdict",
            notes=[
                "No verdict: this report has no replay frames with a closed signal (production "
                "audit trail only), and the audit trail alone records phantoms before costs and "
                "has no costed no-filter baseline to judge the filter against."
            ],
        )
    table = _uplift_table(period, n_boot=n_boot, seed=seed)
    text = verdict_text(table, costs=_costs_words(period, dec), market=_market_words(dec))
    rows = table.loc[(table["rule"] == "in force") & (table[S.STRATEGY] == "all")]
    control = pd.DataFrame(
        {
            "era": rows["era"].to_numpy(),
            "passed": [
                f"{int(p):,}/{int(n):,}" for p, n in zip(rows["n_passed"], rows["n"], strict=True)
            ],
            "skill (R gross)": rows["skill"].to_numpy(),
            "skill 95 %": list(map(_interval, rows["skill_low"], rows["skill_high"])),
            "null 95 %": list(map(_interval, rows["null_low"], rows["null_high"])),
            "null p": rows["null_p"].to_numpy(),
            "verdict": [LABELS[classify(r)] for _, r in rows.iterrows()],
        }
    )
    notes = [
        text,
        *([] if _has_gross(dec) else [NO_GROSS]),
        "The null control beside the result: skill is the mean gross R of the signals the "
        "filter passed minus that of every signal; the null band is where that skill falls "
        "when the same choices are shifted in time against the outcomes (no information). "
        "Skill inside the band is what chance gives.",
    ]
    return Section(
        title="Verdict",
        notes=notes,
        tables={"null_control": control},
        figures={"null_control": plots.plot_uplift(rows)},
    )


def _rounded(row: pd.Series, column: str) -> float | None:
    value = row.get(column, np.nan)
    return round(float(value), 4) if value is not None and np.isfinite(value) else None


def verdict_record(period: PeriodData, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """The verdict as plain values, for ``record(verdict=...)``.

    Returns
    -------
    dict
        ``label`` (``skill``, ``harm``, ``none``, ``too_few`` or ``no_replay``),
        ``headline`` (the verdict in words), ``basis`` (R per trade, out of sample, which era,
        gross vs net of which costs), and with replay frames the headline row's figures:
        ``skill_r`` with ``skill_low``/``skill_high`` (95 %), the null band
        ``null_low``/``null_high`` and ``null_p``, the net ``uplift_r`` with
        ``uplift_low``/``uplift_high``, ``n_passed`` of ``n`` signals, ``era`` and ``auc``.
        The runner's HTML report shows them above everything else, the index in the run's row.
    """
    dec = _decisions(period)
    if dec is None:
        return {
            "label": "no_replay",
            "headline": "no verdict: no replay frames",
            "basis": "the audit trail alone has no costed no-filter baseline",
        }
    table = _uplift_table(period, n_boot=n_boot, seed=seed)
    head = _headline(table)
    if head is None:
        return {"label": "too_few", "headline": LABELS["too_few"], "basis": "no closed signals"}
    label = classify(head)
    era = ERA_WORDS.get(str(head["era"]), str(head["era"]))
    out = {
        "label": label,
        "headline": LABELS[label],
        "era": str(head["era"]),
        "basis": f"R per trade, out of sample (replayed decisions, each made before its outcome "
        f"was known), {era}; skill gross of costs, uplift net of {_costs_words(period, dec)}",
        "n_passed": int(head["n_passed"]),
        "n": int(head["n"]),
    }
    for key, column in (
        ("skill_r", "skill"),
        ("skill_low", "skill_low"),
        ("skill_high", "skill_high"),
        ("null_low", "null_low"),
        ("null_high", "null_high"),
        ("null_p", "null_p"),
        ("uplift_r", "uplift"),
        ("uplift_low", "ci_low"),
        ("uplift_high", "ci_high"),
        ("auc", "auc"),
    ):
        out[key] = _rounded(head, column)
    return out


def headline(period: PeriodData, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float | int]:
    """A few numbers for the runner's manifest and the reports index (plain floats/ints):
    trades, win rates net of costs, and with replay frames the period's net uplift and skill
    (R per trade, rule in force, every signal)."""
    t = period.trades
    table = act.executed_vs_phantom(t)
    rates = table.loc[table[S.STRATEGY] == "all"].set_index("decision")["win_rate"]
    out = {"trades": len(t), "executed": int(t[S.WAS_EXECUTED].astype(bool).sum())}
    for decision in (act.EXECUTED, act.PHANTOM):
        rate = float(rates[decision]) if decision in rates else np.nan
        out[f"wr_{decision}"] = round(rate, 4) if np.isfinite(rate) else None
    if _decisions(period) is not None:
        up = _uplift_table(period, n_boot=n_boot, seed=seed)
        row = up.loc[(up["rule"] == "in force") & (up["era"] == "all") & (up[S.STRATEGY] == "all")]
        for key, col in (("uplift_r", "uplift"), ("skill_r", "skill")):
            if len(row) and np.isfinite(row.iloc[0][col]):
                out[key] = round(float(row.iloc[0][col]), 4)
    return out
