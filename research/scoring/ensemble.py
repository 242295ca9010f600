"""``EnsembleScorer``: random forest + gradient boosting + neural net, averaged, then calibrated.

Seed, "Ensemble Model Architecture": p = mean(P_rf, P_gb, P_nn); isotonic calibration when there
are 50+ training records; ``score = 100 * p_cal``. Where the seed calibrates on the rows the
members were trained on (which makes the calibrator trust over-fitted probabilities), the
default here is the rigorous rule of DESIGN §6: the calibrator is fitted on **out-of-fold,
time-ordered** predictions (purged walk-forward, :mod:`research.splits`). The seed's rule stays
available (``calibration="in_sample"``) so that reports can compare both.

Gradient boosting is scikit-learn's ``HistGradientBoostingClassifier`` (20-100x faster to train
than the classic one, handles NaN natively); the net is an MLP behind a ``StandardScaler``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from research.features import FEATURES
from research.scoring.encode import (
    encode,
    encoded_columns,
    entry_features,
    inf_as_missing,
    is_extra,
)
from research.scoring.isotonic import centered_isotonic
from research.scoring.warm import (
    WARM_EPOCHS,
    adam_net,
    renewed_forest,
    serial,
    threads,
    trained_on,
)
from research.splits import PurgedWalkForward, oof_predict

logger = logging.getLogger(__name__)

CALIBRATIONS = ("prequential", "oof", "in_sample", "none")


class EnsembleScorer(ClassifierMixin, BaseEstimator):
    """Calibrated ensemble classifier of P(win); ``score_signals`` gives 0-100.

    Parameters
    ----------
    n_estimators : int
        Trees of the random forest.
    gb_max_iter : int
        Boosting iterations of the gradient boosting member.
    hidden_layer_sizes : tuple of int
        The MLP's layers.
    nn_enabled : bool
        Include the neural net (seed key ``ml:{strategy}:nn_enabled``).
    calibration : {'prequential', 'oof', 'in_sample', 'none'}
        ``'prequential'`` (default): isotonic on the scores the rows were *decided on* by
        earlier models (``fit(decision_raw=...)``, out of sample by construction: each was
        scored before its outcome was known, by a model that had not seen it), once
        ``min_prequential`` rows have one; until then, and without them, as ``'oof'``.
        ``'oof'``: isotonic on out-of-fold walk-forward predictions (K extra fits);
        ``'in_sample'``: the seed's rule; ``'none'``: raw averaged probabilities.
    min_calibration_records : int
        Seed: calibrate only with 50+ training records.
    min_prequential : int
        Rows with a decision-time score needed to calibrate prequentially.
    prequential_window : int
        Prequential calibration uses the latest rows with a decision-time score, at most this
        many (scores of models close to the new one).
    n_splits : int
        Walk-forward folds for the out-of-fold predictions.
    allow_after_entry : bool
        Accept ``after_entry`` (lifecycle) features — only to demonstrate leakage.
    min_samples_leaf : int
        Rows per leaf of the forest (the boosting member takes twice that), at most a quarter
        of the training rows: large leaves keep noisy labels from being learnt.
    refresh : float
        Share of the forest's trees a warm fit (``fit(warm_from=...)``) replaces with trees
        grown on all current rows (the oldest go); the net trains :data:`WARM_EPOCHS` more
        epochs on all rows from where it was; the boosting member (cheap) is refitted.
        0 turns warm fits off.
    full_refit_growth : float
        A warm fit becomes a full fit once the rows have grown by this share since the last
        full fit (no tree is then older than that share of the data).
    n_jobs : int or None
        Threads that grow the forest's trees (joblib; the result does not depend on it).
        None: one inside a Dask worker (its cores belong to the other tasks), else every core.
    random_state : int

    Attributes
    ----------
    members_ : dict
        Fitted pipelines ``{'rf', 'gb'[, 'nn']}``.
    calibrator_ : IsotonicRegression or None
    calibration_ : str
        What was actually done (``'none'`` when there were too few records).
    feature_names_ : list of str or None
        Registered features used, when fitted on a DataFrame.
    oof_scores_ : ndarray
        Per training row, an out-of-sample score (0-100) under *this* model's calibration:
        the decision-time score re-mapped (``'prequential'``) or the score of the fold model
        that did not see it (``'oof'``); NaN for rows with none (decided by the heuristic, the
        first walk-forward block) and for the other calibrations. What thresholds are fitted
        on (the isotonic map itself saw them).
    fit_path_ : {'full', 'warm'}
        Whether the forest was grown anew or renewed from ``warm_from``.
    full_fit_rows_ : int
        Training rows at the last full fit (carried through warm fits).
    n_features_in_, classes_
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        gb_max_iter: int = 200,
        hidden_layer_sizes: tuple[int, ...] = (32, 16),
        nn_enabled: bool = True,
        calibration: str = "prequential",
        min_calibration_records: int = 50,
        n_splits: int = 5,
        allow_after_entry: bool = False,
        min_samples_leaf: int = 50,
        min_prequential: int = 200,
        prequential_window: int = 2000,
        refresh: float = 0.1,
        full_refit_growth: float = 0.2,
        n_jobs: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.gb_max_iter = gb_max_iter
        self.hidden_layer_sizes = hidden_layer_sizes
        self.nn_enabled = nn_enabled
        self.calibration = calibration
        self.min_calibration_records = min_calibration_records
        self.n_splits = n_splits
        self.allow_after_entry = allow_after_entry
        self.min_samples_leaf = min_samples_leaf
        self.min_prequential = min_prequential
        self.prequential_window = prequential_window
        self.refresh = refresh
        self.full_refit_growth = full_refit_growth
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _members(self, y: np.ndarray) -> dict:
        """Unfitted member pipelines for training labels ``y`` (the MLP's solver depends on them).

        The same settings serve the final fit and every out-of-fold fit of the calibration.
        """
        rs = self.random_state
        # add_indicator: a missing value is information of its own (the seed's "(Missing)")
        imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        # Trading labels are mostly noise (an oracle's AUC is ~0.6): big leaves and shallow
        # trees, or the members learn the noise. Measured on the known-answer market (half of
        # each strategy's trades to train, the later half to test): leaves of 50 rows with 30 %
        # of the features per split lifted the forest's AUC from 0.50-0.54 to 0.54-0.59. A
        # leaf is at most a quarter of the rows, so the seed's first fit (50 rows) can split.
        leaf = int(np.clip(len(y) // 4, 5, self.min_samples_leaf))
        members = {
            "rf": make_pipeline(
                clone(imputer),
                RandomForestClassifier(
                    n_estimators=self.n_estimators,
                    min_samples_leaf=leaf,
                    max_features=0.3,
                    n_jobs=threads(self.n_jobs),
                    random_state=rs,
                ),
            ),
            "gb": make_pipeline(
                clone(imputer),
                HistGradientBoostingClassifier(
                    max_iter=self.gb_max_iter,
                    learning_rate=0.03,
                    max_depth=3,
                    min_samples_leaf=int(np.clip(len(y) // 4, 5, 2 * self.min_samples_leaf)),
                    l2_regularization=5.0,
                    random_state=rs,
                ),
            ),
        }
        if self.nn_enabled:
            # Converge, never stop at max_iter (a ConvergenceWarning). Adam with early stopping
            # on a held-out 10 % needs a validation split worth the name: from 500 rows (>= 50
            # validation rows; the smallest walk-forward fold then still has ~80 rows) with 50+
            # of the rarer class (the stratified split needs >= 2 per class in every fold). It
            # stops after 10 epochs without a better validation accuracy, typically after
            # 20-40 epochs of the 200 allowed. The validation rows are drawn at random (a
            # stratified shuffle), not the latest 10 %: acceptable for a stopping rule, the
            # calibration stays out-of-fold in time. Below that, e.g. the seed's first
            # retrain at 50 outcomes, L-BFGS (scikit-learn's advice for small data sets): full
            # batch, deterministic, converges in < 100 iterations on up to 500 rows.
            counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2)
            if len(y) >= 500 and counts.min() >= 50:
                nn = MLPClassifier(
                    hidden_layer_sizes=self.hidden_layer_sizes,
                    alpha=1e-3,
                    max_iter=200,
                    early_stopping=True,
                    validation_fraction=0.1,
                    n_iter_no_change=10,
                    random_state=rs,
                )
            else:
                nn = MLPClassifier(
                    hidden_layer_sizes=self.hidden_layer_sizes,
                    alpha=1e-3,
                    solver="lbfgs",
                    max_iter=500,
                    random_state=rs,
                )
            members["nn"] = make_pipeline(clone(imputer), StandardScaler(), nn)
        return members

    def _matrix(self, X, *, fitting: bool) -> np.ndarray:
        # A frame with registered feature columns is encoded through the registry (extra
        # columns such as ids are ignored); anything else is taken as a plain numeric matrix.
        if fitting:
            registered = isinstance(X, pd.DataFrame) and any(
                c in FEATURES or is_extra(c) for c in X.columns
            )
            self.feature_names_ = (
                entry_features(X, allow_after_entry=self.allow_after_entry) if registered else None
            )
        if self.feature_names_ is not None:
            return encode(X, self.feature_names_)
        return X

    @staticmethod
    def _average(members: dict, X: np.ndarray) -> np.ndarray:
        return np.mean([_p_win(m, X) for m in members.values()], axis=0)

    # ------------------------------------------------------------------ estimator API
    def fit(
        self, X, y, *, signal_times=None, exit_times=None, decision_raw=None, warm_from=None
    ) -> EnsembleScorer:
        """Fit the members on all rows, then the calibrator.

        Parameters
        ----------
        X : DataFrame or array
        y : array of {0, 1}
            1 = win.
        signal_times, exit_times : array of datetime, optional
            One per row: order the walk-forward folds and purge rows whose outcome was not yet
            known; without them rows are taken as time-ordered and outcomes as known at once
            (no purge) — fine for i.i.d. tests, not for trading data.
        decision_raw : array of float, optional
            Per row, the raw (uncalibrated) P(win), 0-1, the row was decided on by an earlier
            model (:meth:`predict_raw` at decision time); NaN where none did (heuristic era).
            What ``calibration='prequential'`` calibrates on.
        warm_from : EnsembleScorer, optional
            The model in force, fitted with the same settings on an earlier prefix of these
            rows: its forest is renewed (``refresh``) instead of regrown, unless the rows grew
            by ``full_refit_growth`` since its last full fit or its features differ. It is
            not modified.
        """
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        matrix = self._matrix(X, fitting=True)
        matrix, y = validate_data(
            self, matrix, y, ensure_all_finite=False, ensure_min_samples=2, reset=True
        )
        matrix = inf_as_missing(matrix)  # a plain matrix too: inf is missing (scoring.encode)
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {kind}. "
                "Fix: pass outcomes as win=1 / loss=0."
            )
        if len(np.unique(y)) != 2:
            raise ValueError(
                f"EnsembleScorer needs both classes (win=1, loss=0); got only "
                f"{np.unique(y).tolist()}. Fix: wait for both wins and losses before training."
            )
        self.classes_, y = np.unique(y, return_inverse=True)
        members = self._members(y)
        fitted: set[str] = set()
        if self._can_warm(warm_from, len(y)):
            generation = warm_from.generation_ + 1
            members["rf"] = renewed_forest(
                warm_from.members_["rf"], members["rf"], matrix, y, self.refresh, generation
            )
            fitted.add("rf")
            net = warm_from.members_.get("nn")
            if net is not None and adam_net(net) and adam_net(members.get("nn")):
                members["nn"] = trained_on(net, matrix, y, WARM_EPOCHS)
                fitted.add("nn")
            self.fit_path_, self.full_fit_rows_ = "warm", warm_from.full_fit_rows_
            self.generation_ = generation
        else:
            self.fit_path_, self.full_fit_rows_, self.generation_ = "full", len(y), 0
        for key, member in members.items():
            if key not in fitted:
                member.fit(matrix, y)
        self.members_ = serial(members)
        self.calibrator_, self.calibration_ = None, "none"
        self.oof_scores_ = np.full(len(y), np.nan)
        if self.calibration != "none" and len(y) >= self.min_calibration_records:
            raw, target, seen, how = self._calibration_data(
                matrix, y, signal_times, exit_times, decision_raw
            )
            if len(raw) >= 20 and len(np.unique(target)) == 2:
                self.calibrator_ = centered_isotonic(raw, target)
                self.calibration_ = how
                if seen is not None:  # calibrated out-of-sample scores of the training rows
                    self.oof_scores_[seen] = 100.0 * self.calibrator_.predict(raw)
            else:
                logger.warning("too few out-of-sample rows (%d) to calibrate; raw scores", len(raw))
        return self

    def _can_warm(self, previous, n_rows: int) -> bool:
        """A warm fit renews ``previous``'s forest: same settings and features, little new data."""
        if previous is None or self.refresh <= 0 or not hasattr(previous, "generation_"):
            return False
        same = (
            previous.get_params() == self.get_params()
            and previous.feature_names_ == self.feature_names_
            and previous.n_features_in_ == self.n_features_in_
        )
        grown = n_rows - previous.full_fit_rows_ >= self.full_refit_growth * previous.full_fit_rows_
        return same and not grown

    def _calibration_data(self, matrix, y, signal_times, exit_times, decision_raw):
        """Raw scores, outcomes, their rows and the rule: what the calibrator is fitted on."""
        if self.calibration == "in_sample":  # the seed's rule
            return self._average(self.members_, matrix), y, None, "in_sample"
        n = len(y)
        if self.calibration == "prequential" and decision_raw is not None:
            raw = np.asarray(decision_raw, dtype=np.float64)
            if raw.shape != (n,):
                raise ValueError(f"decision_raw has {raw.shape} values for {n} rows")
            seen = np.isfinite(raw)
            # the most recent rows only: scores of models close to this one (measured on rows
            # with a known P(win): RMSE 0.060-0.072 with the last 2,000 vs 0.070-0.092 with
            # all 4,000 and 0.064-0.080 out of fold)
            seen[np.flatnonzero(seen)[: -self.prequential_window]] = False
            if seen.sum() >= self.min_prequential and len(np.unique(y[seen])) == 2:
                return raw[seen], y[seen], seen, "prequential"
        if signal_times is None:
            signal_times = pd.date_range("2000-01-01", periods=n, freq="min", tz="UTC")
            exit_times = signal_times
        elif exit_times is None:
            raise ValueError("exit_times must be given with signal_times (to purge the folds)")
        splitter = PurgedWalkForward(self.n_splits, min_train_size=max(20, n // 10))
        members = self._members(y)

        def factory():
            return _Averaged({k: clone(m) for k, m in members.items()})

        try:
            oof = oof_predict(factory, matrix, y, splitter, signal_times, exit_times)
        except ValueError as exc:  # too few rows for any fold: no calibration
            logger.warning("no out-of-fold predictions (%s)", exc)
            return np.empty(0), np.empty(0), None, "oof"
        seen = ~np.isnan(oof)
        return oof[seen], y[seen], seen, "oof"

    def predict_raw(self, X) -> np.ndarray:
        """Uncalibrated P(win), 0-1: the members' average (what prequential calibration maps)."""
        check_is_fitted(self, "members_")
        matrix = self._matrix(X, fitting=False)
        matrix = validate_data(self, matrix, ensure_all_finite=False, reset=False)
        return self._average(self.members_, inf_as_missing(matrix))

    def scores_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Scores 0-100 of raw P(win) values (:meth:`predict_raw`) under this calibration."""
        p = np.asarray(raw, dtype=np.float64)
        if self.calibrator_ is not None:
            p = self.calibrator_.predict(p)
        return 100.0 * np.clip(p, 0.0, 1.0)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated ``[[P(loss), P(win)]]`` per row."""
        p = self.scores_from_raw(self.predict_raw(X)) / 100.0
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        won = self.predict_proba(X)[:, 1] > 0.5  # a tie goes to class 0, as argmax does
        return self.classes_[won.astype(int)]

    def score_signals(self, X) -> np.ndarray:
        """Scores 0-100 (``100 * p_cal``), the seed's ``score_signal`` for many rows."""
        return 100.0 * self.predict_proba(X)[:, 1]

    def encoded_feature_names(self) -> list[str]:
        """Columns of the model matrix (one-hot blocks expanded)."""
        check_is_fitted(self, "members_")
        if self.feature_names_ is None:
            return [f"x{i}" for i in range(self.n_features_in_)]
        return encoded_columns(self.feature_names_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags


def _p_win(model, X) -> np.ndarray:
    """P(class 1); a member fitted on one class only (a tiny fold) predicts that class."""
    proba = model.predict_proba(X)
    if proba.shape[1] == 2:
        return proba[:, 1]
    return np.full(len(proba), float(model.classes_[0] == 1))


class _Averaged(ClassifierMixin, BaseEstimator):
    """The unweighted average of member pipelines (used for out-of-fold predictions)."""

    def __init__(self, members: dict) -> None:
        self.members = members

    def fit(self, X, y):
        self.members_ = serial({k: m.fit(X, y) for k, m in self.members.items()})
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = EnsembleScorer._average(self.members_, X)
        return np.column_stack([1.0 - p, p])
