"""ONNX export of a fitted :class:`~research.scoring.ensemble.EnsembleScorer` (the fast path's graph).

``to_onnx(model)`` writes one graph: encoded feature matrix ``X`` (float64, NaN = missing) ->
each member pipeline -> unweighted mean -> ``p_win`` (uncalibrated P(win), 0-1, shape (n, 1)).
:class:`~research.scoring.fast.FastScorer` runs it in onnxruntime, then applies the isotonic calibration with
``np.interp`` over the fitted thresholds (what ``IsotonicRegression(out_of_bounds='clip')``
computes), giving ``EnsembleScorer.score_signals``'s 0-100 score.

The graph is written here, not by skl2onnx's converters, because agreement within 1e-4 points
needs float64 end to end: the isotonic map can be very steep (slopes in the thousands), which
turns the ~1e-7 error of float32 trees into ~1e-2 points. skl2onnx only emits
``TreeEnsembleClassifier``/``Regressor`` (float32 outputs; with float64 input its forest also
compares doubles where scikit-learn compares float32s), its ``SimpleImputer`` drops the
``add_indicator`` columns, and it fails on scikit-learn 1.9's HistGradientBoosting (``Expected
an int, got a boolean``). So trees become ``ai.onnx.ml`` opset-5 ``TreeEnsemble`` nodes (float64
splits and leaves, missing-value flags cast to int) and the rest plain float64 ops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

logger = logging.getLogger(__name__)

INPUT, OUTPUT = "X", "p_win"
OPSET, ML_OPSET, IR_VERSION = 21, 5, 10  # TreeEnsemble needs ai.onnx.ml 5 (onnxruntime >= 1.18)
FLOAT, DOUBLE = 1, 11  # onnx.TensorProto element types
_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": None}


# ---------------------------------------------------------------------------- export
class _Graph:
    """Float64 nodes and initializers under unique names. onnx is imported lazily here and
    below: ``import research.scoring`` should not pay for onnx and onnxruntime."""

    def __init__(self) -> None:
        self.nodes, self.inits, self.shared, self._n = [], [], {}, 0

    def const(self, array) -> str:
        from onnx import numpy_helper

        self._n += 1
        self.inits.append(numpy_helper.from_array(np.asarray(array), f"c_{self._n}"))
        return f"c_{self._n}"

    def op(self, op_type: str, inputs: Sequence[str], *, out: str | None = None, **attrs) -> str:
        from onnx import helper

        self._n += 1
        out = out or f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _imputer(g: _Graph, imp: SimpleImputer, x: str) -> str:
    stats = np.asarray(imp.statistics_, np.float64)
    if not (isinstance(imp.missing_values, float) and np.isnan(imp.missing_values)):
        raise NotImplementedError("only SimpleImputer(missing_values=np.nan) can be exported")
    if np.isnan(stats).any():  # scikit-learn drops such columns unless keep_empty_features
        raise NotImplementedError("SimpleImputer with dropped empty features cannot be exported")
    ind = np.asarray(imp.indicator_.features_ if imp.add_indicator else [], np.int64)
    key = (x, stats.tobytes(), ind.tobytes())
    if key not in g.shared:  # members' imputers are fitted on one matrix: build it once
        isnan = g.op("IsNaN", [x])
        out = g.op("Where", [isnan, g.const(stats[None, :]), x])
        if len(ind):  # the missing-indicator columns, after the imputed ones
            flags = g.op("Cast", [g.op("Gather", [isnan, g.const(ind)], axis=1)], to=DOUBLE)
            out = g.op("Concat", [out, flags], axis=1)
        g.shared[key] = out
    return g.shared[key]


def _scaler(g: _Graph, sc: StandardScaler, x: str) -> str:
    # the same two IEEE operations as StandardScaler.transform: results match bit for bit
    if sc.mean_ is not None:
        x = g.op("Sub", [x, g.const(np.asarray(sc.mean_, np.float64))])
    if sc.scale_ is not None:
        x = g.op("Div", [x, g.const(np.asarray(sc.scale_, np.float64))])
    return x


def _tree_ensemble(g: _Graph, x: str, trees, *, aggregate: int) -> str:
    """One float64 ``TreeEnsemble`` node; returns its (n, 1) output.

    ``trees``: per tree, arrays ``(is_leaf, left, right, feature, threshold, missing_left,
    value)`` over its nodes, node 0 the root, ``x <= threshold`` going left.
    """
    from onnx import numpy_helper

    parts, roots, n_nodes, n_leaves = [], [], 0, 0
    for is_leaf, left, right, feature, threshold, missing, value in trees:
        if is_leaf[0]:  # ONNX has no one-leaf tree: a dummy split whose branches both reach it
            is_leaf, left, right = np.array([False, True]), np.array([1, 0]), np.array([1, 0])
            feature, threshold, missing = np.zeros(2, int), np.zeros(2), np.zeros(2, int)
            value = np.repeat(np.asarray(value)[:1], 2)
        inner, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
        pos = np.empty(len(is_leaf), np.int64)  # node -> its index among inner nodes or leaves
        pos[inner], pos[leaves] = n_nodes + np.arange(len(inner)), n_leaves + np.arange(len(leaves))
        lo, hi = left[inner].astype(np.int64), right[inner].astype(np.int64)
        parts.append(
            (
                feature[inner],
                threshold[inner],
                missing[inner],
                pos[lo],
                is_leaf[lo],
                pos[hi],
                is_leaf[hi],
                value[leaves],
            )
        )
        roots.append(n_nodes)  # the root is the tree's first inner node
        n_nodes, n_leaves = n_nodes + len(inner), n_leaves + len(leaves)
    feat, split, miss, tid, tleaf, fid, fleaf, w = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )

    def ints(a):  # Python ints: onnx refuses numpy bools (skl2onnx's HGB bug)
        return a.astype(np.int64).tolist()

    def tensor(a, dtype=np.float64):
        return numpy_helper.from_array(np.asarray(a, dtype))

    return g.op(
        "TreeEnsemble",
        [x],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=aggregate,
        post_transform=0,
        tree_roots=roots,
        nodes_featureids=ints(feat),
        nodes_splits=tensor(split),
        nodes_modes=tensor(np.zeros(n_nodes), np.uint8),  # <=
        nodes_truenodeids=ints(tid),
        nodes_trueleafs=ints(tleaf),
        nodes_falsenodeids=ints(fid),
        nodes_falseleafs=ints(fleaf),
        nodes_missing_value_tracks_true=ints(miss),
        leaf_targetids=[0] * n_leaves,
        leaf_weights=tensor(w),
    )


def _forest(g: _Graph, rf: RandomForestClassifier, x: str) -> str:
    # scikit-learn walks the trees on float32(X) against float64 thresholds: the round trip
    # through float32 reproduces that exactly
    x = g.op("Cast", [g.op("Cast", [x], to=FLOAT)], to=DOUBLE)
    trees = [
        (
            t.children_left < 0,
            t.children_left,
            t.children_right,
            t.feature,
            t.threshold,
            t.missing_go_to_left,
            t.value[:, 0, 1],
        )  # value: class fractions, P(class 1)
        for t in (e.tree_ for e in rf.estimators_)
    ]
    return _tree_ensemble(g, x, trees, aggregate=0)  # AVERAGE, as predict_proba does


def _hist_gb(g: _Graph, gb: HistGradientBoostingClassifier, x: str) -> str:
    # private attributes (_predictors, _baseline_prediction), as of scikit-learn 1.4-1.9
    if gb.n_trees_per_iteration_ != 1 or getattr(gb, "_preprocessor", None) is not None:
        raise NotImplementedError("only binary HistGradientBoosting on numeric X is exported")
    nodes = [pred.nodes for (pred,) in gb._predictors]
    if any(n["is_categorical"].any() for n in nodes):
        raise NotImplementedError("categorical splits of HistGradientBoosting")
    trees = [
        (
            n["is_leaf"].astype(bool),
            n["left"],
            n["right"],
            n["feature_idx"],
            n["num_threshold"],
            n["missing_go_to_left"],
            n["value"],
        )
        for n in nodes
    ]
    raw = _tree_ensemble(g, x, trees, aggregate=1)  # SUM over the iterations
    raw = g.op("Add", [raw, g.const(np.reshape(gb._baseline_prediction, (1, 1)))])
    return g.op("Sigmoid", [raw])  # the binomial loss's inverse link (expit)


def _mlp(g: _Graph, nn: MLPClassifier, x: str) -> str:
    if nn.out_activation_ != "logistic":
        raise NotImplementedError("only a binary MLPClassifier (logistic output) is exported")
    for i, (w, b) in enumerate(zip(nn.coefs_, nn.intercepts_, strict=True)):
        x = g.op("Add", [g.op("MatMul", [x, g.const(w)]), g.const(b)])
        act = _ACTIVATIONS[nn.out_activation_ if i == len(nn.coefs_) - 1 else nn.activation]
        x = g.op(act, [x]) if act else x
    return x


_STEPS = {
    SimpleImputer: _imputer,
    StandardScaler: _scaler,
    RandomForestClassifier: _forest,
    HistGradientBoostingClassifier: _hist_gb,
    MLPClassifier: _mlp,
}


def to_onnx(model) -> bytes:
    """Export a fitted ``EnsembleScorer``'s averaged, uncalibrated P(win) as ONNX.

    Parameters
    ----------
    model : EnsembleScorer
        Fitted; members are pipelines of SimpleImputer, StandardScaler, RandomForest,
        HistGradientBoosting and MLP classifiers (what ``EnsembleScorer`` builds).

    Returns
    -------
    bytes
        Serialized model. Input ``"X"``: float64 (n, n_encoded_columns), the matrix of
        :func:`~research.scoring.encode.encode` (NaN = missing). Output ``"p_win"``: float64
        (n, 1), the members' mean P(win), probability 0-1, before calibration.
    """
    import onnx
    from onnx import helper

    check_is_fitted(
        model,
        "members_",
        msg="This %(name)s is not fitted, so there is nothing "
        "to export. Fix: call fit(X, y) before to_onnx(model).",
    )
    g = _Graph()
    p_members = []
    for name, member in model.members_.items():
        steps = [s for _, s in member.steps] if hasattr(member, "steps") else [member]
        if list(getattr(steps[-1], "classes_", [])) != [0, 1]:
            raise ValueError(f"member {name!r} was not fitted on both classes (win=1, loss=0)")
        x = INPUT
        for step in steps:
            if type(step) not in _STEPS:
                raise NotImplementedError(f"{name!r}: no ONNX export for {type(step).__name__}")
            x = _STEPS[type(step)](g, step, x)
        p_members.append(x)
    total = p_members[0]  # Add then Div in np.mean's order (onnxruntime: no float64 Mean)
    for p in p_members[1:]:
        total = g.op("Add", [total, p])
    g.op("Div", [total, g.const(np.full((1, 1), float(len(p_members))))], out=OUTPUT)
    width = int(model.n_features_in_)
    graph = helper.make_graph(
        g.nodes,
        "ensemble_p_win",
        [helper.make_tensor_value_info(INPUT, DOUBLE, [None, width])],
        [helper.make_tensor_value_info(OUTPUT, DOUBLE, [None, 1])],
        initializer=g.inits,
    )
    onx = helper.make_model(
        graph,
        ir_version=IR_VERSION,
        producer_name="research.scoring.fast",  # unchanged: same bytes as before
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
    )
    # the columns the graph was built for, so that a loader can refuse mismatched features
    helper.set_model_props(onx, {"encoded_columns": json.dumps(model.encoded_feature_names())})
    onnx.checker.check_model(onx, full_check=True)
    blob = onx.SerializeToString()
    logger.info(
        "exported %s to ONNX: members %s, %d columns, %.1f kB",
        type(model).__name__,
        list(model.members_),
        width,
        len(blob) / 1e3,
    )
    return blob
