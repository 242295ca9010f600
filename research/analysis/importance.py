"""Feature importance: the seed's in-sample MDI evolution and out-of-sample permutation importance.

DESIGN §6: the seed ranks features by random-forest impurity (MDI) fitted in sample; the
rigorous default is permutation importance on held-out, purged walk-forward folds, compared
with a pure-noise probe feature. Both are computed here; both return frames (compute only).

Only ``signal``-available (entry) features are used: a features frame holding ``after_entry``
(lifecycle) columns is refused, as the entry model refuses it. Leakage is studied in
:mod:`research.analysis.leakage`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from research import schema as S
from research.analysis.stats import bh_qvalues
from research.dataset import ClosedTrades, fresh_estimator
from research.distributed import map_tasks
from research.errors import InsufficientDataError
from research.scoring.encode import encode, encoded_columns, entry_features
from research.splits import PurgedWalkForward

logger = logging.getLogger(__name__)

__all__ = [
    "NOISE",
    "default_model",
    "impurity_evolution",
    "permutation_fold",
    "permutation_importance_oos",
    "rank_stability",
]

NOISE = S.NOISE_PROBE  # the probe: standard-normal noise, unrelated to the label by construction


def default_model(random_state: int = 0, n_estimators: int = 100):
    """A light random forest (median imputation + missing indicators) used when none is given."""
    # add_indicator: a missing value is information of its own (as in EnsembleScorer)
    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    forest = RandomForestClassifier(
        n_estimators=n_estimators, min_samples_leaf=5, n_jobs=1, random_state=random_state
    )
    return make_pipeline(imputer, forest)


def feature_blocks(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Feature -> positions of its columns in ``encode(frame, names)`` (one-hot blocks whole)."""
    cols = encoded_columns(names)
    owner = [c.split("=", 1)[0] for c in cols]  # one-hot columns are named "feature=value"
    return {n: np.flatnonzero(np.array(owner) == n) for n in names}


def _entry_design(features: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    names = entry_features(features)  # raises on after_entry columns (entry models refuse them)
    if not names:
        raise ValueError("no registered entry feature columns. Fix: pass build_features(...).")
    return names, encode(features, names)


def impurity_evolution(
    data: ClosedTrades,
    *,
    sizes: Sequence[int | None] = (30, 100, 300, None),
    random_state: int = 0,
    n_estimators: int = 100,
) -> pd.DataFrame:
    """The seed's random-forest impurity (MDI) importance after the first n trades.

    Parameters
    ----------
    data : ClosedTrades
        Entry features and labels of the closed trades
        (:class:`research.dataset.ClosedTrades`); "first" is by ``signal_time`` (rows are
        sorted by it, stable).
    sizes : sequence of int or None
        Numbers of first trades to fit on; ``None`` = all rows.
    random_state, n_estimators : int

    Returns
    -------
    DataFrame
        Rows = entry features (one-hot blocks summed back), columns = sizes (``None`` is
        labelled ``'all'``); values are shares of total impurity decrease (each column sums
        to 1). A column is NaN when fewer rows than the size exist or its rows hold one class.
        In-sample MDI favours high-cardinality features; see :func:`permutation_importance_oos`.
    """
    data.require_rows("impurity_evolution")
    order = np.argsort(data.signal_times, kind="stable")
    features, y = data.features.iloc[order], data.y[order]
    names, X = _entry_design(features)
    # no missing indicators here: MDI must map one-to-one onto encoded columns
    X = SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(X)
    blocks = feature_blocks(names)
    out = {}
    for size in sizes:
        label = "all" if size is None else int(size)
        n = len(y) if size is None else int(size)
        if n > len(y) or len(np.unique(y[:n])) < 2:
            logger.info("MDI at %s trades skipped: %d rows, classes %s", label, len(y), set(y[:n]))
            out[label] = pd.Series(np.nan, index=names)
            continue
        forest = RandomForestClassifier(
            n_estimators=n_estimators, min_samples_leaf=5, n_jobs=1, random_state=random_state
        ).fit(X[:n], y[:n])
        mdi = forest.feature_importances_
        out[label] = pd.Series({f: float(mdi[cols].sum()) for f, cols in blocks.items()})
    frame = pd.DataFrame(out, index=names)
    frame.index.name = "feature"
    return frame


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p))


def _proba(model, X: np.ndarray) -> np.ndarray:
    classes = list(model.classes_)
    return model.predict_proba(X)[:, classes.index(1)]


