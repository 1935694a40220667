"""propensity.LogisticRegression against scikit-learn's solvers at tight tolerance.

Our model standardises features inside; scikit-learn is fitted on the same
standardised matrix, so both minimise the same penalised objective.
"""
import io
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import propensity
from propensity import LogisticRegression
from propensity.learn.linear import ConvergenceWarning, UnusedFeatureWarning


# ---- data ------------------------------------------------------------------------
def random_data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * [1.0, 2.0, 3.0, 0.5, 10.0] + [0.0, 1.0, -1.0, 5.0, 3.0]
    z = X[:, 0] - 0.3 * X[:, 1] + 0.1 * X[:, 4] - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


def funnel_data(n=4000, seed=1):
    """Binary session-like data: a browsing funnel with correlated steps, rare purchases."""
    rng = np.random.default_rng(seed)
    mobile = rng.random(n) < 0.6
    returning = rng.random(n) < 0.4
    basket = rng.random(n) < np.where(returning, 0.35, 0.15)
    detail_add = basket & (rng.random(n) < 0.6)
    sign_in = rng.random(n) < np.where(returning, 0.5, 0.1)
    checkout = detail_add & (rng.random(n) < 0.5)
    delivery = checkout & (rng.random(n) < 0.7)
    homepage = rng.random(n) < 0.8
    sort_by = rng.random(n) < 0.2
    B = np.column_stack([basket, detail_add, sort_by, sign_in, checkout, delivery, homepage,
                         mobile, ~mobile, returning, basket & detail_add, sign_in & checkout])
    z = -4.0 + 2.5 * checkout + 1.0 * delivery + 0.8 * sign_in + 0.5 * basket - 0.4 * mobile
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return B.astype(np.uint8), y


def standardise(X, sw=None):
    w = np.ones(X.shape[0]) if sw is None else sw
    mu = np.average(X, axis=0, weights=w)
    sd = np.sqrt(np.average((X - mu) ** 2, axis=0, weights=w))
    return (X - mu) / sd


def objective(Xs, y, coef, intercept, C, l1_ratio, s):
    z = Xs @ coef + intercept
    loss = np.sum(s * np.logaddexp(0.0, np.where(y == 1, -z, z)))
    return loss + (1.0 / C) * ((1 - l1_ratio) / 2 * coef @ coef + l1_ratio * np.abs(coef).sum())


def row_weights(y, class_weight, sw=None):
    s = np.ones(len(y)) if sw is None else sw.astype(float)
    if class_weight == "balanced":
        counts = np.array([s[y == 0].sum(), s[y == 1].sum()])
        cw = counts.sum() / (2 * counts)
        return s * cw[y]
    if isinstance(class_weight, dict):
        return s * np.array([class_weight.get(0, 1.0), class_weight.get(1, 1.0)])[y]
    return s


