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
* Benjamini-Hochberg q-values over every test run (singles, pairs and triplets together);
* a block-permutation null of the largest single-gate |delta| on the full data (outcomes
  shuffled in time blocks, keeping serial dependence), with a max-T adjusted p per gate;
* confirmation on the later ``confirm_share`` part: same sign of delta, >= ``min_n`` on each
  side and one-sided z-test p < 0.05. ``confirmed`` = q <= ``fdr`` AND confirmation holds.

Outcomes: ``'win'`` counts as a win; ``'loss'`` and ``'timeout'`` as not-win (a gate that lets
trades drift to their deadline is not helping); rows with a missing outcome (censored) are
dropped. ``timeouts='exclude'`` drops timeouts instead, like the seed's win rate of closed trades.

Counting is vectorised (:func:`combination_counts`): gate columns bit-packed 64 rows per word,
AND and popcount over all combinations at once, no per-combination filtering: all 4,525
singles/pairs/triplets of 30 gates on 100k rows take ~0.06 s (40x a pandas filtering loop).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from research import schema as S
from research.analysis.stats import bh_qvalues, wilson_interval

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


def combination_counts(G, y, combos) -> tuple[np.ndarray, np.ndarray]:
    """Rows and wins where every member of each combination passes (bit-packed AND + popcount).

    Parameters
    ----------
    G : array (n_rows, n_gates) of bool or 0/1
    y : array (n_rows,) of bool or 0/1, 1 = win
    combos : int array (n_combos, r), r in {1, 2, 3}
        Column indices of ``G``; one combination per row.

    Returns
    -------
    n_pass, wins_pass : int64 arrays (n_combos,)
    """
    G = np.asarray(G)
    combos = np.asarray(combos, dtype=np.int64)
    combos = np.sort(combos[:, None] if combos.ndim == 1 else combos, axis=1)
    r = combos.shape[1]
    if r not in (1, 2, 3):
        raise ValueError(f"combinations of {r} gates are not supported. Fix: use 1, 2 or 3.")
    # Bit-packed columns: 64 rows per uint64 word, so "all members pass" is a word-wise AND and
    # a count is a popcount -- 64x less data than a 0/1 matrix product (and exact).
    P, Y = _pack(G, y)
    n, w = np.empty(len(combos), np.int64), np.empty(len(combos), np.int64)
    if r == 3:
        # AND each distinct leading pair once, then every triplet is one more AND
        pairs, pair_of = np.unique(combos[:, :2], axis=0, return_inverse=True)
        AB = P[pairs[:, 0]] & P[pairs[:, 1]]
        lead, last = AB, combos[:, 2]
        pair_of = pair_of.reshape(-1)
    else:
        lead, last, pair_of = P, combos[:, -1], combos[:, 0]
    # chunks of ~16 MB of words keep memory flat whatever the number of combinations
    step = max(1, (1 << 21) // max(P.shape[1], 1))
    for s in range(0, len(combos), step):
        sl = slice(s, s + step)
        X = lead[pair_of[sl]] & P[last[sl]] if r > 1 else P[combos[sl, 0]].copy()
        n[sl] = np.bitwise_count(X).sum(axis=1, dtype=np.int64)
        X &= Y
        w[sl] = np.bitwise_count(X).sum(axis=1, dtype=np.int64)
    return n, w


def _pack(G, y) -> tuple[np.ndarray, np.ndarray]:
    """Gate columns and the win vector as rows of uint64 words (bit i of word j = row 64j+i)."""
    G, y = np.asarray(G, bool), np.asarray(y, bool)
    pad = (-len(G)) % 64  # zero rows pass no gate: they never count
    Gp = np.concatenate([G, np.zeros((pad, G.shape[1]), bool)])
    P = np.ascontiguousarray(np.packbits(Gp.T, axis=1)).view(np.uint64)
    Y = np.packbits(np.concatenate([y, np.zeros(pad, bool)])).view(np.uint64)
    return P, Y


def _stats(G, y, combos, min_n: int) -> dict[str, np.ndarray]:
    """Seed numbers and the pooled two-proportion z-test of pass vs fail for each combination."""
    n1, w1 = combination_counts(G, y, combos)
    n0, w0 = len(y) - n1, int(np.sum(y)) - w1
    with np.errstate(invalid="ignore", divide="ignore"):
        wr1, wr0 = w1 / n1, w0 / n0
        pooled = (w1 + w0) / len(y)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
        z = np.where(se > 0, (wr1 - wr0) / se, 0.0)  # all wins or all losses: no evidence
    return {
        "n_pass": n1,
        "n_fail": n0,
        "wins_pass": w1,
        "wins_fail": w0,
        "wr_pass": wr1,
        "wr_fail": wr0,
        "delta": wr1 - wr0,
        "sufficient": (n1 >= min_n) & (n0 >= min_n),
        "z": z,
        "p": 2 * ndtr(-np.abs(z)),
    }


def _top(stats: dict, top_k: int) -> list[int]:
    """Indices of the ``top_k`` sufficient gates by delta (the seed's selection rule)."""
    idx = np.flatnonzero(stats["sufficient"])
    return [int(i) for i in idx[np.argsort(-stats["delta"][idx], kind="stable")][:top_k]]


def _block_null(G, y, sufficient, n_perm: int, block: int, seed: int) -> np.ndarray:
    """Max |delta| over sufficient gates for ``n_perm`` block permutations of ``y`` (time order)."""
    N = len(y)
    rng = np.random.default_rng(seed)
    block_of_row = np.arange(N) // block
    n_blocks = int(block_of_row[-1]) + 1
    Gf = G[:, sufficient].astype(np.float64)
    n1 = Gf.sum(axis=0)[:, None]
    n0, W = N - n1, float(np.sum(y))
    out = np.empty(n_perm)
    step = max(1, int(2e7 // max(N, 1)))  # bound memory: ~20M outcome cells per batch
    for start in range(0, n_perm, step):
        B = min(step, n_perm - start)
        # each row's sort key is its block's position in a random block order; a stable sort
        # then lays the blocks out in that order with their rows kept in time order
        rank = np.argsort(rng.random((B, n_blocks)), axis=1)
        idx = np.argsort(rank[:, block_of_row], axis=1, kind="stable")
        Y = np.asarray(y, np.float64)[idx].T  # (N, B)
        wins = Gf.T @ Y
        out[start : start + B] = np.abs(wins / n1 - (W - wins) / n0).max(axis=0)
    return out


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
    N = len(df)
    n_disc = int(round(N * (1 - confirm_share)))
    if min(n_disc, N - n_disc) < 2 * min_n:
        raise S.SchemaError(
            f"only {N} usable outcomes: the discovery ({n_disc}) and confirmation "
            f"({N - n_disc}) parts need >= {2 * min_n} each. Fix: simulate more phantoms."
        )
    G = df[gates].to_numpy(bool)
    y = (df[outcome_column].astype(object) == "win").to_numpy()
    parts = {"": slice(None), "disc_": slice(0, n_disc), "conf_": slice(n_disc, N)}

    singles_idx = np.arange(len(gates))[:, None]
    single = {p: _stats(G[s], y[s], singles_idx, min_n) for p, s in parts.items()}
    seed_top, disc_top = _top(single[""], top_k), _top(single["disc_"], top_k)
    sets = {r: (set(combinations(seed_top, r)), set(combinations(disc_top, r))) for r in (2, 3)}
    # sorted tuples of sorted indices: the same combination is one row whichever list built it
    rows = {r: sorted({tuple(sorted(c)) for c in a | b}) for r, (a, b) in sets.items()}
    multi = {
        r: {
            p: _stats(G[s], y[s], np.array(rows[r], dtype=np.int64).reshape(-1, r), min_n)
            for p, s in parts.items()
        }
        for r in (2, 3)
    }

    def frame(names, stats, tested, extra):
        f = pd.DataFrame(
            {
                k: stats[""][k]
                for k in (
                    "n_pass",
                    "n_fail",
                    "wins_pass",
                    "wins_fail",
                    "wr_pass",
                    "wr_fail",
                    "delta",
                    "sufficient",
                )
            },
            index=pd.Index(names, name="gate"),
        )
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

    singles = frame(gates, single, np.ones(len(gates), bool), {})
    parts_c = []
    for r in (2, 3):
        names = [JOIN.join(gates[i] for i in c) for c in rows[r]]
        member_wr = single[""]["wr_pass"][np.array(rows[r], dtype=np.int64).reshape(-1, r)].mean(
            axis=1
        )
        seed_sel = np.array([c in {tuple(sorted(x)) for x in sets[r][0]} for c in rows[r]], bool)
        disc_sel = np.array([c in {tuple(sorted(x)) for x in sets[r][1]} for c in rows[r]], bool)
        extra = {
            "size": r,
            "synergy": multi[r][""]["wr_pass"] - member_wr,
            "seed_selected": seed_sel,
        }
        parts_c.append(frame(names, multi[r], disc_sel, extra))
    combos = pd.concat(parts_c) if any(len(p) for p in parts_c) else parts_c[0]
    combos.index.name = "combination"

    # BH over every test actually run, singles and combinations together
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

    # block-permutation null of the largest single-gate |delta| (full data, time order)
    block = block or max(1, int(round(np.sqrt(N))))
    suff = singles["sufficient"].to_numpy()
    null_max = _block_null(G, y, suff, n_perm, block, seed) if suff.any() else np.zeros(0)
    obs = float(singles["delta"].abs()[suff].max()) if suff.any() else float("nan")
    exceed = (null_max[:, None] >= singles["delta"].abs().to_numpy()[None, :]).sum(axis=0)
    singles["p_perm_adj"] = np.where(suff, (1 + exceed) / (1 + len(null_max)), np.nan)
    null = pd.DataFrame(
        {
            "observed_max_abs_delta": [obs],
            "median": [float(np.median(null_max)) if len(null_max) else np.nan],
            "p95": [float(np.quantile(null_max, 0.95)) if len(null_max) else np.nan],
            "p_value": [(1 + float((null_max >= obs).sum())) / (1 + len(null_max))],
            "n_perm": [n_perm],
            "block": [block],
            "n_singles": [int(suff.sum())],
            "n_tests": [int(np.isfinite(p_all).sum())],
        }
    )

    recs = _recommendations(singles, combos, fdr)
    result = GateAnalysis(singles, combos, recs, null, "")
    notes = explain_null(result)
    logger.info(
        "gate analysis: %d rows, %d tests, %d confirmed",
        N,
        null["n_tests"].iloc[0],
        int(singles["confirmed"].sum() + combos["confirmed"].sum()),
    )
    return GateAnalysis(singles, combos, recs, null, notes)


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
    s, n = result.singles, result.null.iloc[0]
    lines = [
        f"{int(n['n_tests'])} tests run (singles, pairs, triplets); "
        f"{int(s['confirmed'].sum())} gate(s) and {int(result.combos['confirmed'].sum())} "
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
