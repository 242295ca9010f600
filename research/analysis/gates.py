"""Scalp gate analysis: the seed's win-rate-delta ranking, and the rigorous check beside it.

The seed ("Scalp Gate Analysis") judges each binary gate variable by ``delta = WR_pass -
WR_fail`` on phantom outcomes, keeps variables with >= 20 phantoms on each side, ranks them by
delta, combines the top 10 into pairs and triplets (a combination passes when all its members
pass) scored by ``synergy = WR_combo - mean(WR_pass of the members)``, and recommends: enable
gates with a positive delta, disable those with a negative one, use the best combination.

That ranking has no notion of noise: with ~28 gates and ~160 combinations, the largest of many
noisy deltas is always "good". Beside every seed number this module reports (DESIGN §6)

* Wilson 95 % intervals for the win rates;
* a pooled two-proportion z-test per test (combination pass vs combination fail), run on the
  *discovery* part (the earlier ``1 - confirm_share`` of the rows by time), where the top-k
  selection is also redone so the confirmation part never influences what is tested;
* Benjamini-Hochberg q-values over every test run (singles, pairs and triplets together;
  :func:`scipy.stats.false_discovery_control`);
* a block-permutation null of the largest single-gate |delta| on the full data (outcomes
  shuffled in time blocks, keeping serial dependence), with a max-T adjusted p per gate;
* confirmation on the later ``confirm_share`` part: same sign of delta, >= ``min_n`` on each
  side and one-sided z-test p < 0.05. ``confirmed`` = q <= ``fdr`` AND confirmation holds.

Outcomes: ``'win'`` counts as a win; ``'loss'`` and ``'timeout'`` as not-win (a gate that lets
trades drift to their deadline is not helping); rows with a missing outcome (censored) are
dropped. ``timeouts='exclude'`` drops timeouts instead, like the seed's win rate of closed trades.

Counting is vectorised in :mod:`research.analysis.gate_counts` (bit-packed AND and popcount
over all combinations at once); this module builds the frames, the q-values and the verdicts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from research import schema as S
from research.analysis.gate_counts import (
    block_null_max,
    combination_counts,
    combination_stats,
    top_gates,
)
from research.analysis.stats import bh_qvalues, wilson_interval

__all__ = [
    "CONFIRM_ALPHA",
    "JOIN",
    "GateAnalysis",
    "analyze_gates",
    "bh_qvalues",
    "combination_counts",
    "explain_null",
    "wilson_interval",
]

logger = logging.getLogger(__name__)

CONFIRM_ALPHA = 0.05  # one-sided level of the confirmation test
JOIN = " & "  # name of a combination: members joined, e.g. "vol_200 & q_70"


@dataclass(frozen=True)
class GateAnalysis:
    """Result of :func:`analyze_gates`.

    Attributes
    ----------
    singles : DataFrame
        One row per gate (index: gate name). Full-data seed columns ``n_pass n_fail wins_pass
        wins_fail wr_pass wr_fail delta sufficient seed_rank``, Wilson bounds ``wr_pass_lo
        wr_pass_hi wr_fail_lo wr_fail_hi``; discovery columns ``disc_n_pass disc_delta z
        p_value q_value tested``; confirmation ``conf_n_pass conf_delta conf_p confirmed``;
        ``p_perm_adj`` (block-permutation max-T adjusted p) and ``rank`` (confirmed gates by
        discovery |z|, 1 = strongest).
    combos : DataFrame
        Pairs and triplets (index: ``"a & b"``), the union of those built from the seed's top-k
        (``seed_selected``) and from the discovery top-k (``tested`` if also sufficient there).
        Same columns as ``singles`` plus ``size`` and ``synergy``; ``seed_rank`` orders the
        seed's sufficient combinations by ``wr_pass``.
    recommendations : DataFrame
        The seed's recommendations (``enable``, ``disable``, ``best_combo``) and any further
        confirmed combination, with ``seed_says``, ``confirmed`` and ``why``.
    null : DataFrame
        One row: ``observed_max_abs_delta``, null ``median`` / ``p95``, ``p_value``,
        ``n_perm``, ``block``, ``n_singles``, ``n_tests``.
    notes : str
        Plain-text reading of the result (see :func:`explain_null`).
    """

    singles: pd.DataFrame
    combos: pd.DataFrame
    recommendations: pd.DataFrame
    null: pd.DataFrame
    notes: str


def _prepare(outcomes, gate_columns, outcome_column, time_column, timeouts) -> pd.DataFrame:
    """Validate the input and return it sorted by time, with outcomes known (fix-it errors)."""
    gate_columns = list(gate_columns)
    if not gate_columns:
        raise S.SchemaError("no gate columns given. Fix: pass e.g. research.signals.GATE_COLUMNS.")
    S.require_columns(outcomes, [*gate_columns, outcome_column, time_column], "gate analysis")
    bad = [
        g
        for g in gate_columns
        if not pd.api.types.is_bool_dtype(outcomes[g].dtype) or outcomes[g].isna().any()
    ]
    if bad:
        raise S.SchemaError(
            f"gate column(s) {bad} are not boolean without missing values "
            f"(dtypes {[str(outcomes[g].dtype) for g in bad]}). Fix: gates are pass/fail flags; "
            "convert with df[col].fillna(False).astype(bool) after checking what they hold."
        )
    if timeouts not in ("loss", "exclude"):
        raise ValueError(f"timeouts={timeouts!r}. Fix: use 'loss' (not-win) or 'exclude'.")
    values = outcomes[outcome_column].astype(object)
    unknown = values.notna() & ~values.isin(S.OUTCOMES)
    if unknown.any():
        raise S.SchemaError(
            f"{outcome_column!r} has values {sorted(map(str, values[unknown].unique()))[:5]} "
            f"at rows {S._rows_preview(outcomes.index[unknown])}. Fix: use {S.OUTCOMES} "
            "(missing = censored, dropped), e.g. the outcome column of research.phantom.simulate."
        )
    keep = values.notna() & ((values != "timeout") if timeouts == "exclude" else True)
    if int(keep.sum()) < len(keep):
        logger.info(
            "gate analysis: dropped %d of %d rows (censored or timeouts excluded)",
            len(keep) - int(keep.sum()),
            len(keep),
        )
    df = outcomes.loc[keep.to_numpy(), [*gate_columns, outcome_column, time_column]]
    return df.sort_values(time_column, kind="stable")


def analyze_gates(
    outcomes: pd.DataFrame,
    gate_columns,
    outcome_column: str = S.OUTCOME,
    *,
    min_n: int = 20,
    top_k: int = 10,
    fdr: float = 0.10,
    confirm_share: float = 0.3,
    time_column: str = S.SIGNAL_TIME,
    n_perm: int = 500,
    block: int | None = None,
    seed: int = 0,
    timeouts: str = "loss",
) -> GateAnalysis:
    """Run the seed's gate analysis and its rigorous check on phantom outcomes.

    Parameters
    ----------
    outcomes : DataFrame
        One row per phantom: boolean ``gate_columns``, ``outcome_column`` in ``S.OUTCOMES`` (or
        missing = censored) and ``time_column`` (signal time; sets the discovery/confirmation
        split and the permutation blocks).
    gate_columns : sequence of str
    min_n : int
        Seed's sufficiency: at least ``min_n`` rows on each side (also applied to combinations,
        to the discovery part and to the confirmation part).
    top_k : int
        Gates combined into pairs and triplets (seed: 10).
    fdr : float
        Benjamini-Hochberg level for ``confirmed``.
    confirm_share : float in (0, 1)
        Later share of the rows (by time) held out for confirmation.
    n_perm, block, seed : int, int or None, int
        Block permutations of the null; block length in rows (default ``sqrt(n_rows)``); RNG seed.
    timeouts : {'loss', 'exclude'}
        Count timeouts as not-win (default) or drop them.

    Returns
    -------
    GateAnalysis
    """
    if not 0 < confirm_share < 1:
        raise ValueError(f"confirm_share={confirm_share}. Fix: use a share in (0, 1), e.g. 0.3.")
    gates = list(gate_columns)
    df = _prepare(outcomes, gates, outcome_column, time_column, timeouts)
    G, y, parts = _split(df, gates, outcome_column, confirm_share, min_n)
    single = _part_stats(G, y, parts, np.arange(len(gates))[:, None], min_n)
    singles = _frame(gates, single, np.ones(len(gates), bool), {})
    combos = _combos_frame(G, y, parts, gates, single, min_n=min_n, top_k=top_k)
    n_tests = _add_verdicts(singles, combos, fdr)
    null = _null_frame(G, y, singles, n_perm=n_perm, block=block, seed=seed, n_tests=n_tests)
    logger.info(
        "gate analysis: %d rows, %d tests, %d confirmed",
        len(df),
        null["n_tests"].iloc[0],
        int(singles["confirmed"].sum() + combos["confirmed"].sum()),
    )
    recommendations = _recommendations(singles, combos, fdr)
    notes = _explain(singles, combos, null)
    return GateAnalysis(singles, combos, recommendations, null, notes)


def _split(df, gates, outcome_column, confirm_share, min_n) -> tuple[np.ndarray, np.ndarray, dict]:
    """Gate matrix, win vector and the row slices of the full data, discovery and confirmation.

    The slices are keyed by their column prefix: ``''`` (all rows), ``'disc_'`` (the earlier
    ``1 - confirm_share`` of the rows by time) and ``'conf_'`` (the later rest).
    """
    N = len(df)
    n_disc = int(round(N * (1 - confirm_share)))
    if min(n_disc, N - n_disc) < 2 * min_n:
        raise S.SchemaError(
            f"only {N} usable outcomes: the discovery ({n_disc}) and confirmation "
            f"({N - n_disc}) parts need >= {2 * min_n} each. Fix: simulate more phantoms."
        )
    G = df[gates].to_numpy(bool)
    y = (df[outcome_column].astype(object) == "win").to_numpy()
    return G, y, {"": slice(None), "disc_": slice(0, n_disc), "conf_": slice(n_disc, N)}


def _part_stats(G, y, parts: dict, combos, min_n: int) -> dict[str, dict]:
    """:func:`combination_stats` of ``combos`` on each part (keyed by its column prefix)."""
    return {p: combination_stats(G[s], y[s], combos, min_n) for p, s in parts.items()}


#: The seed's full-data numbers, the first columns of ``singles`` and ``combos``.
_SEED_COLUMNS = (
    "n_pass",
    "n_fail",
    "wins_pass",
    "wins_fail",
    "wr_pass",
    "wr_fail",
    "delta",
    "sufficient",
)


def _frame(names, stats: dict, tested, extra: dict) -> pd.DataFrame:
    """One row per gate or combination: seed numbers, Wilson bounds, discovery test and the
    confirmation check (``stats`` as :func:`_part_stats` returns), then the ``extra`` columns."""
    f = pd.DataFrame({k: stats[""][k] for k in _SEED_COLUMNS}, index=pd.Index(names, name="gate"))
    f["wr_pass_lo"], f["wr_pass_hi"] = wilson_interval(f["wins_pass"], f["n_pass"])
    f["wr_fail_lo"], f["wr_fail_hi"] = wilson_interval(f["wins_fail"], f["n_fail"])
    d, c = stats["disc_"], stats["conf_"]
    f["disc_n_pass"], f["disc_delta"] = d["n_pass"], d["delta"]
    f["tested"] = tested & d["sufficient"]
    f["z"], f["p_value"] = d["z"], np.where(f["tested"], d["p"], np.nan)
    f["conf_n_pass"], f["conf_delta"] = c["n_pass"], c["delta"]
    # one-sided, in the direction found in discovery
    f["conf_p"] = ndtr(-c["z"] * np.sign(d["delta"]))
    f["conf_holds"] = (
        c["sufficient"]
        & (np.sign(c["delta"]) == np.sign(d["delta"]))
        & (f["conf_p"] < CONFIRM_ALPHA)
    )
    for k, v in extra.items():
        f[k] = v
    return f


def _candidates(single: dict, top_k: int) -> dict[int, tuple[list[tuple], set, set]]:
    """Pairs and triplets to count, built from the seed's top-k and from the discovery top-k.

    Returns, per size ``r``: every candidate once (sorted tuples of sorted gate indices, so the
    same combination is one row whichever list built it), those of the seed's top-k and those
    of the discovery top-k.
    """
    seed_top, disc_top = top_gates(single[""], top_k), top_gates(single["disc_"], top_k)
    out = {}
    for r in (2, 3):
        by_seed = {tuple(sorted(c)) for c in combinations(seed_top, r)}
        by_disc = {tuple(sorted(c)) for c in combinations(disc_top, r)}
        out[r] = (sorted(by_seed | by_disc), by_seed, by_disc)
    return out


def _combos_frame(G, y, parts, gates, single, *, min_n: int, top_k: int) -> pd.DataFrame:
    """The pairs and triplets frame: :func:`_frame` plus ``size``, ``synergy`` (win-rate
    fraction over the members' mean pass rate) and ``seed_selected``."""
    frames = []
    for r, (rows, by_seed, by_disc) in _candidates(single, top_k).items():
        members = np.array(rows, dtype=np.int64).reshape(-1, r)
        multi = _part_stats(G, y, parts, members, min_n)
        names = [JOIN.join(gates[i] for i in c) for c in rows]
        member_wr = single[""]["wr_pass"][members].mean(axis=1)
        extra = {
            "size": r,
            "synergy": multi[""]["wr_pass"] - member_wr,
            "seed_selected": np.array([c in by_seed for c in rows], bool),
        }
        frames.append(_frame(names, multi, np.array([c in by_disc for c in rows], bool), extra))
    combos = pd.concat(frames) if any(len(f) for f in frames) else frames[0]
    combos.index.name = "combination"
    return combos


def _add_verdicts(singles: pd.DataFrame, combos: pd.DataFrame, fdr: float) -> int:
    """Add ``q_value``, ``confirmed``, ``rank`` and ``seed_rank`` to both frames (in place).

    Benjamini-Hochberg runs over every test actually run, singles and combinations together.
    Returns the number of tests.
    """
    p_all = np.concatenate([singles["p_value"].to_numpy(), combos["p_value"].to_numpy()])
    q_all = bh_qvalues(p_all)
    singles["q_value"], combos["q_value"] = q_all[: len(singles)], q_all[len(singles) :]
    for f in (singles, combos):
        f["confirmed"] = f["tested"] & (f["q_value"] <= fdr) & f["conf_holds"]
        f["rank"] = f["z"].abs().where(f["confirmed"]).rank(ascending=False, method="first")
    singles["seed_rank"] = (
        singles["delta"].where(singles["sufficient"]).rank(ascending=False, method="first")
    )
    combos["seed_rank"] = (
        combos["wr_pass"]
        .where(combos["sufficient"] & combos["seed_selected"])
        .rank(ascending=False, method="first")
    )
    return int(np.isfinite(p_all).sum())


def _null_frame(G, y, singles: pd.DataFrame, *, n_perm, block, seed, n_tests) -> pd.DataFrame:
    """Block-permutation null of the largest single-gate |delta| (full data, time order).

    Adds ``p_perm_adj`` (max-T adjusted p per sufficient gate) to ``singles`` in place and
    returns the one-row ``null`` frame of :class:`GateAnalysis`.
    """
    block = block or max(1, int(round(np.sqrt(len(y)))))
    suff = singles["sufficient"].to_numpy()
    null_max = block_null_max(G, y, suff, n_perm, block, seed) if suff.any() else np.zeros(0)
    obs = float(singles["delta"].abs()[suff].max()) if suff.any() else float("nan")
    exceed = (null_max[:, None] >= singles["delta"].abs().to_numpy()[None, :]).sum(axis=0)
    singles["p_perm_adj"] = np.where(suff, (1 + exceed) / (1 + len(null_max)), np.nan)
    return pd.DataFrame(
        {
            "observed_max_abs_delta": [obs],
            "median": [float(np.median(null_max)) if len(null_max) else np.nan],
            "p95": [float(np.quantile(null_max, 0.95)) if len(null_max) else np.nan],
            "p_value": [(1 + float((null_max >= obs).sum())) / (1 + len(null_max))],
            "n_perm": [n_perm],
            "block": [block],
            "n_singles": [int(suff.sum())],
            "n_tests": [n_tests],
        }
    )


def _why(row, fdr: float) -> str:
    """Plain reason why a recommendation is (not) confirmed."""
    if not row["tested"]:
        return "not tested: not in the discovery top-k or too few rows in discovery"
    if not row["q_value"] <= fdr:
        return f"q = {row['q_value']:.2f} > {fdr:.2f}: not distinguishable from noise"
    if not row["conf_holds"]:
        return f"fails in the later period (delta {row['conf_delta']:+.3f}, p {row['conf_p']:.2f})"
    return "confirmed"


def _recommendations(singles: pd.DataFrame, combos: pd.DataFrame, fdr: float) -> pd.DataFrame:
    """The seed's enable / disable / best combination, plus confirmed combinations it missed."""
    s = singles[singles["sufficient"]].sort_values("seed_rank")
    picks = [
        (g, "single", "enable" if d > 0 else "disable", True)
        for g, d in s["delta"].items()
        if d != 0
    ]
    ranked = combos[combos["seed_rank"].notna()].sort_values("seed_rank")
    best = ranked.index[0] if len(ranked) else None
    if best is not None:
        picks.append((best, "combo", "best_combo", True))
    for name in combos.index[combos["confirmed"]]:
        if name != best:
            picks.append((name, "combo", "combo", False))
    cols = [
        "item",
        "kind",
        "action",
        "seed_says",
        "n_pass",
        "wr_pass",
        "delta",
        "synergy",
        "q_value",
        "conf_delta",
        "confirmed",
        "why",
    ]
    out = []
    for item, kind, action, seed_says in picks:
        row = (singles if kind == "single" else combos).loc[item]
        out.append(
            [
                item,
                "single" if kind == "single" else ("pair", "triplet")[row["size"] - 2],
                action,
                seed_says,
                row["n_pass"],
                row["wr_pass"],
                row["delta"],
                row.get("synergy", np.nan),
                row["q_value"],
                row["conf_delta"],
                bool(row["confirmed"]),
                _why(row, fdr),
            ]
        )
    return pd.DataFrame(out, columns=cols)


def explain_null(result: GateAnalysis) -> str:
    """Explain, in plain words, how far the seed's ranking is from noise."""
    return _explain(result.singles, result.combos, result.null)


def _explain(s: pd.DataFrame, combos: pd.DataFrame, null: pd.DataFrame) -> str:
    """:func:`explain_null` of the frames of a :class:`GateAnalysis` (``s``: its singles)."""
    n = null.iloc[0]
    lines = [
        f"{int(n['n_tests'])} tests run (singles, pairs, triplets); "
        f"{int(s['confirmed'].sum())} gate(s) and {int(combos['confirmed'].sum())} "
        "combination(s) confirmed."
    ]
    ranked = s[s["seed_rank"].notna()].sort_values("seed_rank")
    if len(ranked):
        g, top = ranked.index[0], ranked.iloc[0]
        q = "untested" if np.isnan(top["q_value"]) else f"{top['q_value']:.2f}"
        # "but" only where the gate fails the check: a confirmed top gate is not a warning
        link = "and is confirmed, q =" if bool(top["confirmed"]) else "but q ="
        lines.append(
            f"The seed's top gate {g} has delta {top['delta']:+.3f} "
            f"(win rate {top['wr_pass']:.1%}, 95% CI {top['wr_pass_lo']:.1%}-"
            f"{top['wr_pass_hi']:.1%}) {link} {q}: with {int(n['n_singles'])} gates, the largest "
            f"of {int(n['n_singles'])} noisy |deltas| is expected around {n['median']:.3f} "
            f"(block-permutation median; 95th percentile {n['p95']:.3f}); the observed largest "
            f"is {n['observed_max_abs_delta']:.3f}, permutation p = {n['p_value']:.3f}."
        )
        if not s["confirmed"].any():
            lines.append(
                "No gate survives FDR and the later period: the seed's 'good' gates "
                "are what the largest of many noisy deltas looks like."
            )
    return "\n".join(lines)
