"""RandomForestClassifier: exactness (compression, kernels, threads, prefixes),
accuracy parity with scikit-learn, sklearn integration, persistence and bad input."""
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier as SkRF
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import propensity
from propensity import RandomForestClassifier
from propensity.io import modelio as _modelio
from propensity.learn.binning import BinMapper
from propensity.learn.compress import compress_rows
from propensity._core_loader import _core
from propensity.learn.trees import NODE_FIELDS

from _tree_data import continuous, funnel


def _plain_rows(B, y, w=None):
    n = B.shape[0]
    counts = np.zeros((n, 2), np.int64)
    counts[np.arange(n), y] = 1
    weights = np.zeros((n, 2))
    weights[np.arange(n), y] = 1.0 if w is None else w
    return B, counts, weights


def _score(trees, B, **kw):
    t = tuple(trees[k] for k in NODE_FIELDS)
    return _core.trees_score(B, t, kw.get("n_trees", 0), kw.get("max_depth", 0),
                             float(kw.get("mss", 0)), True, 0.0, kw.get("n_jobs", 2),
                             kw.get("reference", False))


@pytest.mark.parametrize("cw", [(1.0, 1.0), (0.5, 7.0)])
def test_compressed_training_equals_plain_rows(cw):
    X, y = funnel(8000)
    B = BinMapper().fit_transform(X)
    cr = compress_rows(B, y)
    assert cr.rows.shape[0] < 2000
    args = (cw, 15, 0, 0, 2.0, 1.0, 3, False, 7, 2)
    a = _core.forest_fit(*_plain_rows(B, y), *args)
    b = _core.forest_fit(cr.rows, cr.counts, cr.weights, *args)
    sa, sb = _score(a, B), _score(b, B)
    if cw == (1.0, 1.0):  # integer weights: the same sums, the same trees
        np.testing.assert_array_equal(sa, sb)
        assert a["feature"].shape == b["feature"].shape
    else:
        np.testing.assert_allclose(sa, sb, rtol=1e-10, atol=1e-12)


def test_fast_scoring_equals_reference_and_threads_agree():
    X, y = continuous(4000)
    rf1 = RandomForestClassifier(n_estimators=20, random_state=3, n_jobs=1).fit(X, y)
    rf2 = RandomForestClassifier(n_estimators=20, random_state=3, n_jobs=2).fit(X, y)
    for k in NODE_FIELDS:
        np.testing.assert_array_equal(rf1._trees[k], rf2._trees[k])
    B = rf1._bin_mapper.transform(X)
    Bdup = np.ascontiguousarray(np.repeat(B[:50], 2500, axis=0))  # repeated rows, chunked
    for data in (B, Bdup):
        ref = _score(rf1._trees, data, reference=True)
        for kw in ({"n_jobs": 1}, {"n_jobs": 2}):
            np.testing.assert_array_equal(_score(rf1._trees, data, **kw), ref)
        np.testing.assert_array_equal(_score(rf1._trees, data, n_trees=5, max_depth=3, mss=20),
                                      _score(rf1._trees, data, n_trees=5, max_depth=3, mss=20,
                                             reference=True))


def test_prefix_scores_equal_fresh_fits():
    X, y = funnel(6000, seed=1)
    Xc, yc = continuous(3000, seed=2)
    for X_, y_ in ((X, y), (Xc, yc)):
        kw = dict(random_state=11, n_jobs=2, class_weight="balanced")
        big = RandomForestClassifier(n_estimators=30, **kw).fit(X_, y_)
        cases = [dict(n_estimators=12), dict(max_depth=4), dict(min_samples_split=25),
                 dict(n_estimators=7, max_depth=6, min_samples_split=9)]
        for case in cases:
            params = {"n_estimators": 30, **case}
            fresh = RandomForestClassifier(**params, **kw).fit(X_, y_)
            want = fresh.predict_proba(X_)
            np.testing.assert_array_equal(big.predict_proba_prefix(X_, **case), want)
            # the same sub-model scored beside the others in one walk
            np.testing.assert_array_equal(big.predict_proba_prefixes(X_, cases)[
                cases.index(case)], want[:, 1])
            small = big.truncate(**case)
            assert small.get_params()["n_estimators"] == params["n_estimators"]
            for k, v in case.items():
                assert small.get_params()[k] == v
            np.testing.assert_array_equal(small.predict_proba(X_), want)
            np.testing.assert_allclose(small.feature_importances_, fresh.feature_importances_,
                                       rtol=1e-12, atol=1e-15)
            assert small._trees["feature"].shape == fresh._trees["feature"].shape
    with pytest.raises(ValueError, match="max_depth"):
        RandomForestClassifier(n_estimators=3, max_depth=3).fit(X, y).truncate(max_depth=5)


