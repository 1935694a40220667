"""The feature plan (propensity.learn.plan) and scoring straight from encoded inputs.

A model with numeric and text columns is scored by the C core from the encoded inputs
E to the bin codes its trees walk, without the matrices of Schema.expand and the
interaction features. These tests hold it to the path through those matrices, computed
here with the NumPy code the features are defined by: the same probabilities bit for
bit, the same predictions file, before and after save -> load and pickling. The models
here one-hot encode their text column (categorical="onehot"), the plan's ONEHOT step;
native category columns are held to the same paths in tests/test_categorical_pipeline.py.
"""
import pickle

import numpy as np
import pandas as pd
import pytest

from propensity import (GradientBoostingClassifier, InteractionFeatureTransformer,
                        PropensityModel, RandomForestClassifier)
from propensity._core_loader import _core
from propensity.datasets import make_sessions
from propensity.learn.plan import COPY, ONEHOT, PROD, SUM, FeaturePlan
from propensity.schema import CATEGORY, NUMERIC
from propensity.scoring import predictor as predictor_mod
from propensity.scoring.predictor import CustomerPropensityPredictor

SOURCES = ["web", "app", "email", "search", "social"]


def mixed_frame(n, seed):
    """Session columns, a float, an int and a text column (a few cells missing), and a
    target that depends on them."""
    rng = np.random.default_rng(seed)
    df = make_sessions(n, seed=seed)
    y = df.pop("ordered").to_numpy().astype(np.uint8)
    df = df.drop(columns=[c for c in ("UserID",) if c in df.columns])
    basket = np.round(rng.gamma(2.0, 25.0, n), 2)
    basket[rng.random(n) < 0.02] = np.nan
    days = (rng.geometric(0.15, n) - 1).astype(np.int64)
    src = np.asarray(SOURCES, dtype=object)[rng.integers(0, len(SOURCES), n)]
    src[rng.random(n) < 0.03] = None
    df["basket_value"] = basket
    df["days_since_last_visit"] = days
    df["traffic_source"] = src
    flip = rng.random(n) < 1.0 / (1.0 + np.exp(3.0 - np.nan_to_num(basket) / 40.0))
    y = np.where(flip & (df["saw_checkout"].to_numpy() == 1), 1, y).astype(np.uint8)
    return df, y


# ---- the NumPy definitions of the features (the code the C plan replaced) ---------------
def expand_numpy(schema, E):
    E = np.asarray(E)
    if E.dtype == np.uint8:
        return np.ascontiguousarray(E)
    n = E.shape[0]
    widths = [len(c.categories) if c.kind == CATEGORY else 1 for c in schema.columns]
    binary = not any(c.kind == NUMERIC for c in schema.columns)
    out = np.zeros((n, sum(widths)), dtype=np.uint8 if binary else np.float64)
    starts = np.cumsum([0] + widths[:-1])
    plain = [j for j, c in enumerate(schema.columns) if c.kind != CATEGORY]
    out[:, starts[plain]] = E[:, plain]
    for j, col in enumerate(schema.columns):
        if col.kind == CATEGORY:
            codes = E[:, j].astype(np.int64)
            hit = np.flatnonzero(codes >= 0)
            out[hit, starts[j] + codes[hit]] = 1
    return out


def transform_numpy(tr, arr):
    from propensity.learn.features import _is_binary
    binary = _is_binary(arr)
    dtype = np.uint8 if binary else np.float64
    arr = arr.astype(dtype, copy=False)
    n, p = arr.shape
    out = np.empty((n, p + len(tr.derived_)), dtype=dtype)
    out[:, :p] = arr
    for k, ((_, op, _), cols) in enumerate(zip(tr.derived_, tr._index)):
        if op == "prod":
            out[:, p + k] = arr[:, cols[0]] * arr[:, cols[1]]
        else:
            row = arr[:, cols[0]].copy()
            for c in cols[1:]:
                row += arr[:, c]
            out[:, p + k] = row
    return out


def proba_numpy(model, E):
    """Calibrated probabilities through the feature matrices (no plan, no fused path)."""
    Z = transform_numpy(model.transformer_, expand_numpy(model.schema_, E))
    return model.calibrate(model.estimator_.predict_proba(Z)[:, 1])


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def data():
    return mixed_frame(2500, seed=3), mixed_frame(1500, seed=4)


