"""Signals explorer, compute: score signals honestly, split them at a threshold.

The explorer answers "what if the bot had executed every signal scoring at least T?" on the
phantom outcomes of :func:`research.pipeline.run_signals_and_phantoms`. It is a what-if on
*closed* signals, not a replay of the online loop (:mod:`research.replay` is that): every
signal is judged by its phantom outcome (R without execution costs, as the seed tracks them),
so both sides of the split compare on the same footing.

* :func:`signal_scores` gives each signal a score 0-100 that was not fitted on its own outcome:
  out-of-fold ensemble predictions on purged walk-forward folds (``'walk_forward'``), the seed's
  rule-based fallback (``'heuristic'``), or the strategy's own ``qscore`` (``'qscore'``).
  In-sample scores would flatter any threshold, so none is offered.
* :func:`explorer_frame` joins signals, outcomes, context features and scores into one frame of
  closed, scored signals; :func:`select` filters it by symbol, strategy and dates.
* :func:`threshold_table` and :func:`threshold_sweep` split that frame at thresholds into
  ``executed`` (score >= T), ``phantom`` (below) and ``all``: count, wins, win rate with its
  Wilson interval, mean R with a normal interval, total R.

The interactive view of the same numbers (ipywidgets) is :func:`research.widgets.signal_explorer`;
the figures are :mod:`research.plots.thresholds`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.evaluation import walk_forward_evaluation
from research.analysis.stats import CELL_STATS, cell_stats
from research.dataset import ClosedTrades
from research.errors import TooFewRowsError
from research.scoring import EnsembleScorer, heuristic_scores

logger = logging.getLogger(__name__)

SCORE_SOURCES: tuple[str, ...] = ("walk_forward", "heuristic", "qscore")
SETS: tuple[str, ...] = ("executed", "phantom", "all")
#: :data:`CELL_STATS` with the count named for what it counts
TABLE_COLUMNS: tuple[str, ...] = ("signals", *CELL_STATS[1:])
ALL = "all"  # the widget's "no filter" choice of a dropdown
_SIGNAL_COLUMNS = (S.SIGNAL_ID, S.SYMBOL, S.STRATEGY, S.SIDE, S.SIGNAL_TIME)
_OUTCOME_COLUMNS = (
    S.SIGNAL_ID,
    S.EXIT_TIME,
    S.EXIT_REASON,
    S.OUTCOME,
    S.PNL_PERCENT,
    S.REALIZED_RR,
    S.CENSORED,
)


# --------------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------------
def signal_scores(
    signals: pd.DataFrame,
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    source: str = "walk_forward",
    n_splits: int = 5,
    min_train_size: int = 100,
    model: EnsembleScorer | None = None,
) -> pd.Series:
    """A score (0-100) per signal that never saw the signal's own outcome.

    Parameters
    ----------
    signals, features, outcomes : DataFrame
        As produced by :func:`research.pipeline.run_signals_and_phantoms` (``features``
        indexed by ``signal_id``).
    source : {'walk_forward', 'heuristic', 'qscore'}
        ``'walk_forward'``: per strategy, the calibrated ensemble fitted on purged walk-forward
        folds scores only the next block (out of fold), so the first block and strategies with
        too few closed signals stay NaN; censored signals (no outcome) are not scored.
        ``'heuristic'``: the seed's rule-based fallback score, for every signal.
        ``'qscore'``: the strategy's own rule-based quality score, for every signal.
    n_splits, min_train_size : int
        Walk-forward folds and the fewest training rows of a fold.
    model : EnsembleScorer, optional
        The unfitted ensemble every fold clones (``'walk_forward'``). Default: 100 trees,
        100 boosting iterations, no neural net, ``n_splits`` calibration folds.

    Returns
    -------
    Series
        Float scores 0-100 named ``ml_score``, indexed by ``signal_id`` in the order of
        ``signals``; NaN where no honest score exists.
    """
    if source not in SCORE_SOURCES:
        raise ValueError(f"unknown score source {source!r}. Fix: use one of {list(SCORE_SOURCES)}.")
    S.require_columns(signals, (S.SIGNAL_ID, S.STRATEGY, S.SIGNAL_TIME), "signals")
    ids = pd.Index(signals[S.SIGNAL_ID], name=S.SIGNAL_ID)
    if source == "qscore":
        S.require_columns(signals, (S.QSCORE,), "signals")
        return pd.Series(signals[S.QSCORE].to_numpy(np.float64), index=ids, name=S.ML_SCORE)
    _require_features(features, ids)
    if source == "heuristic":
        return _heuristic_scores(signals, features.loc[ids], ids)
    if model is None:
        model = EnsembleScorer(
            n_estimators=100, gb_max_iter=100, nn_enabled=False, n_splits=n_splits
        )
    return _walk_forward_scores(
        signals, features, outcomes, ids, model, n_splits=n_splits, min_train_size=min_train_size
    )


def _heuristic_scores(signals: pd.DataFrame, feats: pd.DataFrame, ids: pd.Index) -> pd.Series:
    """The seed's rule-based score of every signal, each strategy by its own rule."""
    strat = signals[S.STRATEGY].to_numpy()
    values = np.full(len(ids), np.nan)
    for name in pd.unique(strat):  # each strategy's own rule (range: mean reversion)
        rows = strat == name
        values[rows] = heuristic_scores(feats.loc[rows], strategy=name)
    return pd.Series(values, index=ids, name=S.ML_SCORE)


