"""SHAP values of the estimators (issue 17): additivity, the Shapley formula by
enumeration, shap.TreeExplainer / shap.LinearExplainer given the same models, the
distinct-row path, persistence, thread counts, trees_to_dataframe."""
import itertools
import math
import pickle

import numpy as np
import pytest
import shap

from propensity.io import modelio
from propensity.learn.base import BaseEstimator, load_model
from propensity.learn.compress import distinct_rows
from propensity.learn.forest import RandomForestClassifier
from propensity.learn.gbdt import GradientBoostingClassifier
from propensity.learn.linear import LogisticRegression


def _mixed(n=1500, seed=0):
    """Continuous and binary columns, some NaN, a column the trees cannot use (constant)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.normal(size=n),
                         rng.integers(0, 4, n), np.full(n, 3.0)]).astype(np.float64)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * X[:, 3] + rng.normal(size=n) > 0.8).astype(int)
    X[rng.random(n) < 0.05, 2] = np.nan
    return X, y


def _binary(n=4000, p=8, seed=1):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, p)) < np.linspace(0.1, 0.6, p)).astype(np.uint8)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + X[:, 5] + rng.random(n) > 1.5).astype(int)
    return X, y


def _models(X, y, depth=5, n_trees=15, n_jobs=2):
    return [GradientBoostingClassifier(n_estimators=n_trees, max_depth=depth, random_state=0,
                                       n_jobs=n_jobs).fit(X, y),
            RandomForestClassifier(n_estimators=n_trees, max_depth=depth, random_state=0,
                                   n_jobs=n_jobs).fit(X, y)]


def _raw(model, X):
    if isinstance(model, RandomForestClassifier):
        return model.predict_proba(X)[:, 1]
    return model.decision_function(X)


@pytest.fixture(scope="module")
def mixed_models():
    X, y = _mixed()
    return X, _models(X, y)


def test_rows_sum_to_the_raw_score(mixed_models):
    X, models = mixed_models
    for m in models:
        phi = m.shap_values(X)
        assert phi.dtype == np.float64 and phi.shape == (X.shape[0], X.shape[1] + 1)
        np.testing.assert_allclose(phi.sum(axis=1), _raw(m, X), rtol=0, atol=1e-9)
        assert np.ptp(phi[:, -1]) == 0.0  # one expected value for every row
    lr = LogisticRegression().fit(np.nan_to_num(X), _mixed()[1])
    phi = lr.shap_values(np.nan_to_num(X))
    np.testing.assert_allclose(phi.sum(axis=1), lr.decision_function(np.nan_to_num(X)),
                               rtol=0, atol=1e-9)


def test_unused_feature_gets_exactly_zero(mixed_models):
    X, models = mixed_models
    for m in models:
        used = set(m.trees_to_dataframe()["split_feature"].dropna())
        assert "x4" not in used  # the constant column
        assert (m.shap_values(X)[:, 4] == 0.0).all()


def _set_value(df_tree, x_codes_go_left, known):
    """Path-dependent expectation of one tree when the features in `known` are known."""
    def walk(k):
        node = df_tree[k]
        if node["left"] < 0:
            return node["value"]
        f, l, r = node["feature"], node["left"], node["right"]
        if f in known:
            return walk(l if x_codes_go_left[k] else r)
        c = node["count"]
        return (df_tree[l]["count"] / c) * walk(l) + (df_tree[r]["count"] / c) * walk(r)
    return walk(0)


def _brute_force(model, x):
    """Shapley values of one raw row by enumeration of all subsets of the features, with
    the cover-weighted expectation, built from trees_to_dataframe alone."""
    df = model.trees_to_dataframe()
    names = list(model._feature_names())
    p = len(names)
    phi = np.zeros(p + 1)
    n_trees = int(df["tree_index"].max()) + 1
    for t, tree in df.groupby("tree_index", sort=True):
        nodes = {}
        goes_left = {}
        for row in tree.itertuples():
            f = names.index(row.split_feature) if isinstance(row.split_feature, str) else -1
            nodes[row.node_index] = {"left": row.left_child, "right": row.right_child,
                                     "feature": f, "value": row.value, "count": row.count}
            if f >= 0:
                v = x[f]
                cats = getattr(row, "categories_left", None)
                goes_left[row.node_index] = (not math.isnan(v)) and (
                    v in cats if cats is not None else v <= row.threshold)
        vals = {}
        for size in range(p + 1):
            for S in itertools.combinations(range(p), size):
                vals[frozenset(S)] = _set_value(nodes, goes_left, frozenset(S))
        for i in range(p):
            others = [j for j in range(p) if j != i]
            for size in range(p):
                w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                for S in itertools.combinations(others, size):
                    S = frozenset(S)
                    phi[i] += w * (vals[S | {i}] - vals[S])
        phi[p] += vals[frozenset()]
    if isinstance(model, RandomForestClassifier):
        phi /= n_trees
    else:
        phi[p] += model.base_score_
    return phi


def test_equal_to_brute_force_shapley():
    X, y = _mixed(600, seed=3)
    for m in _models(X, y, depth=4, n_trees=4):
        phi = m.shap_values(X[:12])
        for i in range(12):
            np.testing.assert_allclose(phi[i], _brute_force(m, X[i]), rtol=0, atol=1e-9)


def _shap_model_dict(model):
    """The model's trees in shap's dict form, built from trees_to_dataframe (raw units)."""
    df = model.trees_to_dataframe()
    names = list(model._feature_names())
    n_trees = int(df["tree_index"].max()) + 1
    scale = 1.0 / n_trees if isinstance(model, RandomForestClassifier) else 1.0
    trees = []
    for _, tree in df.groupby("tree_index", sort=True):
        leaf = tree["left_child"].to_numpy() < 0
        trees.append({
            "children_left": tree["left_child"].to_numpy(np.int32),
            "children_right": tree["right_child"].to_numpy(np.int32),
            "children_default": np.where(leaf, -1, tree["right_child"]).astype(np.int32),
            "features": np.array([names.index(f) if isinstance(f, str) else -1
                                  for f in tree["split_feature"]], dtype=np.int32),
            "thresholds": np.where(leaf, 0.0, tree["threshold"]).astype(np.float64),
            "values": (tree["value"].to_numpy() * scale)[:, None],
            "node_sample_weight": tree["count"].to_numpy(np.float64),
        })
    return {"trees": trees, "base_offset": float(getattr(model, "base_score_", 0.0))}


def test_equal_to_shap_tree_explainer(mixed_models):
    X, models = mixed_models
    for m in models:
        ex = shap.TreeExplainer(_shap_model_dict(m))
        ref = ex.shap_values(X)
        assert np.abs(ref).max() > 0.01
        phi = m.shap_values(X)
        np.testing.assert_allclose(phi[:, :-1], ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(phi[:, -1], float(np.ravel(ex.expected_value)[0]),
                                   rtol=0, atol=1e-9)


def test_distinct_rows_equal_plain_path():
    X, y = _binary()
    for m in _models(X, y, depth=6, n_trees=20):
        B = m._bin_mapper.transform(X)
        assert distinct_rows(B, max_fraction=0.5) is not None  # the rows do repeat
        plain = m._shap_from_codes(B, distinct=False)
        assert np.array_equal(m.shap_values(X), plain)
        assert np.array_equal(m._shap_from_codes(B, distinct=True), plain)


def test_thread_count_does_not_change_values():
    X, y = _mixed(2000, seed=5)
    one = [m.shap_values(X) for m in _models(X, y, n_jobs=1)]
    for n_jobs in (2, 3):
        for m, ref in zip(_models(X, y, n_jobs=1), one):
            m.set_params(n_jobs=n_jobs)
            assert np.array_equal(m.shap_values(X), ref)


def test_save_load_and_pickle_give_the_same_values(tmp_path, mixed_models):
    X, models = mixed_models
    lr = LogisticRegression(fit_intercept=False).fit(np.nan_to_num(X), _mixed()[1])
    for m in models + [lr]:
        Xm = np.nan_to_num(X) if m is lr else X
        ref = m.shap_values(Xm)
        path = tmp_path / f"{type(m).__name__}.model"
        m.save(path)
        assert np.array_equal(load_model(path).shap_values(Xm), ref)
        assert np.array_equal(pickle.loads(pickle.dumps(m)).shap_values(Xm), ref)


def test_linear_equals_shap_linear_explainer():
    X, y = _mixed(800, seed=2)
    X = np.nan_to_num(X)
    for fit_intercept in (True, False):
        lr = LogisticRegression(C=0.5, fit_intercept=fit_intercept).fit(X, y)
        ex = shap.LinearExplainer((lr.coef_[0], lr.intercept_[0]), shap.maskers.Independent(
            X, max_samples=X.shape[0]))
        phi = lr.shap_values(X)
        np.testing.assert_allclose(phi[:, :-1], ex.shap_values(X), rtol=0, atol=1e-9)
        np.testing.assert_allclose(phi[:, -1], ex.expected_value, rtol=0, atol=1e-9)
        assert (phi[:, 4] == 0.0).all()  # the constant column


def test_linear_training_mean_is_sample_weighted_and_uint8_exact():
    X, y = _binary(1000)
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    lr = LogisticRegression(fit_intercept=False).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(lr.x_train_mean_, np.average(X, axis=0, weights=w),
                               rtol=1e-12)
    phi = lr.shap_values(X)
    np.testing.assert_allclose(phi.sum(axis=1), lr.decision_function(X), rtol=0, atol=1e-9)


def test_old_linear_documents_still_load():
    X, y = _mixed(500, seed=4)
    X = np.nan_to_num(X)
    for fit_intercept in (True, False):
        lr = LogisticRegression(fit_intercept=fit_intercept).fit(X, y)
        meta, arrays = lr._to_document()
        del arrays["x_train_mean"]  # as written before the training mean was kept
        old = BaseEstimator.from_bytes(modelio.dumps("LogisticRegression", lr._json_params(),
                                                     meta, arrays))
        np.testing.assert_array_equal(old.predict_proba(X), lr.predict_proba(X))
        if fit_intercept:  # the centring is the training mean
            assert np.array_equal(old.shap_values(X), lr.shap_values(X))
        else:
            with pytest.raises(ValueError, match="training mean"):
                old.shap_values(X)


def test_trees_to_dataframe(mixed_models):
    X, models = mixed_models
    cols = ["tree_index", "node_index", "depth", "left_child", "right_child", "split_feature",
            "threshold", "missing_direction", "value", "count", "gain"]
    for m in models:
        df = m.trees_to_dataframe()
        assert list(df.columns) == cols
        assert len(df) == int(m._trees["tree_start"][-1])
        leaf = df["left_child"] < 0
        assert (df.loc[leaf, "right_child"] == -1).all()
        assert df.loc[leaf, "split_feature"].isna().all()
        assert df.loc[leaf, "threshold"].isna().all()
        assert (df.loc[~leaf, "missing_direction"] == "right").all()
        # every split sends the same rows left in raw units as the codes do
        B = m._bin_mapper.transform(X)
        names = list(m._feature_names())
        for row in df[~leaf].head(60).itertuples():
            j = names.index(row.split_feature)
            thr = m._trees["threshold"][m._trees["tree_start"][row.tree_index] + row.node_index]
            by_code = B[:, j] <= thr
            by_raw = ~np.isnan(X[:, j]) & (X[:, j] <= row.threshold)
            assert np.array_equal(by_code, by_raw)
        # a parent's count is its children's
        for t, tree in df.groupby("tree_index"):
            c = tree["count"].to_numpy()
            inner = tree[tree["left_child"] >= 0]
            np.testing.assert_allclose(c[inner["left_child"]] + c[inner["right_child"]],
                                       inner["count"].to_numpy())
    # leaf values are in the units shap_values sums to (boosting: log-odds, no averaging)
    gb = models[0]
    df = gb.trees_to_dataframe()
    B = gb._bin_mapper.transform(X[:50])
    total = np.full(50, gb.base_score_)
    ts = gb._trees["tree_start"]
    for t in range(gb.n_trees_):
        tree = df[df["tree_index"] == t].reset_index(drop=True)
        for i in range(50):
            k = 0
            while tree.at[k, "left_child"] >= 0:
                thr = gb._trees["threshold"][ts[t] + k]
                j = names.index(tree.at[k, "split_feature"])
                k = tree.at[k, "left_child"] if B[i, j] <= thr else tree.at[k, "right_child"]
            total[i] += tree.at[k, "value"]
    np.testing.assert_allclose(total, gb.decision_function(X[:50]), rtol=0, atol=1e-12)


def test_bad_inputs_are_clear_errors(mixed_models):
    X, models = mixed_models
    for m in models:
        with pytest.raises(ValueError, match="features"):
            m.shap_values(X[:, :3])
        with pytest.raises(Exception, match="not fitted"):
            type(m)().shap_values(X)
    lr = LogisticRegression().fit(np.nan_to_num(X), _mixed()[1])
    with pytest.raises(ValueError, match="missing value"):
        lr.shap_values(X)


def test_shap_importance_weights_stored_rows_by_their_counts():
    """The training outputs' mean |SHAP|: each stored row of the validation split counts as
    the rows it stands for, equal to the plain mean over the rows expanded."""
    from types import SimpleNamespace

    from propensity.training.pipeline import shap_importance
    from propensity.training.tuning import Part

    X, y = _binary(3000)
    rows = np.unique(X, axis=0)
    counts = np.random.default_rng(3).integers(0, 4, (rows.shape[0], 2))
    counts[counts.sum(axis=1) == 0, 0] = 1
    folds = SimpleNamespace(features=SimpleNamespace(chunk=7, Z=lambda idx: rows[idx]))
    part = Part(index=np.arange(rows.shape[0]), counts=counts)
    for m in _models(X, y, depth=4, n_trees=10) + [LogisticRegression().fit(X, y)]:
        got, explained, of = shap_importance(folds, m, part)
        assert explained == of == rows.shape[0]
        expanded = np.repeat(rows, counts.sum(axis=1), axis=0)
        want = np.abs(m.shap_values(expanded)[:, :-1]).mean(axis=0)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_shap_importance_within_its_work_budget(monkeypatch):
    """Over its budget the mean |SHAP| comes from a systematic sample of stored rows drawn
    by weight (each drawn row counted as often as drawn): equal to the mean over the
    expanded sample and near the exact mean; under SHAP_MIN_ROWS affordable rows it takes
    SHAP_MIN_ROWS draws, or nothing where they exceed SHAP_WORK_MAX (deep forests)."""
    from types import SimpleNamespace

    import propensity.training.pipeline as P
    from propensity.training.tuning import Part

    X, y = _binary(3000)
    rows = np.unique(X, axis=0)
    counts = np.random.default_rng(4).integers(1, 6, (rows.shape[0], 2))
    folds = SimpleNamespace(features=SimpleNamespace(chunk=64, Z=lambda idx: rows[idx]))
    part = Part(index=np.arange(rows.shape[0]), counts=counts)
    m = _models(X, y, depth=4, n_trees=10)[0]
    exact, n_all, _ = P.shap_importance(folds, m, part)
    k = rows.shape[0] // 3
    monkeypatch.setattr(P, "SHAP_MIN_ROWS", 10)
    monkeypatch.setattr(P, "SHAP_WORK", m._shap_work_per_row() * k)
    got, explained, of = P.shap_importance(folds, m, part)
    assert explained <= k < n_all == of
    w = counts.sum(axis=1).astype(float)
    c = np.cumsum(w)
    draws = P._draws_within(w, k)  # the most draws falling on at most k distinct rows
    assert P.SHAP_MAX_DRAWS >= draws >= k
    assert np.unique(np.searchsorted(c, (np.arange(draws) + 0.5) * c[-1] / draws,
                                     side="right")).size == explained <= k
    assert np.unique(np.searchsorted(c, (np.arange(draws + 1) + 0.5) * c[-1] / (draws + 1),
                                     side="right")).size > k
    drawn = np.searchsorted(c, (np.arange(draws) + 0.5) * c[-1] / draws, side="right")
    want = np.abs(m.shap_values(rows[drawn])[:, :-1]).mean(axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, exact, rtol=0.15, atol=1e-3)
    monkeypatch.setattr(P, "SHAP_MAX_DRAWS", 40)  # fewer draws than the budget affords
    got, explained, _ = P.shap_importance(folds, m, part)
    drawn = np.searchsorted(c, (np.arange(40) + 0.5) * c[-1] / 40, side="right")
    assert explained == np.unique(drawn).size
    np.testing.assert_allclose(got, np.abs(m.shap_values(rows[drawn])[:, :-1]).mean(axis=0),
                               rtol=1e-12, atol=1e-15)
    # a budget of 5 rows: SHAP_MIN_ROWS (10) draws while they fit SHAP_WORK_MAX, else none
    monkeypatch.setattr(P, "SHAP_WORK", m._shap_work_per_row() * 5)
    monkeypatch.setattr(P, "SHAP_MAX_DRAWS", 2000)
    got, explained, _ = P.shap_importance(folds, m, part)
    drawn = np.searchsorted(c, (np.arange(10) + 0.5) * c[-1] / 10, side="right")
    assert explained == np.unique(drawn).size <= 10
    np.testing.assert_allclose(got, np.abs(m.shap_values(rows[drawn])[:, :-1]).mean(axis=0),
                               rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(P, "SHAP_WORK_MAX", m._shap_work_per_row() * 9)
    assert P.shap_importance(folds, m, part) is None


def test_shap_work_measure_follows_the_trees():
    """Deeper and more trees: more work a row; a leaf-table tree (<= 8 levels) costs
    leaves x depth x (1 + 2^depth / 256)."""
    X, y = _binary(3000)
    small, big = (_models(X, y, depth=d, n_trees=n)[0] for d, n in ((3, 5), (8, 20)))
    assert 0 < small._shap_work_per_row() < big._shap_work_per_row()
    t = small._trees
    leaves = int((t["left"] < 0).sum())
    assert small._shap_work_per_row() <= leaves * 3 * (1 + 8 / 256)


def _deep_forest(n_trees=6):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 14))
    X[rng.random(X.shape) < 0.03] = np.nan
    X[:, 3] = rng.integers(0, 3, X.shape[0])
    y = (X[:, 0] + np.nan_to_num(X[:, 1]) * X[:, 2] + rng.normal(size=X.shape[0]) > 0.5)
    return X, RandomForestClassifier(n_estimators=n_trees, max_depth=None, random_state=0,
                                     n_jobs=2).fit(X, y.astype(int))


def test_linear_walk_equals_the_recursion_on_a_deep_forest():
    """A forest grown without a depth limit (continuous features repeated along paths,
    missing values): the linear walk (kernel 2, what shap_values takes for such trees)
    equals the reference recursion (kernel 1) to 1e-9, any thread count the same bits."""
    from propensity import _core
    from propensity.learn.trees import node_depths

    X, m = _deep_forest()
    assert node_depths(m._trees).max() >= 15
    B = m._binned(X[:300])
    kw = dict(codes=B, trees=m._tree_tuple(), average=True, base=0.0)
    linear = _core.trees_shap(n_threads=2, kernel=2, **kw)
    recursion = _core.trees_shap(n_threads=2, kernel=1, **kw)
    np.testing.assert_allclose(linear, recursion, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(linear, _core.trees_shap(n_threads=1, kernel=2, **kw))
    got = m.shap_values(X[:300])
    np.testing.assert_allclose(got, recursion, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.sum(axis=1), m.predict_proba(X[:300])[:, 1], atol=1e-9)


def test_shap_work_of_deep_trees_is_the_linear_walk():
    """Past 8 levels the work measure is the linear walk's, 0.4 x nodes x quadrature
    points (depth / 2 rounded up to a multiple of 4) a tree, where that is below the
    recursion's nodes x depth + leaves x depth^2."""
    from propensity.learn.trees import node_depths

    _, m = _deep_forest(n_trees=3)
    t = m._trees
    ts = t["tree_start"]
    depth = np.maximum.reduceat(node_depths(t), ts[:-1]).astype(float)
    assert (depth > 8).all()
    nodes = np.diff(ts).astype(float)
    leaves = np.add.reduceat((t["left"] < 0).astype(float), ts[:-1])
    points = np.maximum(4, np.ceil(np.ceil(depth / 2) / 4) * 4)
    want = np.minimum(0.4 * nodes * points, nodes * depth + leaves * depth ** 2).sum()
    assert m._shap_work_per_row() == pytest.approx(want, rel=1e-12)
    assert m._shap_work_per_row() < (nodes * depth + leaves * depth ** 2).sum() / 5