def permutation_fold(
    fold: tuple[int, np.ndarray, np.ndarray, dict],
    *,
    X: np.ndarray,
    y: np.ndarray,
    blocks: dict[str, np.ndarray],
    estimator: Any,
    n_repeats: int,
) -> tuple[float, dict[str, list[float]]]:
    """One fold of :func:`permutation_importance_oos` (a Dask task): fit on the train rows, the
    unpermuted test AUC, then each feature's block permuted ``n_repeats`` times.

    Parameters
    ----------
    fold : (int, ndarray, ndarray, dict)
        The fold's number, its train rows, its test rows (positions in ``X``) and the state of
        the random stream (``Generator.bit_generator.state``) the fold's permutations are
        drawn from.
    X : ndarray
        The encoded entry features with the noise probe as last column.
    y : ndarray of 0/1
    blocks : dict of str -> ndarray
        Feature -> its columns of ``X`` (permuted together).
    estimator : estimator or callable
        See :func:`research.dataset.fresh_estimator`.
    n_repeats : int

    Returns
    -------
    (float, dict of str -> list of float)
        The base AUC and, per feature, its ``n_repeats`` AUC drops.
    """
    _, train, test, state = fold
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    rng = np.random.Generator(bit_generator)
    model = fresh_estimator(estimator).fit(X[train], y[train])
    base = _auc(y[test], _proba(model, X[test]))
    drops: dict[str, list[float]] = {}
    for f, cols in blocks.items():
        drops[f] = []
        for _ in range(n_repeats):
            Xp = X[test].copy()
            Xp[:, cols] = Xp[rng.permutation(len(test))][:, cols]  # block moves together
            drops[f].append(base - _auc(y[test], _proba(model, Xp)))
    return base, drops