def compare_with_sklearn(X, y, *, C, l1_ratio=None, class_weight=None, sw=None):
    ours = LogisticRegression(C=C, l1_ratio=l1_ratio, class_weight=class_weight, tol=1e-8,
                              max_iter=200).fit(X, y, sample_weight=sw)
    Xs = standardise(X.astype(float), sw)
    if l1_ratio is None:
        sk = SkLogisticRegression(C=C, class_weight=class_weight, solver="lbfgs", tol=1e-12,
                                  max_iter=20000)
    else:
        sk = SkLogisticRegression(C=C, l1_ratio=l1_ratio, class_weight=class_weight,
                                  solver="saga", tol=1e-12, max_iter=50000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(Xs, y, sample_weight=sw)
    s = row_weights(y, class_weight, sw)
    l1 = 0.0 if l1_ratio is None else l1_ratio
    ours_obj = objective(Xs, y, ours.coef_standardized_[0], ours.intercept_standardized_[0],
                         C, l1, s)
    sk_obj = objective(Xs, y, sk.coef_[0], sk.intercept_[0], C, l1, s)
    assert ours_obj <= sk_obj * (1 + 1e-6)
    assert ours.objective_ == pytest.approx(ours_obj, rel=1e-9)
    np.testing.assert_allclose(ours.coef_standardized_[0], sk.coef_[0], atol=1e-4)
    np.testing.assert_allclose(ours.intercept_standardized_, sk.intercept_, atol=1e-4)
    # the original-scale coefficients give the same decision function
    np.testing.assert_allclose(ours.decision_function(X), Xs @ ours.coef_standardized_[0]
                               + ours.intercept_standardized_[0], rtol=1e-9, atol=1e-9)
    return ours, sk


# ---- agreement with scikit-learn -------------------------------------------------------
@pytest.mark.parametrize("C", [0.05, 1.0, 10.0])
def test_l2_random_matches_lbfgs(C):
    X, y = random_data()
    compare_with_sklearn(X, y, C=C)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_l2_funnel_matches_lbfgs(class_weight):
    B, y = funnel_data()
    compare_with_sklearn(B, y, C=1.0, class_weight=class_weight)


@pytest.mark.parametrize("l1_ratio", [0.5, 0.9, 1.0])
def test_elastic_net_random_matches_saga(l1_ratio):
    X, y = random_data(n=800)
    compare_with_sklearn(X, y, C=0.1, l1_ratio=l1_ratio)


# The funnel data has duplicated and complementary columns (like the interaction features
# of the real data): with a mostly-L1 penalty the minimiser is not unique and saga needs
# > 50k epochs, so coefficients are compared where the L2 part makes the solution unique.
@pytest.mark.parametrize("l1_ratio", [0.1, 0.5])
def test_elastic_net_funnel_matches_saga(l1_ratio):
    B, y = funnel_data(n=3000)
    compare_with_sklearn(B, y, C=0.1, l1_ratio=l1_ratio, class_weight="balanced")


def test_sample_weight_and_class_weight_match_sklearn():
    X, y = random_data(n=1000, seed=3)
    sw = np.random.default_rng(3).uniform(0.2, 3.0, size=len(y))
    compare_with_sklearn(X, y, C=0.5, class_weight="balanced", sw=sw)
    compare_with_sklearn(X, y, C=0.5, class_weight={0: 1.0, 1: 4.0}, sw=sw)


def test_l1_ratio_zero_is_pure_l2():
    X, y = random_data()
    a = LogisticRegression(C=0.3).fit(X, y)
    b = LogisticRegression(C=0.3, l1_ratio=0.0).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)


def test_lasso_zeroes_irrelevant_features():
    X, y = random_data()
    m = LogisticRegression(C=0.02, l1_ratio=1.0).fit(X, y)
    np.testing.assert_array_equal(m.coef_[0, 2:4], 0.0)
    assert (m.coef_[0, [0, 1, 4]] != 0).all()
    assert (LogisticRegression(C=0.002, l1_ratio=1.0).fit(X, y).coef_ == 0).all()


def test_no_intercept_matches_sklearn():
    X, y = random_data()
    ours = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-8).fit(X, y)
    Xs = X / np.sqrt((X ** 2).mean(axis=0))
    sk = SkLogisticRegression(C=1.0, fit_intercept=False, tol=1e-12, max_iter=20000).fit(Xs, y)
    np.testing.assert_allclose(ours.coef_standardized_[0], sk.coef_[0], atol=1e-4)
    assert ours.intercept_[0] == 0.0


# ---- exactness and invariance ---------------------------------------------------------
@pytest.mark.parametrize("l1_ratio", [None, 0.5])
def test_compressed_equals_uncompressed(l1_ratio):
    B, y = funnel_data()
    a = LogisticRegression(C=0.5, l1_ratio=l1_ratio, class_weight="balanced").fit(B, y)
    b = LogisticRegression(C=0.5, l1_ratio=l1_ratio, class_weight="balanced").fit(
        B.astype(np.float64), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-9, atol=1e-10)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-12)
    np.testing.assert_allclose(a.predict_proba(B), b.predict_proba(B), atol=1e-12)


def test_repeated_rows_equal_integer_weights():
    X, y = random_data(n=300)
    reps = np.random.default_rng(5).integers(1, 4, size=len(y))
    a = LogisticRegression(C=0.7).fit(np.repeat(X, reps, axis=0), np.repeat(y, reps))
    b = LogisticRegression(C=0.7).fit(X, y, sample_weight=reps)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("l1_ratio", [None, 0.5])
