"""Categorical features of the tree ensembles (issue 19): binning to category codes,
splits by sets of categories, and every path that reads them (scoring, prefixes,
TreeSHAP, trees_to_dataframe, model documents)."""
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from propensity.learn.base import load_model
from propensity.learn.binning import OTHER_CODE, BinMapper
from propensity.learn.forest import RandomForestClassifier
from propensity.learn.gbdt import GradientBoostingClassifier
from propensity.learn.trees import CAT_BITS, CAT_SPLIT

from test_shap import _brute_force

ENSEMBLES = (GradientBoostingClassifier, RandomForestClassifier)


def _data(n=6000, k=60, seed=0):
    """3 numeric columns and two categorical ones (k and 8 values); the label follows a
    random effect per category, so category order carries nothing."""
    rng = np.random.default_rng(seed)
    c1 = rng.integers(0, k, n)
    c2 = rng.integers(0, 8, n)
    e1 = rng.normal(0, 1.2, k)
    e2 = rng.normal(0, 0.8, 8)
    x = rng.normal(size=(n, 3))
    logit = e1[c1] + e2[c2] + 0.7 * x[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = np.column_stack([x, c1 * 3.0 + 1.0, c2]).astype(float)  # labels need not be 0..k-1
    X[rng.random(n) < 0.03, 3] = np.nan
    return X, y


def _fit(cls, X, y, **kw):
    base = dict(n_estimators=20, random_state=0, max_depth=6)
    if cls is RandomForestClassifier:
        base["max_depth"] = 8
    base.update(kw)
    return cls(**base).fit(X, y)


def test_bin_mapper_codes_by_frequency_other_and_missing():
    col = np.array([5, 5, 5, 2, 2, 9, 9, 9, 9, 7, np.nan, 3], dtype=float)
    m = BinMapper(categorical=[0], max_cat=3).fit(col[:, None])
    # 9 (4 rows) -> 0, 5 (3) -> 1, 2 (2) -> 2; 7 and 3 (1 each) -> other; NaN missing
    B = m.transform(np.array([[9.0], [5.0], [2.0], [7.0], [3.0], [np.nan], [123.0]]))
    assert B[:, 0].tolist() == [0, 1, 2, OTHER_CODE, OTHER_CODE, 255, OTHER_CODE]
    assert m.categorical_mask_.tolist() == [1]
    assert m.cat_n_other_[0] == 2
    again = BinMapper.from_arrays(m.to_arrays())
    assert np.array_equal(again.transform(col[:, None]), m.transform(col[:, None]))
    bad = m.to_arrays()
    bad["bin_cat_codes"] = np.array([0, 0, 2], dtype=np.uint8)  # code 1 missing
    with pytest.raises(ValueError, match="category codes of column 0"):
        BinMapper.from_arrays(bad)
    with pytest.raises(ValueError, match="max_cat"):
        BinMapper(categorical=[0], max_cat=0).fit(col[:, None])
    # numeric documents have no categorical arrays
    assert not any(k.startswith("bin_cat") for k in BinMapper().fit(col[:, None]).to_arrays())


def test_rare_categories_grouped_by_their_positive_rate():
    rng = np.random.default_rng(4)
    # 20 frequent values, 400 rare ones (10 rows each): half always 1, half always 0
    freq = np.repeat(np.arange(20.0), 100)
    rare = np.repeat(np.arange(100.0, 500.0), 10)
    col = np.concatenate([freq, rare])
    y = np.concatenate([rng.integers(0, 2, freq.size), (rare % 2 == 0).astype(int)])
    m = BinMapper(categorical=[0], max_cat=16, cat_smooth=1.0).fit(col[:, None], y)
    codes = dict(zip(m.cat_values_[0].tolist(), m.cat_codes_[0].tolist()))
    assert sorted(set(codes[v] for v in range(14))) == list(range(14))  # 14 own codes
    even = {codes[v] for v in np.arange(100.0, 500.0, 2)}
    odd = {codes[v] for v in np.arange(101.0, 500.0, 2)}
    assert even | odd == {14, 15} and not even & odd  # one group per rate
    B = m.transform(np.array([[100.0], [101.0], [999.0], [np.nan]]))
    assert B[:, 0].tolist() == [codes[100.0], codes[101.0], OTHER_CODE, 255]
    again = BinMapper.from_arrays(m.to_arrays())
    assert np.array_equal(again.transform(col[:, None]), m.transform(col[:, None]))
    # without labels the rare values go to "other", as before
    plain = BinMapper(categorical=[0], max_cat=16).fit(col[:, None])
    assert plain.transform(np.array([[100.0]]))[0, 0] == OTHER_CODE


@pytest.mark.parametrize("cls", ENSEMBLES)
def test_without_categorical_features_nothing_changes(cls):
    X, y = _data(2000)
    a = _fit(cls, X, y)
    b = _fit(cls, X, y, categorical_features=[])
    assert CAT_BITS not in a._trees and CAT_BITS not in b._trees
    for k in a._trees:
        assert np.array_equal(a._trees[k], b._trees[k])
    assert "categorical_features" in a.get_params() and "cat_smooth" in a.get_params()


@pytest.mark.parametrize("cls", ENSEMBLES)
def test_categorical_splits_beat_codes_as_numbers(cls):
    X, y = _data()
    tr, te = slice(0, 4500), slice(4500, None)
    num = _fit(cls, X[tr], y[tr], n_estimators=40)
    cat = _fit(cls, X[tr], y[tr], n_estimators=40, categorical_features=[3, 4])
    assert CAT_BITS in cat._trees
    assert (cat._trees["threshold"][cat._trees["left"] >= 0] == CAT_SPLIT).any()
    auc_num = roc_auc_score(y[te], num.predict_proba(X[te])[:, 1])
    auc_cat = roc_auc_score(y[te], cat.predict_proba(X[te])[:, 1])
    assert auc_cat > auc_num + 0.01, (auc_cat, auc_num)


@pytest.mark.parametrize("cls", ENSEMBLES)
def test_scorers_prefixes_and_documents_agree(cls, tmp_path):
    X, y = _data(3000)
    m = _fit(cls, X, y, categorical_features=[3, 4])
    B = m._binned(X)
    ref = m._raw_scores(B, reference=True)
    assert np.array_equal(m._raw_scores(B), ref)
    p = m.predict_proba(X)
    raw = ref if cls is RandomForestClassifier else 1 / (1 + np.exp(-ref))
    np.testing.assert_allclose(p[:, 1], raw, rtol=0, atol=1e-15)
    pref = m.predict_proba_prefixes(X, [{"n_estimators": 5}, {"n_estimators": 12}])
    for row, k in zip(pref, (5, 12)):
        assert np.array_equal(row, m.predict_proba_prefix(X, n_estimators=k)[:, 1])
        assert np.array_equal(row, m.truncate(n_estimators=k).predict_proba(X)[:, 1])
    path = tmp_path / "m.model"
    m.save(path)
    loaded = load_model(path)
    assert np.array_equal(loaded.predict_proba(X), p)
    assert np.array_equal(pickle.loads(pickle.dumps(m)).predict_proba(X), p)
    assert np.array_equal(loaded.shap_values(X[:50]), m.shap_values(X[:50]))
    with pytest.raises(ValueError, match="categorical features"):
        m.proba_from_inputs(np.zeros((2, 5)), None)


@pytest.mark.parametrize("cls", ENSEMBLES)
def test_shap_additive_and_equal_to_enumeration(cls):
    X, y = _data(1500, k=12)
    m = _fit(cls, X, y, n_estimators=4, max_depth=4, categorical_features=[3, 4],
             min_data_per_group=5)
    phi = m.shap_values(X[:40])
    raw = m._raw_scores(m._binned(X[:40]))
    np.testing.assert_allclose(phi.sum(axis=1), raw, rtol=0, atol=1e-9)
    for i in range(8):  # the enumeration reads trees_to_dataframe's categories_left
        np.testing.assert_allclose(phi[i], _brute_force(m, X[i]), rtol=0, atol=1e-9)


def test_grouped_rare_categories_in_splits_and_explanations():
    X, y = _data(3000, k=200)
    m = _fit(GradientBoostingClassifier, X, y, n_estimators=4, max_depth=4,
             categorical_features=[3, 4], max_cat=40, min_data_per_group=5)
    assert m._bin_mapper.cat_values_[3].size > 40  # rare values share group codes
    phi = m.shap_values(X[:6])
    for i in range(6):
        np.testing.assert_allclose(phi[i], _brute_force(m, X[i]), rtol=0, atol=1e-9)
    assert np.array_equal(type(m).from_bytes(m.to_bytes()).predict_proba(X), m.predict_proba(X))


def test_trees_to_dataframe_shows_the_categories():
    X, y = _data(3000)
    m = _fit(GradientBoostingClassifier, X, y, categorical_features=[3, 4])
    df = m.trees_to_dataframe()
    cat = df[df["categories_left"].notna()]
    assert len(cat) > 0 and cat["threshold"].isna().all()
    assert set(cat["split_feature"]) <= {"x3", "x4"}
    seen = set(X[:, 3][~np.isnan(X[:, 3])]) | set(X[:, 4])
    assert all(set(c) <= seen and len(c) >= 1 for c in cat["categories_left"])
    num = df[(df["left_child"] >= 0) & df["categories_left"].isna()]
    assert num["threshold"].notna().all()


def test_pandas_category_dtype_unseen_and_missing():
    rng = np.random.default_rng(1)
    n = 3000
    levels = list("abcdef")
    probs = [0.3, 0.3, 0.3, 0.04, 0.03, 0.03]
    c = rng.choice(levels, n, p=probs)
    eff = dict(zip(levels, [-1.5, 0.0, 1.5, 0.5, -0.5, 1.0]))
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(np.vectorize(eff.get)(c) + x)))).astype(int)
    df = pd.DataFrame({"x": x, "src": pd.Categorical(c, categories=levels)})
    for cls in ENSEMBLES:
        m = _fit(cls, df, y, max_cat=3)  # d, e, f share the "other" code
        assert m._bin_mapper.categorical_mask_.tolist() == [0, 1]
        new = pd.DataFrame({"x": [0.1, 0.1, 0.1, 0.1],
                            "src": pd.Categorical(["d", "zzz", None, "a"])})
        p = m.predict_proba(new)[:, 1]
        assert p[0] == p[1]  # unseen goes where the "other" categories go
        tdf = m.trees_to_dataframe()
        lefts = [v for v in tdf["categories_left"] if v is not None]
        assert lefts and all(set(v) <= {"a", "b", "c"} for v in lefts)
        m2 = type(m).from_bytes(m.to_bytes())
        assert np.array_equal(m2.predict_proba(new), m.predict_proba(new))