def _design_with_probe(
    features: pd.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The encoded entry features with the standard-normal noise probe as last column (drawn
    from ``rng`` first), and each feature's block of columns."""
    names, X = _entry_design(features)
    X = np.column_stack([X, rng.standard_normal(len(X))])
    return X, {**feature_blocks(names), NOISE: np.array([X.shape[1] - 1])}


def _fold_tasks(
    data: ClosedTrades, splitter: Any, rng: np.random.Generator, n_draws: int
) -> list[tuple[int, np.ndarray, np.ndarray, dict]]:
    """The usable folds of ``splitter`` on ``data``, each with the random state its
    ``n_draws`` permutations start from (see :func:`permutation_fold`)."""
    y, tasks = data.y, []
    for k, (train, test) in enumerate(splitter.split(data.signal_times, data.exit_times)):
        if len(np.unique(y[test])) < 2 or len(np.unique(y[train])) < 2:
            logger.info("fold with %d test rows skipped: one class", len(test))
            continue
        # the folds draw their permutations from one stream, one fold after the other: each
        # fold gets the stream's state where it starts, and the stream is moved past the
        # fold's draws here (the same draws, cheap) -- the numbers do not depend on where or
        # in which order the folds run
        tasks.append((k, train, test, rng.bit_generator.state))
        for _ in range(n_draws):
            rng.permutation(len(test))
    if len(tasks) < 2:
        raise InsufficientDataError(
            f"only {len(tasks)} usable out-of-sample fold(s). Fix: pass more rows, lower "
            "n_splits or the splitter's min_train_size."
        )
    return tasks


def _against_probe(results: list, alpha: float) -> pd.DataFrame:
    """The importance table of :func:`permutation_importance_oos` from its folds' results:
    paired by fold against the noise probe, t-test p-values and BH q-values."""
    bases = [base for base, _ in results]
    draws = {f: [d for _, fold in results for d in fold[f]] for f in results[0][1]}
    per_fold = [{f: float(np.mean(drops)) for f, drops in fold.items()} for _, fold in results]
    folds = pd.DataFrame(per_fold)  # rows = folds, columns = features
    diff = folds.sub(folds[NOISE], axis=0)
    n = len(folds)
    se_diff = diff.std(ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff.mean() / se_diff
    p = pd.Series(stats.t.sf(t.fillna(0.0), df=n - 1), index=diff.columns)
    p[(se_diff == 0) & (diff.mean() > 0)] = 0.0  # identical positive gain in every fold
    p[NOISE] = 1.0
    q = pd.Series(bh_qvalues(p.drop(NOISE).to_numpy()), index=p.drop(NOISE).index)
    q[NOISE] = 1.0
    out = pd.DataFrame(
        {
            "mean": folds.mean(),
            "std": pd.Series({f: float(np.std(v, ddof=1)) for f, v in draws.items()}),
            "se": folds.std(ddof=1) / np.sqrt(n),
            "n_folds": n,
            "diff_vs_probe": diff.mean(),
            "se_diff": se_diff,
            "p_value": p,
            "q_value": q,
        }
    )
    gain = out["diff_vs_probe"] > 0
    out["beats_probe"] = gain & (out["diff_vs_probe"] - 2 * out["se_diff"] > 0)
    out["beats_probe_fdr"] = gain & (out["q_value"] <= alpha)
    out["base_auc"] = float(np.mean(bases))
    out.index.name = "feature"
    return out


def permutation_importance_oos(
    data: ClosedTrades,
    *,
    estimator: Any = None,
    splitter: Any = None,
    n_splits: int = 5,
    n_repeats: int = 5,
    alpha: float = 0.05,
    random_state: int = 0,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Permutation importance on purged walk-forward test folds, against a noise probe.

    A standard-normal column ``__noise__`` is added to the entry features. Each fold's model
    is fitted on its training rows only; on the test fold each feature (a one-hot block as a
    whole) is permuted ``n_repeats`` times and its importance is the **drop in ROC AUC**
    (AUC ranks, so it is unaffected by the fold model's calibration; units: AUC points).

    Comparison with the probe is paired by fold: ``d_k`` = the feature's mean drop in fold
    ``k`` minus the probe's. ``beats_probe``: ``mean(d) - 2 se(d) > 0`` (one-sided, about 5 %
    false positives per noise feature: over ~40 features expect 1-2 on a market without an
    edge). ``beats_probe_fdr``: the stricter rule, a one-sided t-test over folds adjusted by
    Benjamini-Hochberg over all features, ``q_value <= alpha`` (needs many folds or a strong
    edge to pass). A constant feature (importance 0 in every fold) never beats the probe.

    Parameters
    ----------
    data : ClosedTrades
        Entry features (``after_entry`` columns are refused), labels and the times of the
        purge (:class:`research.dataset.ClosedTrades`).
    estimator : estimator or callable, optional
        An unfitted classifier with ``predict_proba`` (cloned per fold) or a callable
        returning one; default :func:`default_model` with ``random_state``.
    splitter : object with ``split(signal_times, exit_times)``, optional
        Default ``PurgedWalkForward(n_splits, min_train_size=50)``.
    n_splits, n_repeats : int
        Walk-forward folds (folds with one class in test are skipped); permutations per fold.
    alpha : float
        False discovery rate of ``beats_probe_fdr``.
    random_state : int
        Seeds the probe, the permutations and the default model.
    scheduler : str or None
        Where the folds run, one task each (:func:`permutation_fold`), as in
        :func:`research.analysis.evaluation.walk_forward_evaluation`; the same result
        wherever they run. On a cluster ``estimator`` must pickle (a lambda may not).

    Returns
    -------
    DataFrame
        Indexed by feature (``__noise__`` included), sorted by ``mean`` descending: ``mean``,
        ``std`` (over folds x repeats), ``se`` (of the fold means), ``n_folds``,
        ``diff_vs_probe`` (mean of ``d``), ``se_diff``, ``p_value``, ``q_value``,
        ``beats_probe``, ``beats_probe_fdr``, ``base_auc`` (mean unpermuted test AUC).
        Rows never in a test fold (the first walk-forward block) do not count.

    Raises
    ------
    research.distributed.TaskError
        A fold's fit or scoring failed: names the fold; the error is its ``__cause__``.
    TypeError
        ``estimator`` cannot be pickled for the Dask workers (the message says the fix).
    """
    data.require_rows("permutation_importance_oos")
    rng = np.random.default_rng(random_state)
    X, blocks = _design_with_probe(data.features, rng)
    splitter = splitter or PurgedWalkForward(n_splits, min_train_size=50)
    tasks = _fold_tasks(data, splitter, rng, len(blocks) * n_repeats)
    shared = {
        "X": X,
        "y": data.y,
        "blocks": blocks,
        "estimator": estimator or functools.partial(default_model, random_state),
        "n_repeats": n_repeats,
    }
    results = map_tasks(
        permutation_fold,
        tasks,
        scheduler=scheduler,
        progress=False,
        desc="permutation importance folds",
        shared=shared,
        must_travel=("estimator",),
    )
    out = _against_probe(results, alpha)
    n = int(out["n_folds"].iloc[0])
    logger.info("permutation importance: %d folds, %d beat the probe", n, out.beats_probe.sum())
    return out.sort_values("mean", ascending=False)


def rank_stability(evolution: pd.DataFrame, *, method: str = "spearman") -> pd.DataFrame:
    """Rank correlation of importances between consecutive columns (sizes) of an evolution.

    Parameters
    ----------
    evolution : DataFrame
        Output of :func:`impurity_evolution` (rows = features, columns = sizes).
    method : {'spearman', 'kendall'}

    Returns
    -------
    DataFrame
        One row per consecutive pair: ``from``, ``to``, ``spearman``, ``kendall`` (both
        always given), ``correlation`` (the one named by ``method``) and ``top5_overlap``
        (share of the top-5 features the two sizes share). NaN where a column is NaN.
    """
    if method not in ("spearman", "kendall"):
        raise ValueError(f"method {method!r} unknown. Fix: use 'spearman' or 'kendall'.")
    if evolution.shape[1] < 2:
        raise ValueError("need at least two sizes (columns). Fix: pass impurity_evolution(...).")
    rows = []
    cols = list(evolution.columns)
    for a, b in zip(cols[:-1], cols[1:], strict=True):
        x, z = evolution[a], evolution[b]
        ok = x.notna().all() and z.notna().all()
        rho = stats.spearmanr(x, z).statistic if ok else np.nan
        tau = stats.kendalltau(x, z).statistic if ok else np.nan
        top = len(set(x.nlargest(5).index) & set(z.nlargest(5).index)) / 5 if ok else np.nan
        rows.append({"from": a, "to": b, "spearman": rho, "kendall": tau, "top5_overlap": top})
    frame = pd.DataFrame(rows)
    frame["correlation"] = frame[method]
    return frame