def test_n_jobs_identical(l1_ratio):
    X, y = random_data(n=20000, seed=7)  # several row chunks
    a = LogisticRegression(l1_ratio=l1_ratio, n_jobs=1).fit(X, y)
    b = LogisticRegression(l1_ratio=l1_ratio, n_jobs=2).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)


def test_separable_data_gives_finite_coefficients():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    for l1_ratio in (None, 0.5):
        m = LogisticRegression(C=1e5, l1_ratio=l1_ratio, max_iter=1000).fit(X, y)
        assert np.isfinite(m.coef_).all() and np.isfinite(m.intercept_).all()
        assert m.coef_[0, 0] > 5
        assert (m.predict(X) == y).all()


def test_max_iter_hit_warns():
    X, y = random_data()
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        m = LogisticRegression(max_iter=1, tol=0.0).fit(X, y)
    assert m.n_iter_[0] == 1 and not m.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(X, y)


def test_constant_column_gets_zero_coefficient():
    X, y = random_data()
    X = np.column_stack([X[:, :2], np.full(len(y), 7.0), X[:, 2:]])
    with pytest.warns(UnusedFeatureWarning, match=r"1 feature\(s\) constant .*: column 2$"):
        m = LogisticRegression().fit(X, y)
    assert m.coef_[0, 2] == 0.0 and m.x_scale_[2] == 0.0
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    with pytest.warns(UnusedFeatureWarning, match=r"column 2 \('f2'\)$"):
        LogisticRegression().fit(frame, y)
    ref = LogisticRegression().fit(np.delete(X, 2, axis=1), y)
    np.testing.assert_allclose(np.delete(m.coef_[0], 2), ref.coef_[0], rtol=1e-10)
    np.testing.assert_allclose(m.intercept_, ref.intercept_, rtol=1e-10)


@pytest.mark.parametrize("magnitude", [1e153, 1e200, 1e300, 1e-160, 1e-300])
def test_extreme_magnitudes_scale_without_overflow(magnitude):
    """A column of values >= 1e153 (squares overflow) or <= 1e-160 (squares underflow)
    is standardised like the same column at magnitude 1: the same fit up to the factor,
    every feature used, no warning; scikit-learn agrees on the unscaled column."""
    X, y = random_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = LogisticRegression().fit(X, y)
        Xs = X.copy()
        Xs[:, 0] *= magnitude
        m = LogisticRegression().fit(Xs, y)
    assert m.converged_ and (m.x_scale_ > 0).all()
    np.testing.assert_allclose(m.coef_[0, 0] * magnitude, ref.coef_[0, 0], rtol=1e-8)
    np.testing.assert_allclose(m.coef_[0, 1:], ref.coef_[0, 1:], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(m.predict_proba(Xs), ref.predict_proba(X), rtol=1e-8, atol=1e-12)
    sk = SkLogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(
        (X - ref.x_mean_) / ref.x_scale_, y)
    np.testing.assert_allclose(ref.coef_standardized_, sk.coef_, rtol=1e-4, atol=1e-6)


def test_column_beyond_float_range_is_an_error_naming_it():
    """A column whose coefficient cannot be represented on its scale (|x| ~ 1e-320):
    a ValueError naming the column, not a silent zero weight."""
    X, y = random_data()
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    frame["f1"] *= 5e-321
    with pytest.raises(ValueError, match=r"column 1 \('f1'\) overflows on the original scale"):
        LogisticRegression().fit(frame, y)


def test_wide_input_out_of_memory_names_the_square():
    """2 rows x 100,000 features: the (features + 1)^2 matrices need about 240 GB; the
    MemoryError says so (instead of "out of memory (2 x 100000 standardised rows)")."""
    try:
        overcommit = open("/proc/sys/vm/overcommit_memory").read().strip()
    except OSError:
        overcommit = "0"
    if overcommit == "1":
        pytest.skip("the kernel grants any allocation (overcommit_memory=1)")
    X = np.random.default_rng(0).normal(size=(2, 100_000))
    with pytest.raises(MemoryError, match=r"100000 features need about 240 GB, and memory "
                                          r"grows with the square of the number of features"):
        LogisticRegression().fit(X, [0, 1])


# ---- API ----------------------------------------------------------------------------------
def test_api_shapes_and_labels():
    X, y = random_data()
    labels = np.where(y == 1, "buy", "browse")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    m = LogisticRegression().fit(df, labels)
    assert list(m.classes_) == ["browse", "buy"]
    assert m.coef_.shape == (1, 5) and m.intercept_.shape == (1,)
    assert m.n_features_in_ == 5 and list(m.feature_names_in_) == list(df.columns)
    proba = m.predict_proba(df)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(m.predict(df)) <= {"browse", "buy"}
    np.testing.assert_array_equal(m.predict(df), np.where(proba[:, 1] > 0.5, "buy", "browse"))
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])
    with pytest.raises(propensity.learn.base.NotFittedError):
        LogisticRegression().predict(X)