def test_bad_categorical_inputs():
    X, y = _data(500)
    df = pd.DataFrame(X, columns=[f"c{j}" for j in range(5)])
    with pytest.raises(ValueError, match="'nope', which X does not have"):
        GradientBoostingClassifier(categorical_features=["nope"]).fit(df, y)
    with pytest.raises(ValueError, match="no column names"):
        GradientBoostingClassifier(categorical_features=["c3"]).fit(X, y)
    with pytest.raises(ValueError, match="out of range"):
        RandomForestClassifier(categorical_features=[7]).fit(X, y)
    with pytest.raises(ValueError, match="boolean mask must have 5"):
        RandomForestClassifier(categorical_features=[True, False]).fit(X, y)
    for bad in (dict(max_cat=0), dict(max_cat=255), dict(cat_smooth=-1.0),
                dict(min_data_per_group=-1), dict(max_cat_threshold=0)):
        with pytest.raises(ValueError):
            GradientBoostingClassifier(categorical_features=[3], **bad).fit(X, y)
    # a column of many distinct values keeps max_cat of them, the rest is "other"
    Xm = X.copy()
    Xm[:, 3] = np.arange(500.0)
    m = BinMapper(categorical=[3], max_cat=50).fit(Xm)
    assert m.cat_values_[3].size == 50 and m.cat_n_other_[3] == 450
    # with the labels (as the estimators fit) the rare values are grouped instead
    m = GradientBoostingClassifier(n_estimators=3, categorical_features=[3], max_cat=50).fit(Xm, y)
    bm = m._bin_mapper
    assert bm.cat_values_[3].size == 500 and bm.cat_n_other_[3] == 0
    assert sorted(set(bm.cat_codes_[3].tolist())) == list(range(50))
    # a model with category columns needs them at predict time
    dfc = pd.DataFrame({"x": X[:, 0], "s": pd.Categorical(np.where(y == 1, "u", "v"))})
    mc = GradientBoostingClassifier(n_estimators=3).fit(dfc, y)
    with pytest.raises(ValueError, match="not a DataFrame"):
        mc.predict_proba(X[:, :2])


