"""The filter's verdict in words: does it add skill, how sure, what it costs.

One paragraph built from :func:`research.analysis.uplift.uplift_table` — the first thing the
demo prints and the report shows, above any table. It states its basis (replay decisions made
out of sample, R per trade, gross vs net of which costs), keeps skill (gross) apart from cost
selection, the model era apart from the heuristic era, says "too few" rather than print an
interval of a handful of trades, and puts the null control beside the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.uplift import MIN_PASSED, uplift_table

#: the verdict's words, keyed by :func:`classify`'s answer
LABELS = {
    "skill": "the filter adds skill",
    "harm": "the filter picks worse trades than taking every signal",
    "none": "no evidence that the filter adds skill",
    "too_few": "too few trades to judge",
}


def classify(row: pd.Series) -> str:
    """``'skill'`` (gross uplift interval above 0), ``'harm'`` (below 0), ``'none'``, or
    ``'too_few'`` (fewer than :data:`MIN_PASSED` passed trades)."""
    if row["n_passed"] < MIN_PASSED or not np.isfinite(row.get("skill_low", np.nan)):
        return "too_few"
    if row["skill_low"] > 0:
        return "skill"
    if row["skill_high"] < 0:
        return "harm"
    return "none"


def _r(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.2f} R"


def _ci(lo: float, hi: float) -> str:
    return "" if not (np.isfinite(lo) and np.isfinite(hi)) else f" [{lo:+.2f}, {hi:+.2f}]"


def _overall(table: pd.DataFrame, rule: str, era: str) -> pd.Series | None:
    """The all-strategies row of ``rule`` in ``era``, None if there is none."""
    rows = table[(table["rule"] == rule) & (table["era"] == era) & (table[S.STRATEGY] == "all")]
    return rows.iloc[0] if len(rows) else None


def _headline(table: pd.DataFrame) -> pd.Series | None:
    for era in ("model", "all"):
        row = _overall(table, "in force", era)
        if row is not None and row["n_passed"] >= MIN_PASSED:
            return row
    t = table[(table["rule"] == "in force") & (table[S.STRATEGY] == "all")]
    return t.iloc[0] if len(t) else None


def verdict_text(
    table: pd.DataFrame, *, costs: str = "the venue's costs", market: str | None = None
) -> str:
    """One paragraph (plain text) from an :func:`uplift_table`.

    ``costs`` names the cost basis (e.g. "crypto perpetual: 0.10 % fees + 2 x 0.01 %
    slippage"); ``market`` what was replayed.
    """
    head = _headline(table)
    if head is None:
        return "No closed signals: nothing to judge."
    label = classify(head)
    era = {
        "model": "the model era (signals scored by a trained model)",
        "all": "all signals (heuristic and model eras)",
    }.get(head["era"], head["era"])
    parts = [
        f"Verdict: {LABELS[label]}."
        + (f" Market: {market}." if market else "")
        + f" Basis: replayed decisions, each made before its outcome was known; R per trade, "
        f"gross = before costs, net = after {costs}.",
        f"In {era} the filter took {int(head['n_passed']):,} of {int(head['n']):,} signals "
        f"({head['share_passed']:.0%}).",
    ]
    if label == "too_few":
        parts.append(f"That is under {MIN_PASSED} trades: no interval is given.")
    else:
        parts.append(
            f"Skill (gross R of the trades it took minus that of every signal): "
            f"{_r(head['skill'])}{_ci(head['skill_low'], head['skill_high'])} (95 % block "
            f"bootstrap, blocks of {int(head['block'])} signals); the null control — the same "
            f"choices shifted in time against the outcomes — spans {_ci(head['null_low'], head['null_high']).strip()}"
            f" (one-sided p = {head['null_p']:.3f})."
        )
        parts.append(
            f"Net of costs the uplift is {_r(head['uplift'])}{_ci(head['ci_low'], head['ci_high'])}"
            f", of which {_r(head['cost_selection'])} is cost selection (cheaper trades, not "
            f"forecasting). Taken trades earn {_r(head['mean_r_passed'])} net against "
            f"{_r(head['mean_r_all'])} for every signal; per-trade Sharpe "
            f"{head['sharpe_passed']:.3f} vs {head['sharpe_all']:.3f} (PSR {head['psr']:.2f})."
        )
        parts.append(
            f"As a meta-label for 'profitable after costs' (base rate {head['base_rate']:.0%}): "
            f"precision {head['precision']:.0%}, recall {head['recall']:.0%}, AUC of the score "
            f"{head['auc']:.3f}."
        )
    ipw = head.get("mean_r_all_ipw", np.nan)
    if label != "too_few" and np.isfinite(ipw):
        parts.append(
            f"Exploration lets executed trades alone estimate the no-filter value: "
            f"{_r(ipw)} per signal by inverse-propensity weighting, against {_r(head['mean_r_all'])} "
            "measured on every signal (the estimate rests on the few explored trades, each "
            "weighted by one over its propensity: noisy when exploration is small)."
        )
    h = _overall(table, "in force", "heuristic")
    if h is not None:
        parts.append(
            f"Before the first model (heuristic era) the rule-based score took "
            f"{int(h['n_passed']):,} of {int(h['n']):,} signals, skill {_r(h['skill'])}"
            f"{_ci(h['skill_low'], h['skill_high'])}."
        )
    s = _overall(table, "seed", head["era"])
    if s is not None:
        parts.append(
            f"The seed's rule (thresholds clamped to 60-95 score points) would have taken "
            f"{int(s['n_passed']):,} signals, net uplift {_r(s['uplift'])}"
            f"{_ci(s['ci_low'], s['ci_high'])}."
        )
    return " ".join(parts)


def replay_verdict(result, *, market: str | None = None, n_boot: int = 1000) -> str:
    """:func:`verdict_text` of a :class:`research.replay.ReplayResult`."""
    d = result.decisions
    table = uplift_table(d, n_boot=n_boot)
    text = verdict_text(table, costs=costs_basis(result), market=market)
    executed = d[S.WAS_EXECUTED].to_numpy(bool) & ~d[S.EXPLORED].to_numpy(bool)
    if executed.any():
        by_model = float((d.loc[executed, S.SCORE_SOURCE] == "ml").mean())
        text += (
            f" Of the {int(executed.sum()):,} trades the filter executed, a trained model "
            f"chose {by_model:.0%} and the rule-based fallback the rest."
        )
    return text


def costs_basis(result) -> str:
    """Words for the cost basis of a replay (profiles per symbol)."""
    config = getattr(result, "config", None)
    if config is None:
        return "the replay's costs"
    symbols = sorted(pd.unique(result.decisions[S.SYMBOL]))
    desc = config.costs.describe(symbols)
    words = []
    for name, g in desc.groupby("profile", sort=False):
        p = config.costs.profile(g.index[0])
        if p.spread and not p.fee_percent:
            what = f"{name} (spread {p.spread:g} price units round trip)"
        elif p.fee_percent or p.slippage_percent:
            what = (
                f"{name} ({p.fee_percent:g} % fees round trip + 2 x {p.slippage_percent:g} % "
                "slippage)"
            )
        else:
            what = f"{name} (no costs)"
        words.append(what)
    return "costs of " + "; ".join(words)