def _auc_pair(X, y, **params):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    ours = RandomForestClassifier(**params, random_state=0, n_jobs=2).fit(Xtr, ytr)
    sk = SkRF(**params, random_state=0, n_jobs=2).fit(Xtr, ytr)
    return (roc_auc_score(yte, ours.predict_proba(Xte)[:, 1]),
            roc_auc_score(yte, sk.predict_proba(Xte)[:, 1]))


@pytest.mark.slow
def test_auc_parity_with_sklearn():
    X, y = funnel(40000, seed=3)
    a, b = _auc_pair(X, y, n_estimators=100, class_weight="balanced")
    assert a >= b - 0.002, (a, b)
    Xc, yc = continuous(12000, p=20, seed=4)
    a, b = _auc_pair(Xc, yc, n_estimators=100, min_samples_leaf=2)
    assert a >= b - 0.002, (a, b)


def test_sklearn_integration_and_dataframes():
    X, y = funnel(3000, p=8, seed=5)
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(8)]).astype(np.uint8)
    labels = np.where(y == 1, "yes", "no")
    rf = RandomForestClassifier(n_estimators=10, random_state=0)
    c = clone(rf)
    assert c.get_params() == rf.get_params()
    rf.fit(df, labels)
    assert list(rf.classes_) == ["no", "yes"]
    assert rf.n_features_in_ == 8 and list(rf.feature_names_in_) == list(df.columns)
    assert set(rf.predict(df)) <= {"no", "yes"}
    assert rf.predict_proba(df).shape == (3000, 2)
    np.testing.assert_allclose(rf.feature_importances_.sum(), 1.0)
    assert "RandomForestClassifier(n_estimators=10" in repr(rf)
    pipe = Pipeline([("id", FunctionTransformer()), ("rf", RandomForestClassifier(
        n_estimators=5, random_state=0))]).fit(X, y)
    assert pipe.predict_proba(X).shape == (3000, 2)
    gs = GridSearchCV(RandomForestClassifier(n_estimators=5, random_state=0),
                      {"max_depth": [2, 4]}, cv=2, scoring="roc_auc").fit(X, y)
    assert gs.best_params_["max_depth"] in (2, 4)


def test_save_load_pickle_identical(tmp_path):
    X, y = funnel(3000, seed=6)
    X[::17, 2] = np.nan
    rf = RandomForestClassifier(n_estimators=8, random_state=1, max_depth=7).fit(X, y)
    want = rf.predict_proba(X)
    path = tmp_path / "rf.model"
    rf.save(path)
    got = propensity.learn.base.load_model(path)
    assert isinstance(got, RandomForestClassifier) and got.max_depth == 7
    np.testing.assert_array_equal(got.predict_proba(X), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(rf)).predict_proba(X), want)
    np.testing.assert_array_equal(got.truncate(n_estimators=3).predict_proba(X),
                                  rf.predict_proba_prefix(X, n_estimators=3))


@pytest.mark.parametrize("field,value", [("left", 0), ("right", 10**6), ("feature", 99),
                                         ("tree_start", -1), ("value", np.nan),
                                         ("threshold", 255)])
def test_corrupted_node_arrays_are_rejected(field, value):
    X, y = funnel(2000, seed=7)
    rf = RandomForestClassifier(n_estimators=3, random_state=1).fit(X, y)
    doc = _modelio.loads(rf.to_bytes())
    arrays = dict(doc.arrays)
    a = arrays[f"tree_{field}"].copy()
    a[0] = value
    arrays[f"tree_{field}"] = a
    data = _modelio.dumps(doc.estimator, doc.params, doc.meta, arrays)
    with pytest.raises(ValueError, match="tree"):
        RandomForestClassifier.from_bytes(data)
    # dropping an array, or a wrong dtype, is also an error
    arrays[f"tree_{field}"] = a.astype(np.float32)
    with pytest.raises(ValueError):
        RandomForestClassifier.from_bytes(_modelio.dumps(doc.estimator, doc.params, doc.meta,
                                                         arrays))