def test_empty_string_and_mixed_categories_are_categories_of_their_own():
    rng = np.random.default_rng(2)
    n = 2000
    levels = ["", "a", 7, 2.5]  # an empty string, text and numbers in one column
    idx = rng.integers(0, 4, n)
    eff = np.array([1.5, -1.5, 0.5, -0.5])
    y = (rng.random(n) < 1 / (1 + np.exp(-eff[idx]))).astype(int)
    col = pd.Categorical(np.array(levels, dtype=object)[idx], categories=levels)
    df = pd.DataFrame({"x": rng.normal(size=n), "s": col})
    m = _fit(GradientBoostingClassifier, df, y, n_estimators=10, min_data_per_group=5)
    probe = pd.DataFrame({"x": [0.0] * 4, "s": pd.Categorical(levels, categories=levels)})
    p = m.predict_proba(probe)[:, 1]
    assert p[0] > p[2] > p[3] > p[1]  # the order of the effects
    lefts = [v for v in m.trees_to_dataframe()["categories_left"] if v is not None]
    assert lefts and all(set(v) <= set(levels) for v in lefts)
    m2 = GradientBoostingClassifier.from_bytes(m.to_bytes())
    assert np.array_equal(m2.predict_proba(probe), m.predict_proba(probe))


@pytest.mark.parametrize("cls", ENSEMBLES)
def test_auc_beside_lightgbm_with_the_same_categoricals(cls):
    lgb = pytest.importorskip("lightgbm")  # optional: not in the test extra
    X, y = _data(20000, k=120)
    tr, te = slice(0, 16000), slice(16000, None)
    ours = _fit(cls, X[tr], y[tr], n_estimators=60, categorical_features=[3, 4])
    if cls is GradientBoostingClassifier:
        ref = lgb.LGBMClassifier(n_estimators=60, max_depth=6, num_leaves=63, verbose=-1,
                                 n_jobs=1, random_state=0)
    else:
        ref = lgb.LGBMClassifier(boosting_type="rf", n_estimators=60, max_depth=8,
                                 num_leaves=255, bagging_fraction=0.632, bagging_freq=1,
                                 feature_fraction=0.4, verbose=-1, n_jobs=1, random_state=0)
    ref.fit(X[tr], y[tr], categorical_feature=[3, 4])
    auc = roc_auc_score(y[te], ours.predict_proba(X[te])[:, 1])
    auc_ref = roc_auc_score(y[te], ref.predict_proba(X[te])[:, 1])
    assert auc >= auc_ref - 0.01, (auc, auc_ref)
