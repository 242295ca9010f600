"""Time splits: hand-computed folds, purge/embargo properties, out-of-fold predictions."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from research.errors import InsufficientDataError, SplitError, TooFewRowsError
from research.splits import PurgedKFold, PurgedWalkForward, oof_predict, time_train_test_split

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
HOUR = pd.Timedelta("1h")
Fold = tuple[list[int], list[int]]  # train and test positions


def hourly(n=12, hold_hours=3.0):
    """``n`` signals one hour apart, each exiting ``hold_hours`` later."""
    s = pd.Series(pd.date_range(T0, periods=n, freq="h"))
    return s, s + pd.Timedelta(hours=hold_hours)


def folds(splitter, s, e):
    return [(tr.tolist(), te.tolist()) for tr, te in splitter.split(s, e)]


# ------------------------------------------------------------------------------------------
# PurgedWalkForward: hand-computed cases
# ------------------------------------------------------------------------------------------
def test_walk_forward_by_hand():
    # 12 rows at hours 0..11, exit at hour i+3; 4 blocks of 3. Fold 0 tests rows 3-5 (t0 = 3h):
    # no row has exited before 3h, so the fold is empty and skipped. Fold 1 tests 6-8 (t0 = 6h):
    # rows 0-2 exit at 3,4,5 < 6; row 3 exits at exactly 6 -> purged. Fold 2 (t0 = 9h): 0-5.
    s, e = hourly()
    got = folds(PurgedWalkForward(3, min_train_size=1), s, e)
    assert got == [([0, 1, 2], [6, 7, 8]), ([0, 1, 2, 3, 4, 5], [9, 10, 11])]


def test_walk_forward_embargo_by_hand():
    # embargo 1h: exit must be < t0 - 1h: fold 1 exits < 5h -> rows 0,1; fold 2 < 8h -> 0-4.
    s, e = hourly()
    got = folds(PurgedWalkForward(3, min_train_size=1, embargo="1h"), s, e)
    assert got == [([0, 1], [6, 7, 8]), ([0, 1, 2, 3, 4], [9, 10, 11])]
    assert PurgedWalkForward(embargo=pd.Timedelta("1h")).embargo == HOUR


def test_walk_forward_min_and_max_train_size():
    s, e = hourly()
    # fold 1 has 3 train rows, fold 2 has 6: min_train_size=4 keeps only fold 2.
    assert folds(PurgedWalkForward(3, min_train_size=4), s, e) == [
        ([0, 1, 2, 3, 4, 5], [9, 10, 11])
    ]
    # rolling window of the latest 2 known labels.
    got = folds(PurgedWalkForward(3, min_train_size=1, max_train_size=2), s, e)
    assert got == [([1, 2], [6, 7, 8]), ([4, 5], [9, 10, 11])]


def test_walk_forward_skipped_fold_logged(caplog):
    s, e = hourly()
    with caplog.at_level(logging.DEBUG, logger="research.splits"):
        list(PurgedWalkForward(3, min_train_size=1).split(s, e))
    assert any("fold 0 skipped" in r.getMessage() for r in caplog.records)


def test_walk_forward_ties_stay_in_one_block():
    # signals at hours 0,1,1,1,2,3 (exit +30 min), 3 blocks of 2 by position: [0,1] [2,3] [4,5].
    # Rows 1-3 share a time, so the edge moves back: blocks [0] [1,2,3] [4,5].
    s = pd.Series(T0 + HOUR * np.array([0, 1, 1, 1, 2, 3]))
    e = s + pd.Timedelta("30min")
    got = folds(PurgedWalkForward(2, min_train_size=1), s, e)
    assert got == [([0], [1, 2, 3]), ([0, 1, 2, 3], [4, 5])]


def test_walk_forward_block_swallowed_by_ties_is_skipped():
    # hours 0,1,1,1,1,2: blocks by position [0,1] [2,3] [4,5]; both edges move back to row 1,
    # so the middle block is empty (no fold) and the last block holds rows 1-5.
    s = pd.Series(T0 + HOUR * np.array([0, 1, 1, 1, 1, 2]))
    e = s + pd.Timedelta("30min")
    wf = PurgedWalkForward(2, min_train_size=1)
    assert folds(wf, s, e) == [([0], [1, 2, 3, 4, 5])]
    assert wf.get_n_splits(s, e) == 1


def test_walk_forward_nat_exit_never_trained():
    s, e = hourly()
    e[1] = pd.NaT  # still open / censored
    got = folds(PurgedWalkForward(3, min_train_size=1), s, e)
    assert got == [([0, 2], [6, 7, 8]), ([0, 2, 3, 4, 5], [9, 10, 11])]


def test_unsorted_input_maps_back_to_original_positions():
    s, e = hourly(hold_hours=2.5)
    perm = np.random.default_rng(0).permutation(len(s))
    s_shuf, e_shuf = s.iloc[perm].reset_index(drop=True), e.iloc[perm].reset_index(drop=True)
    for splitter in (PurgedWalkForward(3, min_train_size=1), PurgedKFold(4, embargo="1h")):
        expected = folds(splitter, s, e)
        got = [
            (sorted(perm[tr].tolist()), sorted(perm[te].tolist()))
            for tr, te in splitter.split(s_shuf, e_shuf)
        ]
        assert got == expected


def test_time_input_types_agree():
    s, e = hourly()
    expected = folds(PurgedWalkForward(3, min_train_size=1), s, e)
    naive_s = s.dt.tz_localize(None).to_numpy()
    naive_e = e.dt.tz_localize(None).to_numpy()
    paris_s, paris_e = s.dt.tz_convert("Europe/Paris"), e.dt.tz_convert("Europe/Paris")
    for a, b in [
        (pd.DatetimeIndex(s), pd.DatetimeIndex(e)),
        (naive_s, naive_e),
        (list(naive_s), list(naive_e)),
        (paris_s, paris_e),
        (s.dt.as_unit("s"), e.dt.as_unit("ms")),
    ]:
        assert folds(PurgedWalkForward(3, min_train_size=1), a, b) == expected


def test_get_n_splits():
    s, e = hourly()
    wf = PurgedWalkForward(3, min_train_size=1)
    assert wf.get_n_splits() == 3
    assert wf.get_n_splits(s, e) == 2
    assert PurgedKFold(4).get_n_splits(s, e) == 4


@pytest.mark.parametrize(
    "make",
    [
        lambda s, e: PurgedWalkForward(5).split(s, e),  # 12 rows, min_train_size 50
        lambda s, e: PurgedWalkForward(20, min_train_size=1).split(s, e),  # more blocks than rows
        lambda s, e: PurgedWalkForward(3, min_train_size=1, embargo="1D").split(s, e),
        lambda s, e: PurgedKFold(2, embargo="30D").split(s.iloc[:2], e.iloc[:2]),
        lambda s, e: time_train_test_split(s, e, test_size=0.9),
    ],
)
def test_too_few_rows_says_how_to_fix(make):
    s, e = hourly()
    with pytest.raises(TooFewRowsError, match="Fix"):
        make(s, e)


def test_split_errors_are_the_family_and_still_value_errors():
    assert issubclass(TooFewRowsError, SplitError) and issubclass(SplitError, ValueError)
    assert issubclass(TooFewRowsError, InsufficientDataError)


def test_no_fold_error_counts_rows():
    s, e = hourly()
    with pytest.raises(TooFewRowsError, match=r"12 rows.*Fix: lower min_train_size"):
        PurgedWalkForward(5).split(s, e)


def test_bad_inputs_raise():
    s, e = hourly()
    with pytest.raises(SplitError, match="Fix"):
        PurgedWalkForward(3, min_train_size=1).split(s, e.iloc[:-1])
    with pytest.raises(SplitError, match="exit before"):
        PurgedWalkForward(3, min_train_size=1).split(e, s)
    with pytest.raises(SplitError, match="Fix"):
        PurgedKFold(3).split(s.where(s.index != 4), e)  # NaT signal time
    with pytest.raises(SplitError, match="embargo"):
        PurgedKFold(3, embargo=-HOUR)
    with pytest.raises(SplitError, match="embargo"):
        PurgedWalkForward(embargo=3600)  # a bare number is not a duration
    with pytest.raises(SplitError, match="max_train_size"):
        PurgedWalkForward(min_train_size=10, max_train_size=5)
    with pytest.raises(SplitError):
        PurgedKFold(1)
    with pytest.raises(TypeError):
        PurgedWalkForward(3, 1)  # everything after n_splits is keyword-only
    with pytest.raises(AttributeError):
        PurgedWalkForward().n_splits = 2  # frozen


# ------------------------------------------------------------------------------------------
# PurgedKFold and time_train_test_split: hand-computed cases
# ------------------------------------------------------------------------------------------
def test_purged_kfold_by_hand():
    # 12 rows at hours 0..11, exit at i+2; 4 test blocks of 3. Test rows 3-5 span [3h, 7h]:
    # before it only row 0 (exit 2h < 3h) survives; after it rows with signal > 7h: 8-11.
    s, e = hourly(hold_hours=2)
    got = folds(PurgedKFold(4), s, e)
    assert got == [
        ([5, 6, 7, 8, 9, 10, 11], [0, 1, 2]),  # span [0h, 4h]
        ([0, 8, 9, 10, 11], [3, 4, 5]),
        ([0, 1, 2, 3, 11], [6, 7, 8]),  # span [6h, 10h]
        ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11]),  # span [9h, 13h]
    ]


def test_purged_kfold_embargo_by_hand():
    # embargo 2h drops signals in (end, end + 2h] after each test span; nothing before it.
    s, e = hourly(hold_hours=2)
    got = folds(PurgedKFold(4, embargo="2h"), s, e)
    assert got == [
        ([7, 8, 9, 10, 11], [0, 1, 2]),
        ([0, 10, 11], [3, 4, 5]),
        ([0, 1, 2, 3], [6, 7, 8]),
        ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11]),
    ]


def test_purged_kfold_nat_exit_never_trained():
    s, e = hourly(hold_hours=2)
    e[10] = pd.NaT
    got = folds(PurgedKFold(4), s, e)
    assert all(10 not in tr for tr, _ in got)
    assert got[1] == ([0, 8, 9, 11], [3, 4, 5])
    assert got[3] == ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11])  # span ends at max known exit 13h


def test_time_train_test_split_by_hand():
    s, e = hourly()
    train, test = time_train_test_split(s, e)  # last 3 rows; exits < 9h -> rows 0-5
    assert (train.tolist(), test.tolist()) == ([0, 1, 2, 3, 4, 5], [9, 10, 11])
    train, test = time_train_test_split(s, e, test_size=0.25, embargo="1h")
    assert (train.tolist(), test.tolist()) == ([0, 1, 2, 3, 4], [9, 10, 11])
    train, test = time_train_test_split(s, e, test_size=0.3)  # ceil(3.6) = 4 rows
    assert (train.tolist(), test.tolist()) == ([0, 1, 2, 3, 4], [8, 9, 10, 11])


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------
@st.composite
def rows(draw):
    """Signal/exit times in random order, with repeated signal times and censored exits."""
    n, span = draw(st.integers(2, 40)), draw(st.integers(0, 60))  # small span: many ties
    start = draw(st.lists(st.integers(0, span), min_size=n, max_size=n))
    hold = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    censored = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    s = T0 + HOUR * np.array(start)
    e = pd.DatetimeIndex(
        [pd.NaT if c else t + HOUR * h for t, h, c in zip(s, hold, censored, strict=True)]
    )
    return pd.Series(s), pd.Series(e, dtype=s.dtype)


def reference_blocks(s_ns: list[int], n_blocks: int) -> list[list[int]] | None:
    """Positions (as given) of ``n_blocks`` near-equal consecutive blocks in signal-time order,
    larger blocks first, each inner edge moved back to the start of its run of equal times;
    None with fewer rows than blocks. A plain re-statement of the module docstring's rule."""
    n = len(s_ns)
    if n < n_blocks:
        return None
    order = sorted(range(n), key=lambda i: s_ns[i])  # stable: ties keep their given order
    size, extra = divmod(n, n_blocks)
    cuts = [0]
    for k in range(n_blocks):
        cuts.append(cuts[-1] + size + (1 if k < extra else 0))
    for j in range(1, n_blocks):
        while cuts[j] > 0 and s_ns[order[cuts[j] - 1]] == s_ns[order[cuts[j]]]:
            cuts[j] -= 1
    return [sorted(order[cuts[k] : cuts[k + 1]]) for k in range(n_blocks)]