@pytest.fixture(scope="module")
def boosting_model(data):
    (X, y), _ = data
    est = GradientBoostingClassifier(n_estimators=25, max_depth=5, random_state=0)
    return PropensityModel(estimator=est, cv=2, categorical="onehot").fit(X, y)


# ---- the plan itself ------------------------------------------------------------------
def test_expand_and_transform_are_the_numpy_features(boosting_model, data):
    _, (Xt, _) = data
    m = boosting_model
    E, _ = m.encode(Xt)
    assert E.dtype == np.float64
    X = m.schema_.expand(E)
    assert same_bits(X, expand_numpy(m.schema_, E))
    Z = m.transformer_.transform(X)
    assert same_bits(Z, transform_numpy(m.transformer_, X))
    # binary input stays uint8 (from uint8, from float 0/1, from float32 0/1)
    B = np.ascontiguousarray(X[:, :23])
    tr = InteractionFeatureTransformer().fit(pd.DataFrame(B, columns=m.schema_.names[:23]))
    for arr in (B.astype(np.uint8), B, B.astype(np.float32)):
        got = tr.transform(arr)
        assert got.dtype == np.uint8 and same_bits(got, transform_numpy(tr, arr))
    # numbers beyond 0/1 in uint8 or float32 give float64 features
    for arr in (B.astype(np.uint8) * 3, B.astype(np.float32) * 1.5):
        got = tr.transform(arr)
        assert got.dtype == np.float64 and same_bits(got, transform_numpy(tr, arr))


def test_the_model_plan_composes_schema_and_interactions(boosting_model):
    m = boosting_model
    plan = m.feature_plan_
    assert plan.n_inputs == len(m.schema_.columns)
    assert plan.n_features == m.estimator_.n_features_in_ == len(m.feature_names_out_)
    ops = [s[0] for s in plan.steps]
    assert ops.count(ONEHOT) == sum(len(c.categories) for c in m.schema_.columns
                                    if c.kind == CATEGORY)
    assert {PROD, SUM} <= set(ops)


def test_plan_checks():
    with pytest.raises(ValueError, match="unknown op"):
        FeaturePlan(2, [(9, 0, 0.0, ())])
    with pytest.raises(ValueError, match="reads input"):
        FeaturePlan(2, [(COPY, 2, 0.0, ())])
    with pytest.raises(ValueError, match="earlier"):
        FeaturePlan(2, [(COPY, 0, 0.0, ()), (SUM, 0, 0.0, (1,))])
    plan = FeaturePlan(2, [(COPY, 0, 0.0, ()), (ONEHOT, 1, 1.0, ()), (PROD, 0, 0.0, (0, 1))])
    E = np.array([[2.0, 1.0], [3.0, 0.0], [np.nan, 1.0]])
    got = plan.values(E)
    assert same_bits(got[:2], np.array([[2.0, 1.0, 2.0], [3.0, 0.0, 0.0]]))
    assert np.isnan(got[2, [0, 2]]).all() and got[2, 1] == 1.0
    with pytest.raises(ValueError, match="columns"):
        plan.values(np.zeros((3, 3)))
    op, col, level, ss, src = plan.arrays
    bad = (op, col, level, ss, np.array([0, 2], dtype=np.int64))
    with pytest.raises(ValueError, match="earlier"):
        _core.plan_values(E, bad, False, 1)
    with pytest.raises(TypeError, match="dtype"):
        _core.plan_values(E, (op.astype(np.int64), col, level, ss, src), False, 1)


# ---- scores: the fused path against the feature matrices -----------------------------
def test_boosting_scores_are_those_of_the_feature_matrices(boosting_model, data):
    _, (Xt, _) = data
    m = boosting_model
    E, _ = m.encode(Xt)
    want = proba_numpy(m, E)
    assert same_bits(m.proba_encoded(E), want)
    assert same_bits(m.predict_proba(Xt)[:, 1], want)
    raw = m.estimator_.predict_proba(transform_numpy(m.transformer_,
                                                     expand_numpy(m.schema_, E)))[:, 1]
    assert same_bits(m.raw_encoded(E), raw)
    assert same_bits(m.estimator_.proba_from_inputs(E, m.feature_plan_), raw)