def test_sklearn_clone_and_params():
    from sklearn.base import clone
    m = LogisticRegression(C=3.0, l1_ratio=0.2, class_weight="balanced")
    c = clone(m)
    assert c.get_params() == m.get_params()
    assert "C=3.0" in repr(m)


# ---- persistence --------------------------------------------------------------------
@pytest.mark.parametrize("labels", ["int", "str"])
def test_save_load_pickle_identical(tmp_path, labels):
    B, y = funnel_data()
    yy = y if labels == "int" else np.where(y == 1, "yes", "no")
    m = LogisticRegression(C=0.5, l1_ratio=0.5, class_weight={yy[y == 1][0]: 5.0}).fit(B, yy)
    path = tmp_path / "lr.model"
    m.save(path)
    for other in (propensity.learn.base.load_model(path), pickle.loads(pickle.dumps(m)),
                  LogisticRegression.from_bytes(m.to_bytes())):
        assert isinstance(other, LogisticRegression)
        assert np.array_equal(other.predict_proba(B), m.predict_proba(B))
        assert np.array_equal(other.predict(B), m.predict(B))
        assert other.get_params() == m.get_params()
        assert list(other.classes_) == list(m.classes_)
        assert other.n_iter_[0] == m.n_iter_[0]


def test_corrupted_document_is_rejected():
    X, y = random_data()
    data = bytearray(LogisticRegression().fit(X, y).to_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ValueError):
        LogisticRegression.from_bytes(bytes(data))


def test_unfitted_pickle_round_trip():
    m = pickle.loads(pickle.dumps(LogisticRegression(C=2.0)))
    assert m.C == 2.0


# ---- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"C": 0.0}, "C must"), ({"C": -1.0}, "C must"), ({"C": float("nan")}, "C must"),
    ({"C": "1"}, "C must"), ({"l1_ratio": 1.5}, "l1_ratio"), ({"l1_ratio": -0.1}, "l1_ratio"),
    ({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"),
    ({"class_weight": "balance"}, "class_weight"), ({"fit_intercept": "yes"}, "fit_intercept"),
])
def test_bad_params(kwargs, match):
    X, y = random_data(n=100)
    with pytest.raises(ValueError, match=match):
        LogisticRegression(**kwargs).fit(X, y)


def test_bad_data():
    X, y = random_data(n=100)
    Xn = X.copy()
    Xn[4, 2] = np.nan
    with pytest.raises(ValueError, match="X column 2 .*NaN.* row 4"):
        LogisticRegression().fit(Xn, y)
    Xi = X.copy()
    Xi[5, 1] = np.inf
    with pytest.raises(ValueError, match="X column 1 .*infinite.*row 5"):
        LogisticRegression().fit(Xi, y)
    with pytest.raises(ValueError, match="single class"):
        LogisticRegression().fit(X, np.ones(100))
    with pytest.raises(ValueError, match="sample_weight"):
        LogisticRegression().fit(X, y, sample_weight=-np.ones(100))
    with pytest.raises(ValueError, match="zero total weight"):
        LogisticRegression(class_weight={1: 0.0}).fit(X, y)
    m = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        m.predict_proba(Xn)


def test_doc_string_objective_in_module():
    assert "sum_i s_i" in propensity.learn.linear.__doc__
    assert io is not None