def as_ns(s: pd.Series, e: pd.Series) -> tuple[list[int], list[int | None]]:
    """Signal and exit times in ns since the epoch (None for a censored exit)."""
    exits = [None if pd.isna(x) else pd.Timestamp(x).value for x in e]
    return pd.DatetimeIndex(s).as_unit("ns").asi8.tolist(), exits


def reference_walk_forward(s, e, n_splits, embargo, max_train) -> list[Fold]:
    """The folds PurgedWalkForward(min_train_size=1) must give, by brute force (none: raise)."""
    sv, ev = as_ns(s, e)
    blocks = reference_blocks(sv, n_splits + 1)
    out = []
    for test in blocks[1:] if blocks else []:
        if not test:
            continue
        t0 = min(sv[i] for i in test)
        train = [
            i
            for i in sorted(range(len(sv)), key=lambda i: sv[i])
            if sv[i] < t0 and ev[i] is not None and ev[i] < t0 - embargo.value
        ]
        if max_train is not None:
            train = train[-max_train:]
        if train:
            out.append((sorted(train), test))
    return out


def reference_kfold(s, e, n_splits, embargo) -> list[Fold]:
    """The folds PurgedKFold must give, by brute force (none: raise)."""
    sv, ev = as_ns(s, e)
    blocks = reference_blocks(sv, n_splits)
    out = []
    for test in blocks or []:
        if not test:
            continue
        start = min(sv[i] for i in test)
        end = max([sv[i] for i in test] + [ev[i] for i in test if ev[i] is not None])
        train = [
            i
            for i in range(len(sv))
            if i not in test
            and ev[i] is not None
            and (ev[i] < start or sv[i] > end + embargo.value)
        ]
        if train:
            out.append((train, test))
    return out