def _walk_forward_scores(
    signals: pd.DataFrame,
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    ids: pd.Index,
    model: EnsembleScorer,
    *,
    n_splits: int,
    min_train_size: int,
) -> pd.Series:
    """Out-of-fold ensemble scores per strategy (NaN where no fold could score a signal)."""
    S.require_columns(outcomes, (S.SIGNAL_ID, S.OUTCOME, S.EXIT_TIME, S.CENSORED), "outcomes")
    scores = pd.Series(np.nan, index=ids, name=S.ML_SCORE)
    closed = outcomes.loc[~outcomes[S.CENSORED].to_numpy(bool)].set_index(S.SIGNAL_ID)
    for strategy, group in signals.groupby(S.STRATEGY, sort=True):
        keep = group[S.SIGNAL_ID].isin(closed.index).to_numpy()
        rows = group.loc[keep]
        sid = rows[S.SIGNAL_ID].to_numpy()
        try:
            _, preds = walk_forward_evaluation(
                ClosedTrades(
                    features=features.loc[sid],
                    y=(closed.loc[sid, S.OUTCOME] == "win").to_numpy(int),
                    signal_times=rows[S.SIGNAL_TIME],
                    exit_times=closed.loc[sid, S.EXIT_TIME],
                ),
                estimator=model,
                n_splits=n_splits,
                min_train_size=min_train_size,
                return_predictions=True,
            )
        except TooFewRowsError as exc:
            # only the splitter's "too few closed signals for one fold" means "no honest
            # score"; any other error (a model's, the data's) must still surface
            logger.warning("strategy %s: no out-of-fold scores: %s", strategy, exc)
            continue
        preds = preds.loc[preds["model"] == "ensemble"]
        scores.loc[sid[preds["row"].to_numpy()]] = 100.0 * preds["p"].to_numpy(np.float64)
        logger.info(
            "strategy %s: %d of %d closed signals scored out of fold in %d folds",
            strategy,
            len(preds),
            len(sid),
            preds["fold"].nunique(),
        )
    return scores


def _require_features(features: pd.DataFrame, ids: pd.Index) -> None:
    missing = ids.difference(features.index)
    if len(missing):
        raise S.SchemaError(
            f"features lack {len(missing)} signal(s): {S._rows_preview(missing)}. Fix: pass the "
            "features of the same signals, indexed by signal_id (research.build_features)."
        )


