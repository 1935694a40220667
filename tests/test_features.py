"""InteractionFeatureTransformer, the stratified splits and the calibrators."""
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from propensity.learn.calibration import IsotonicCalibrator, PlattCalibrator, pav
from propensity.learn.features import SESSION_FEATURES, InteractionFeatureTransformer
from propensity.learn.model_selection import stratified_kfold, stratified_split

DERIVED = ["sign_in_x_saw_checkout", "basket_icon_click_x_basket_add_detail",
           "basket_add_list_x_basket_add_detail", "checked_delivery_detail_x_sign_in",
           "account_page_click_x_sign_in", "engagement_score", "intent_score",
           "device_mobile_returning", "device_computer_returning", "device_tablet_returning"]


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(0, 2, (n, 23)).astype(np.uint8), columns=SESSION_FEATURES)


def _reference(df):
    out = df.astype(np.int64).copy()
    for a, b in [("sign_in", "saw_checkout"), ("basket_icon_click", "basket_add_detail"),
                 ("basket_add_list", "basket_add_detail"), ("checked_delivery_detail", "sign_in"),
                 ("account_page_click", "sign_in")]:
        out[f"{a}_x_{b}"] = df[a] * df[b]
    out["engagement_score"] = df[["basket_icon_click", "basket_add_list", "basket_add_detail",
                                  "account_page_click", "detail_wishlist_add", "sort_by"]].sum(axis=1)
    out["intent_score"] = df[["saw_checkout", "checked_delivery_detail", "checked_returns_detail",
                              "sign_in", "saw_delivery"]].sum(axis=1)
    for d in ("device_mobile", "device_computer", "device_tablet"):
        out[f"{d}_returning"] = df[d] * df["returning_user"]
    return out


def test_features_match_the_spec_on_frames_and_arrays():
    df = _frame()
    t = InteractionFeatureTransformer().fit(df)
    names = list(t.get_feature_names_out())
    assert names == SESSION_FEATURES + DERIVED
    ref = _reference(df)
    Z = t.transform(df)
    assert Z.dtype == np.uint8
    np.testing.assert_array_equal(Z, ref[names].to_numpy())
    # arrays: the 23 session columns in order
    Za = InteractionFeatureTransformer().fit(df.to_numpy()).transform(df.to_numpy())
    np.testing.assert_array_equal(Za, Z)
    # float 0/1 input is binary too; other floats stay float
    assert t.transform(df.astype(float)).dtype == np.uint8
    f = df.astype(float)
    f.iloc[0, 0] = 0.5
    out = t.transform(f)
    assert out.dtype == np.float64 and out[0, 23 + 5] == pytest.approx(ref.iloc[0, 23 + 5] - df.iloc[0, 0] + 0.5)


def test_missing_source_columns_are_skipped_with_a_warning():
    df = _frame().drop(columns=["sign_in", "device_tablet"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = InteractionFeatureTransformer().fit(df)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("'sign_in'" in m for m in messages)
    assert any("'device_tablet'" in m and "device_tablet_returning" in m for m in messages)
    names = list(t.get_feature_names_out())
    assert "intent_score" not in names and "sign_in_x_saw_checkout" not in names
    assert "device_tablet_returning" not in names and "engagement_score" in names
    assert t.transform(df).shape == (200, len(names))


def test_column_order_and_extra_columns_at_transform():
    df = _frame()
    t = InteractionFeatureTransformer().fit(df)
    shuffled = df[SESSION_FEATURES[::-1]].assign(extra=1)
    np.testing.assert_array_equal(t.transform(shuffled), t.transform(df))
    with pytest.raises(ValueError, match="missing column"):
        t.transform(df.drop(columns=["loc_uk"]))


def test_interactions_off_and_pickle():
    df = _frame()
    t = InteractionFeatureTransformer(interactions=False).fit(df)
    assert list(t.get_feature_names_out()) == SESSION_FEATURES
    t2 = pickle.loads(pickle.dumps(InteractionFeatureTransformer().fit(df)))
    np.testing.assert_array_equal(t2.transform(df), InteractionFeatureTransformer().fit_transform(df))


def test_stratified_split_and_folds_keep_class_ratio():
    rng = np.random.default_rng(0)
    y = (rng.random(10_001) < 0.042).astype(np.uint8)
    tr, te = stratified_split(y, 0.2, 42)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == y.size
    assert abs(y[te].sum() - round(0.2 * y.sum())) <= 1
    np.testing.assert_array_equal(stratified_split(y, 0.2, 42)[1], te)  # deterministic
    folds = stratified_kfold(y, 3, 42)
    val = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(val), np.arange(y.size))
    pos = [y[v].sum() for _, v in folds]
    assert max(pos) - min(pos) <= 1
    with pytest.raises(ValueError, match="fewer than the 3"):
        stratified_kfold(np.array([0, 0, 0, 0, 1, 1]), 3)


def test_isotonic_matches_sklearn_and_platt_is_monotone():
    iso = pytest.importorskip("sklearn.isotonic")
    rng = np.random.default_rng(1)
    s = np.round(rng.random(3000), 2)
    y = (rng.random(3000) < s ** 2).astype(float)
    w = rng.random(3000)
    ours = IsotonicCalibrator().fit(s, y, w)
    ref = iso.IsotonicRegression(out_of_bounds="clip").fit(s, y, sample_weight=w)
    grid = np.linspace(-0.1, 1.1, 501)
    np.testing.assert_allclose(ours.transform(grid), ref.predict(grid), atol=1e-12)
    fitted = pav(np.array([1.0, 0.0, 2.0, 1.0]), np.ones(4))
    np.testing.assert_allclose(fitted, [0.5, 0.5, 1.5, 1.5])
    # continuous scores (a numeric file: one distinct score a row), C kernel vs sklearn
    sc = rng.random(20000)
    yc = (rng.random(20000) < sc ** 3).astype(float)
    ours = IsotonicCalibrator().fit(sc, yc)
    ref = iso.IsotonicRegression(out_of_bounds="clip").fit(sc, yc)
    np.testing.assert_allclose(ours.transform(grid), ref.predict(grid), atol=1e-12)
    with pytest.raises(ValueError, match="weight 1 is not a finite positive"):
        pav(np.zeros(3), np.array([1.0, 0.0, 1.0]))
    # bad input named by argument and row, not by the kernel's position among ties
    with pytest.raises(ValueError, match=r"sample_weight\[2\] is inf"):
        IsotonicCalibrator().fit(sc[:4], yc[:4], np.array([1.0, 1.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"scores\[1\] is nan"):
        IsotonicCalibrator().fit(np.array([0.1, np.nan, 0.3]), np.array([0.0, 1.0, 1.0]))
    p = PlattCalibrator().fit(s, y).transform(grid)
    assert np.all(np.diff(p) >= 0) and p.min() > 0 and p.max() < 1