@settings(max_examples=150, deadline=None)
@given(rows(), st.integers(1, 5), st.integers(0, 6), st.none() | st.integers(1, 10))
def test_walk_forward_properties(data, n_splits, embargo_h, max_train):
    s, e = data
    embargo = HOUR * embargo_h
    wf = PurgedWalkForward(n_splits, min_train_size=1, embargo=embargo, max_train_size=max_train)
    expected = reference_walk_forward(s, e, n_splits, embargo, max_train)
    if not expected:  # too few rows, or no block with a label known before it: no fold
        with pytest.raises(TooFewRowsError, match="Fix"):
            wf.split(s, e)
        return
    got = list(wf.split(s, e))
    assert [(tr.tolist(), te.tolist()) for tr, te in got] == expected
    sv, ev = s.to_numpy(), e.to_numpy()
    seen_test = set()
    for train, test in got:
        assert train.size >= 1 and test.size >= 1
        assert not set(train) & set(test)
        assert not set(test) & seen_test  # test blocks never repeat
        seen_test |= set(test)
        t0 = sv[test].min()
        assert not e.iloc[train].isna().any()
        assert ev[train].max() < t0 - embargo.to_timedelta64()
        assert sv[train].max() < t0
        if max_train is None:  # the purge removes only what it must
            eligible = np.flatnonzero((sv < t0) & e.notna().to_numpy() & (ev < t0 - embargo))
            assert train.tolist() == eligible.tolist()
        else:
            assert train.size <= max_train