def test_bad_input():
    X, y = funnel(500, p=8, seed=8)
    rf = RandomForestClassifier(n_estimators=3)
    Xinf = X.copy()
    Xinf[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        rf.fit(Xinf, y)
    with pytest.raises(TypeError, match="non-numeric"):
        rf.fit(pd.DataFrame({"a": ["x"] * 500, "b": X[:, 0]}), y)
    with pytest.raises(ValueError, match="binary|classes"):
        rf.fit(X, np.arange(500) % 3)
    with pytest.raises(ValueError, match="0 rows"):
        rf.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="rows"):
        rf.fit(X, y[:-1])
    for bad, match in ((dict(n_estimators=0), "n_estimators"),
                       (dict(max_features=9), "max_features"),
                       (dict(max_features=0.0), "max_features"),
                       (dict(min_samples_split=1), "min_samples_split"),
                       (dict(criterion="mse"), "criterion"),
                       (dict(max_depth=0), "max_depth")):
        with pytest.raises(ValueError, match=match):
            RandomForestClassifier(**bad).fit(X, y)
    with pytest.raises(TypeError, match="n_estimators"):
        RandomForestClassifier(n_estimators="10").fit(X, y)
    rf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        rf.predict_proba(X[:, :4])
    with pytest.raises(propensity.learn.base.NotFittedError):
        RandomForestClassifier().predict(X)
    # NaN is a missing value
    Xn = X.copy()
    Xn[::3, 0] = np.nan
    assert np.isfinite(rf.fit(Xn, y).predict_proba(Xn)).all()


def test_prefixes_in_one_walk_equal_each_prefix():
    """predict_proba_prefixes: every sub-model of a grid (n_estimators x max_depth x
    min_samples_split, as the grid search scores them) equals its own prefix scoring bit
    for bit, on distinct and on repeated rows, with 1 and 2 threads; bad prefixes are
    refused as predict_proba_prefix refuses them."""
    X, y = funnel(5000, seed=4)
    Xc, _ = continuous(2000, seed=5)
    for X_ in (X, np.repeat(X[:40], 50, axis=0)):
        for n_jobs in (1, 2):
            big = RandomForestClassifier(n_estimators=24, random_state=2, n_jobs=n_jobs,
                                         class_weight="balanced").fit(X, y)
            cases = [dict(n_estimators=k, max_depth=d, min_samples_split=m)
                     for k in (10, 24) for d in (3, 6, None) for m in (2, 5, 40)]
            got = big.predict_proba_prefixes(X_, cases)
            assert got.shape == (len(cases), X_.shape[0])
            for row, case in zip(got, cases):
                np.testing.assert_array_equal(row, big.predict_proba_prefix(X_, **case)[:, 1])
    rf = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(Xc[:500], y[:500])
    with pytest.raises(ValueError, match="max_depth"):
        rf.predict_proba_prefixes(Xc, [dict(max_depth=2), dict(max_depth=5)])
    with pytest.raises(ValueError, match="n_estimators"):
        rf.predict_proba_prefixes(Xc, [dict(n_estimators=7)])
    with pytest.raises(ValueError, match="at least one"):
        rf.predict_proba_prefixes(Xc, [])


def test_max_samples_sets_the_draws_per_tree():
    """max_samples (scikit-learn's meaning: bootstrap draws per tree): the whole table (an
    int n or 1.0) is the default forest bit for bit; fewer draws give trees whose root
    holds about that many rows; a value without the bootstrap or beyond the rows is refused."""
    X, y = continuous(4000, seed=5)
    kw = dict(n_estimators=40, max_depth=6, random_state=3)
    ref = RandomForestClassifier(**kw).fit(X, y)
    for whole in (len(y), 1.0):
        same = RandomForestClassifier(max_samples=whole, **kw).fit(X, y)
        assert np.array_equal(same.predict_proba(X), ref.predict_proba(X))
    few = RandomForestClassifier(max_samples=500, **kw).fit(X, y)
    df = few.trees_to_dataframe()
    roots = df[df["node_index"] == 0]["count"].to_numpy()
    assert len(roots) == 40
    # the total of 4000 Poisson(1/8) multiplicities: Poisson(500), sd about 22 a tree
    assert abs(roots.mean() - 500) < 4 * 22 / np.sqrt(40)
    assert not np.array_equal(few.predict_proba(X), ref.predict_proba(X))
    frac = RandomForestClassifier(max_samples=0.125, **kw).fit(X, y)
    assert np.array_equal(frac.predict_proba(X), few.predict_proba(X))
    assert RandomForestClassifier().get_params()["max_samples"] is None
    for bad, match in ((dict(max_samples=500, bootstrap=False), "bootstrap"),
                       (dict(max_samples=len(y) + 1), "exceeds"),
                       (dict(max_samples=0), "max_samples"),
                       (dict(max_samples=1.5), "max_samples")):
        with pytest.raises(ValueError, match=match):
            RandomForestClassifier(n_estimators=2, **bad).fit(X, y)
    with pytest.raises(TypeError, match="max_samples"):
        RandomForestClassifier(n_estimators=2, max_samples="all").fit(X, y)