def test_every_kernel_and_thread_count_gives_the_same_scores(boosting_model, data):
    _, (Xt, _) = data
    m = boosting_model
    est, mp, plan = m.estimator_, m.estimator_._bin_mapper, m.feature_plan_
    E, _ = m.encode(Xt)
    args = (plan.arrays, mp.edges_, mp.n_edges_, est._tree_tuple(), 0, 0, 0.0, False,
            est.base_score_)
    ref = _core.trees_score_inputs(E, *args, 1, reference=True)
    for kernel in (_core.SCORE_AUTO, _core.SCORE_LANES, _core.SCORE_BLOCK,
                   _core.SCORE_BLOCK_PLAIN):
        for nt in (1, 2, 3):
            assert same_bits(_core.trees_score_inputs(E, *args, nt, kernel=kernel), ref)
    codes = plan.codes(E, mp)
    assert same_bits(codes, _core.plan_codes(E, plan.arrays, mp.edges_, mp.n_edges_, 1,
                                             reference=True))
    assert same_bits(codes, mp.transform(transform_numpy(m.transformer_,
                                                          expand_numpy(m.schema_, E))))
    for kernel in (_core.SCORE_LANES, _core.SCORE_BLOCK, _core.SCORE_BLOCK_PLAIN):
        got = _core.trees_score(codes, est._tree_tuple(), 0, 0, 0.0, False, est.base_score_, 2,
                                False, kernel)
        assert same_bits(got, ref)
    # the probability of the scores: the logistic of every scorer (the C core's)
    p = _core.trees_score_inputs(E, *args, 2, positive_proba=True)
    assert same_bits(p, _core.trees_proba(codes=codes, trees=est._tree_tuple(), n_trees=0,
                                          max_depth=0, min_samples_split=0.0, average=False,
                                          base=est.base_score_, n_threads=1)[:, 1])


def test_a_deep_forest_is_scored_the_same_way(data):
    (X, y), (Xt, _) = data
    m = PropensityModel(estimator=RandomForestClassifier(n_estimators=8, random_state=0),
                        cv=2, categorical="onehot").fit(X, y)
    E, _ = m.encode(Xt)
    assert same_bits(m.proba_encoded(E), proba_numpy(m, E))
    # a prefix cut to depth 6 allows the block scorer, and agrees with the reference
    est, mp = m.estimator_, m.estimator_._bin_mapper
    args = (m.feature_plan_.arrays, mp.edges_, mp.n_edges_, est._tree_tuple(), 5, 6, 0.0, True,
            0.0, 2)
    assert same_bits(_core.trees_score_inputs(*((E,) + args), kernel=_core.SCORE_BLOCK),
                     _core.trees_score_inputs(*((E,) + args), reference=True))


def test_saved_loaded_and_pickled_models_score_the_same(boosting_model, data, tmp_path):
    _, (Xt, _) = data
    m = boosting_model
    E, _ = m.encode(Xt)
    want = m.proba_encoded(E)
    path = tmp_path / "model.propmodel"
    m.save(path)
    from propensity import load_model
    loaded = load_model(path)
    assert same_bits(loaded.proba_encoded(E), want)
    assert same_bits(pickle.loads(pickle.dumps(m)).proba_encoded(E), want)
    assert same_bits(loaded.proba_encoded(E), proba_numpy(loaded, E))


def test_predictions_file_is_that_of_the_feature_matrices(boosting_model, data, monkeypatch,
                                                          tmp_path):
    _, (Xt, _) = data
    frame = Xt.copy()
    frame.insert(0, "UserID", [f"u{i:05d}" for i in range(len(frame))])
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    monkeypatch.setattr(predictor_mod, "_now_iso", lambda: "2026-01-01T00:00:00+00:00")

    def run(name):
        p = CustomerPropensityPredictor.from_model(boosting_model, n_jobs=2)
        p.predict_from_file(src, tmp_path / name, chunksize=300)
        return (tmp_path / name).read_bytes()

    fused = run("fused.csv")
    # the same model without the fused path: its trees score the feature matrices
    monkeypatch.setattr(type(boosting_model.estimator_), "proba_from_inputs", None)
    monkeypatch.setattr(boosting_model.schema_, "expand",
                        lambda E: expand_numpy(boosting_model.schema_, E))
    assert run("matrices.csv") == fused
    assert fused.count(b"\n") == len(frame) + 1