@settings(max_examples=150, deadline=None)
@given(rows(), st.integers(2, 5), st.integers(0, 6))
def test_purged_kfold_properties(data, n_splits, embargo_h):
    s, e = data
    embargo = HOUR * embargo_h
    splitter = PurgedKFold(n_splits, embargo=embargo)
    expected = reference_kfold(s, e, n_splits, embargo)
    if not expected:  # too few rows, or every fold purged empty
        with pytest.raises(TooFewRowsError, match="Fix"):
            splitter.split(s, e)
        return
    got = list(splitter.split(s, e))
    assert [(tr.tolist(), te.tolist()) for tr, te in got] == expected
    sv, ev, known = s.to_numpy(), e.to_numpy(), e.notna().to_numpy()
    all_test = np.concatenate([te for _, te in got])
    assert len(all_test) == len(set(all_test.tolist()))  # each row tested at most once
    for train, test in got:
        assert not set(train) & set(test)
        assert known[train].all()
        start = sv[test].min()
        end = max(sv[test].max(), ev[test][known[test]].max(initial=sv[test].max()))
        no_overlap = (ev[train] < start) | (sv[train] > end)
        assert no_overlap.all()
        assert not ((sv[train] > end) & (sv[train] <= end + embargo)).any()
        others = np.setdiff1d(np.arange(len(s)), test)
        eligible = others[known[others] & ((ev[others] < start) | (sv[others] > end + embargo))]
        assert train.tolist() == eligible.tolist()