# --------------------------------------------------------------------------------------------
# the explorer frame
# --------------------------------------------------------------------------------------------
def explorer_frame(
    signals: pd.DataFrame,
    outcomes: pd.DataFrame,
    scores: pd.Series,
    features: pd.DataFrame | None = None,
    *,
    symbols: Sequence[str] | str | None = None,
    strategies: Sequence[str] | str | None = None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Closed, scored signals with their outcome and context: the explorer's only data.

    Parameters
    ----------
    signals, outcomes : DataFrame
        Signals and their phantom outcomes; censored signals (no outcome yet) are left out.
    scores : Series
        Score 0-100 per ``signal_id`` (:func:`signal_scores`); unscored (NaN) signals are left
        out, and so are signals missing from ``scores``.
    features : DataFrame, optional
        Indexed by ``signal_id``; adds ``session`` and ``volatility_regime`` (needed by the
        qscore buckets of :mod:`research.thresholds`).
    symbols, strategies, start, end :
        Filters, see :func:`select` (an unknown symbol or strategy raises a fix-it error).

    Returns
    -------
    DataFrame
        One row per signal in ``signal_time`` order: ``signal_id, symbol, strategy, side,
        signal_time, ml_score`` (0-100), ``exit_time, exit_reason, outcome, pnl_percent``
        (percent of entry), ``realized_rr`` (R, no costs), and the context columns if
        ``features`` was given.
    """
    S.require_columns(signals, _SIGNAL_COLUMNS, "signals")
    S.require_columns(outcomes, _OUTCOME_COLUMNS, "outcomes")
    frame = signals[list(_SIGNAL_COLUMNS)].merge(
        outcomes[list(_OUTCOME_COLUMNS)], on=S.SIGNAL_ID, how="inner", validate="one_to_one"
    )
    frame[S.ML_SCORE] = frame[S.SIGNAL_ID].map(scores.astype(np.float64))
    if features is not None:
        context = [S.SESSION, S.VOLATILITY_REGIME]
        S.require_columns(features, context, "features")
        _require_features(features, pd.Index(frame[S.SIGNAL_ID]))
        for col in context:
            frame[col] = features.loc[frame[S.SIGNAL_ID], col].astype(str).to_numpy()
    n_closed = int((~frame[S.CENSORED].to_numpy(bool)).sum())
    frame = frame.loc[~frame[S.CENSORED].to_numpy(bool) & frame[S.ML_SCORE].notna().to_numpy()]
    logger.info("explorer: %d of %d closed signals have a score", len(frame), n_closed)
    for column, wanted in ((S.SYMBOL, symbols), (S.STRATEGY, strategies)):
        unknown = sorted(set(_as_list(wanted)) - set(signals[column]))
        if unknown:
            raise ValueError(
                f"{column}(s) {unknown} have no signals; available: "
                f"{sorted(set(signals[column]))}. Fix: pick from those."
            )
    frame = frame.drop(columns=[S.CENSORED]).sort_values([S.SIGNAL_TIME, S.SIGNAL_ID])
    return select(
        frame.reset_index(drop=True), symbols=symbols, strategies=strategies, start=start, end=end
    )


def _as_list(value) -> list:
    if value is None or (isinstance(value, str) and value in ("", ALL)):
        return []
    return [value] if isinstance(value, str) else list(value)


def select(
    frame: pd.DataFrame, *, symbols=None, strategies=None, start=None, end=None
) -> pd.DataFrame:
    """Rows of ``frame`` for ``symbols`` and ``strategies`` with ``signal_time`` in a day range.

    ``symbols`` / ``strategies``: a name, a list, or None / ``'all'`` / empty for every one.
    ``start`` and ``end`` are dates (or anything :class:`pandas.Timestamp` reads, UTC), both
    inclusive: ``end`` keeps its whole day. None leaves that side open.
    """
    keep = np.ones(len(frame), dtype=bool)
    for column, wanted in ((S.SYMBOL, symbols), (S.STRATEGY, strategies)):
        values = _as_list(wanted)
        if values:
            keep &= frame[column].isin(values).to_numpy()
    day = frame[S.SIGNAL_TIME].dt.floor("D")
    if start is not None:
        keep &= (day >= _utc_day(start)).to_numpy()
    if end is not None:
        keep &= (day <= _utc_day(end)).to_numpy()
    return frame.loc[keep]


def _utc_day(value) -> pd.Timestamp:
    return S.utc_timestamp(value).floor("D")


# --------------------------------------------------------------------------------------------
# the split at a threshold
# --------------------------------------------------------------------------------------------
def threshold_table(
    frame: pd.DataFrame, threshold: float, *, confidence: float = 0.95
) -> pd.DataFrame:
    """Executed (score >= ``threshold``) vs phantom (below) vs all signals of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        Closed, scored signals with ``ml_score`` (0-100), ``outcome`` and ``realized_rr``
        (:func:`explorer_frame`).
    threshold : float
        Score points, 0-100; a signal scoring exactly the threshold is executed (the seed's
        ``score >= threshold``).
    confidence : float
        Level of the Wilson interval of the win rate and the normal interval of mean R.

    Returns
    -------
    DataFrame
        Index ``set`` = ``executed, phantom, all``; columns ``signals, wins, win_rate`` (share,
        timeouts count as not won), ``wr_low, wr_high`` (Wilson), ``mean_r, r_low, r_high``
        (R per signal and its normal interval), ``total_r`` (R). Rates are NaN for an empty set.
    """
    if not 0 <= threshold <= 100:
        raise ValueError(
            f"threshold is in score points 0-100, got {threshold}. "
            "Fix: e.g. 70 for the seed's static threshold."
        )
    S.require_columns(frame, (S.ML_SCORE, S.OUTCOME, S.REALIZED_RR), "explorer")
    score = frame[S.ML_SCORE].to_numpy(np.float64)
    if np.isnan(score).any():
        raise S.SchemaError(
            f"{int(np.isnan(score).sum())} signal(s) have no ml_score. Fix: build the frame "
            "with explorer_frame(), which leaves unscored signals out."
        )
    won = (frame[S.OUTCOME] == "win").to_numpy(bool)
    r = frame[S.REALIZED_RR].to_numpy(np.float64)
    executed = score >= threshold
    rows = [
        cell_stats(won[keep], r[keep], confidence) for keep in (executed, ~executed, slice(None))
    ]
    table = pd.DataFrame(rows, index=pd.Index(SETS, name="set")).rename(columns={"n": "signals"})
    return table[list(TABLE_COLUMNS)].astype({"signals": np.int64, "wins": np.int64})


def threshold_sweep(
    frame: pd.DataFrame, thresholds=None, *, confidence: float = 0.95
) -> pd.DataFrame:
    """:func:`threshold_table` at every threshold, stacked (the "what if T were..." curve).

    ``thresholds``: score points 0-100, default 0, 5, ..., 100. Returns a tidy frame with
    columns ``threshold, set`` and the table's columns (``set`` in ``executed, phantom,
    all``).
    """
    grid = np.arange(0, 101, 5) if thresholds is None else np.asarray(thresholds, np.float64)
    parts = [
        threshold_table(frame, float(t), confidence=confidence)
        .reset_index()
        .assign(threshold=float(t))
        for t in grid
    ]
    out = pd.concat(parts, ignore_index=True)
    return out[["threshold", "set", *TABLE_COLUMNS]]


def as_qscore_trades(frame: pd.DataFrame) -> pd.DataFrame:
    """The explorer frame as trades for :class:`research.thresholds.QscoreAdapter`.

    The adapter reads the score as ``qscore`` (as the replay feeds it the ML score); the frame
    needs the context columns (``explorer_frame(..., features=...)``).
    """
    S.require_columns(frame, (S.ML_SCORE, S.SESSION, S.VOLATILITY_REGIME), "explorer")
    return frame.assign(**{S.QSCORE: frame[S.ML_SCORE]})