def test_embargo_removes_rows():
    s, e = hourly(n=40, hold_hours=2)
    plain = list(PurgedKFold(4).split(s, e))
    embargoed = list(PurgedKFold(4, embargo="3h").split(s, e))
    for (tr0, te0), (tr1, te1) in zip(plain, embargoed, strict=True):
        assert te0.tolist() == te1.tolist() and set(tr1) <= set(tr0)
    assert (
        sum(len(tr0) - len(tr1) for (tr0, _), (tr1, _) in zip(plain, embargoed, strict=True))
        == 3 * 3
    )
    wf0 = list(PurgedWalkForward(3, min_train_size=1).split(s, e))
    wf1 = list(PurgedWalkForward(3, min_train_size=1, embargo="3h").split(s, e))
    assert [len(a) - len(b) for (a, _), (b, _) in zip(wf0, wf1, strict=True)] == [3, 3, 3]


# ------------------------------------------------------------------------------------------
# oof_predict
# ------------------------------------------------------------------------------------------
def synthetic(n=300, seed=1):
    rng = np.random.default_rng(seed)
    s, e = hourly(n=n, hold_hours=5)
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y, s, e


def test_oof_predict_logistic():
    X, y, s, e = synthetic()
    wf = PurgedWalkForward(4, min_train_size=20)
    p = oof_predict(lambda: LogisticRegression(), X, y, wf, s, e)
    assert p.shape == (300,) and p.dtype == float
    assert np.isnan(p[:60]).all()  # the first of 5 blocks is never a test block
    assert np.isfinite(p[60:]).all() and ((p[60:] >= 0) & (p[60:] <= 1)).all()
    assert ((p[60:] > 0.5) == y[60:]).mean() > 0.75  # it learnt the signal out of sample
    frame = pd.DataFrame(X, columns=["a", "b"])
    np.testing.assert_allclose(oof_predict(LogisticRegression, frame, y, wf, s, e), p)
    d = oof_predict(LogisticRegression, X, y, wf, s, e, method="decision_function")
    np.testing.assert_allclose(1 / (1 + np.exp(-d[60:])), p[60:])


class RecordingLR(LogisticRegression):
    """Column 0 of X is the row id; it is recorded and not used as a feature."""

    log: list = []

    def fit(self, X, y, sample_weight=None):
        self.fitted_ids = np.asarray(X)[:, 0].astype(int)
        RecordingLR.log.append(self)
        return super().fit(np.asarray(X)[:, 1:], y)

    def predict_proba(self, X):
        self.predicted_ids = np.asarray(X)[:, 0].astype(int)
        return super().predict_proba(np.asarray(X)[:, 1:])


@pytest.mark.parametrize("splitter", [PurgedWalkForward(4, min_train_size=20), PurgedKFold(5)])
def test_oof_predict_never_predicts_its_own_training_rows(splitter):
    X, y, s, e = synthetic()
    perm = np.random.default_rng(2).permutation(len(y))  # rows in no particular time order
    X, y, s, e = X[perm], y[perm], s.iloc[perm], e.iloc[perm]
    Xid = np.column_stack([np.arange(len(y)), X])
    RecordingLR.log.clear()
    p = oof_predict(RecordingLR, Xid, y, splitter, s, e)
    log = RecordingLR.log
    assert len(log) == splitter.get_n_splits(s, e) and len({id(m) for m in log}) == len(log)
    for model in log:
        assert not set(model.fitted_ids) & set(model.predicted_ids)
        if isinstance(splitter, PurgedWalkForward):
            assert e.iloc[model.fitted_ids].max() < s.iloc[model.predicted_ids].min()
    predicted = np.concatenate([m.predicted_ids for m in log])
    assert np.isfinite(p[predicted]).all()
    assert np.isnan(np.delete(p, predicted)).all()


def test_oof_predict_rejects_shared_estimator_and_bad_labels():
    X, y, s, e = synthetic()
    model = LogisticRegression()
    wf = PurgedWalkForward(4, min_train_size=20)
    with pytest.raises(SplitError, match="Fix"):
        oof_predict(lambda: model, X, y, wf, s, e)
    with pytest.raises(TypeError, match="Fix"):
        oof_predict(model, X, y, wf, s, e)
    with pytest.raises(SplitError, match="0/1"):
        oof_predict(LogisticRegression, X, np.where(y == 1, "win", "loss"), wf, s, e)
    with pytest.raises(SplitError, match="Fix"):
        oof_predict(LogisticRegression, X[:-1], y[:-1], wf, s, e)
