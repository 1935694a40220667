"""Categorical columns through the whole product (issue 19): logistic regression's
cross-fitted target encoding, the schema's native category columns (codes, "other",
missing, the cap), the training run's --categorical auto|onehot, the predictor's paths
and the drift report's unseen counts."""
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from propensity.learn.linear import LogisticRegression
from propensity.schema import MAX_NATIVE, OTHER, Schema
from propensity.errors import DataError


# ---------------------------------------------------------------------------------------
# logistic regression: the target encoding
# ---------------------------------------------------------------------------------------
def _cat_data(n=4000, k=60, seed=0):
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, k, n)
    effect = rng.normal(0, 1.5, k)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(effect[cat] + x - 1)))
    y = (rng.random(n) < p).astype(int)
    return np.column_stack([x, cat.astype(float)]), y


def _log_odds_reference(cats, y, w, m):
    """The smoothed log-odds of each category, by pandas group sums."""
    df = pd.DataFrame({"c": cats, "pos": w * y, "neg": w * (1 - y)})
    prior = df.pos.sum() / (df.pos.sum() + df.neg.sum())
    g = df.groupby("c")[["pos", "neg"]].sum()
    return (np.log(g.pos + m * prior) - np.log(g.neg + m * (1 - prior))), prior


def test_lr_full_table_is_the_smoothed_log_odds():
    X, y = _cat_data()
    w = np.random.default_rng(1).uniform(0.5, 2.0, y.size)
    m = LogisticRegression(categorical_features=[1], cat_smooth=7.0).fit(X, y, w)
    ref, prior = _log_odds_reference(X[:, 1], y, w, 7.0)
    enc = m._target_encoding
    np.testing.assert_array_equal(enc.values[0], ref.index.to_numpy())
    np.testing.assert_allclose(enc.codes[0], ref.to_numpy(), rtol=1e-12)
    assert enc.prior == pytest.approx(np.log(prior / (1 - prior)), rel=1e-12)
    # scoring: the table's value, unseen and missing the prior
    Xs = np.array([[0.3, X[0, 1]], [0.3, 999.0], [0.3, np.nan]])
    z = m._check_predict_X(Xs)[:, 1]
    assert z[0] == pytest.approx(ref.loc[X[0, 1]])
    assert z[1] == z[2] == pytest.approx(enc.prior)


def test_lr_encoding_is_cross_fitted_a_rows_label_never_enters_its_value():
    X, y = _cat_data(n=600, k=8)
    base = np.zeros((y.size, 2))
    base[np.arange(y.size), y] = 1.0
    enc = LogisticRegression(categorical_features=[1]).fit(X, y)._target_encoding
    Z = enc.cross_fitted(X, base, 5)
    for i in (0, 17, 333):
        flipped = base.copy()
        flipped[i] = flipped[i][::-1]
        assert enc.cross_fitted(X, flipped, 5)[i, 1] == Z[i, 1]
    # and it is the other folds' smoothed log-odds (reference by pandas on those rows)
    fold = np.empty(y.size, dtype=np.int64)
    fold[np.random.default_rng(0).permutation(y.size)] = np.arange(y.size) % 5
    i = 5
    out = fold != fold[i]
    ref, _ = _log_odds_reference(X[out, 1], y[out], np.ones(out.sum()), enc.m)
    assert Z[i, 1] == pytest.approx(ref.loc[X[i, 1]], rel=1e-12)


def test_lr_weights_equal_repeated_rows():
    X, y = _cat_data(n=500, k=10)
    w = np.random.default_rng(2).integers(1, 4, y.size)
    a = LogisticRegression(categorical_features=[1]).fit(X, y, w.astype(float))
    b = LogisticRegression(categorical_features=[1]).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(a._target_encoding.codes[0], b._target_encoding.codes[0],
                               rtol=1e-12)


def test_lr_categorical_beside_scikit_learn_one_hot():
    sk = pytest.importorskip("sklearn.linear_model")
    from sklearn.metrics import roc_auc_score
    X, y = _cat_data(n=6000, k=200, seed=3)
    Xt, yt, X, y = X[3000:], y[3000:], X[:3000], y[:3000]
    ours = LogisticRegression(categorical_features=[1]).fit(X, y)
    onehot = lambda A: np.column_stack([A[:, 0], (A[:, 1:2] == np.arange(200)).astype(float)])
    ref = sk.LogisticRegression(max_iter=2000).fit(onehot(X), y)
    auc = roc_auc_score(yt, ours.predict_proba(Xt)[:, 1])
    auc_ref = roc_auc_score(yt, ref.predict_proba(onehot(Xt))[:, 1])
    plain = LogisticRegression().fit(X[:, :1], y)
    assert auc > roc_auc_score(yt, plain.predict_proba(Xt[:, :1])[:, 1]) + 0.05
    assert auc >= auc_ref - 0.01


def test_lr_categorical_save_load_shap_and_pandas_category():
    X, y = _cat_data()
    df = pd.DataFrame({"x": X[:, 0], "c": pd.Categorical([f"v{int(c)}" for c in X[:, 1]])})
    m = LogisticRegression().fit(df, y)          # category dtype: categorical by itself
    assert m._target_encoding.columns == [1]
    m2 = LogisticRegression.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(m2.predict_proba(df), m.predict_proba(df))
    phi = m.shap_values(df.head(20))
    np.testing.assert_allclose(phi.sum(axis=1), m.decision_function(df.head(20)), atol=1e-10)
    unseen = df.head(2).copy()
    unseen["c"] = pd.Categorical(["new", None])
    # a category fit did not see and a missing one: the prior's log-odds
    want = m.intercept_[0] + m.coef_[0, 0] * unseen.x.to_numpy() + \
        m.coef_[0, 1] * m._target_encoding.prior
    np.testing.assert_allclose(m.decision_function(unseen), want, rtol=1e-12)


def test_lr_categorical_bad_input():
    X, y = _cat_data(n=300)
    df = pd.DataFrame({"x": X[:, 0], "c": X[:, 1]})
    with pytest.raises(ValueError, match="names the column 'nope'"):
        LogisticRegression(categorical_features=["nope"]).fit(df, y)
    with pytest.raises(ValueError, match="cat_smooth"):
        LogisticRegression(categorical_features=[1], cat_smooth=0).fit(X, y)
    with pytest.raises(ValueError, match="cat_folds"):
        LogisticRegression(categorical_features=[1], cat_folds=1).fit(X, y)
    # NaN: a missing category in a categorical feature, refused elsewhere
    Xn = X.copy()
    Xn[:5, 1] = np.nan
    LogisticRegression(categorical_features=["c"]).fit(pd.DataFrame(Xn, columns=["x", "c"]), y)
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="column 0 has a missing value"):
        LogisticRegression(categorical_features=[1]).fit(Xn, y)


def test_lr_old_documents_load_without_categories():
    X, y = _cat_data(n=300)
    m = LogisticRegression().fit(X, y)
    m2 = LogisticRegression.from_bytes(m.to_bytes())
    assert m2._target_encoding is None
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))


# ---------------------------------------------------------------------------------------
# the schema: native category columns
# ---------------------------------------------------------------------------------------
def test_schema_native_codes_other_and_missing():
    df = pd.DataFrame({"c": ["b", "a", "b", "", None, "a", "b"],
                       "m": ["1", "x", "2", "x", "1", "3", "x"]})   # numbers and text: category
    schema, E, _ = Schema.infer(df, "t", categorical="auto")
    c, m = schema.columns
    assert c.native and c.categories == ("a", "b") and m.native
    assert m.categories == ("1", "2", "3", "x")
    np.testing.assert_array_equal(E[:, 0], [1, 0, 1, np.nan, np.nan, 0, 1])
    assert schema.feature_names == ["c", "m"]
    E2, stats = schema.encode(pd.DataFrame({"c": ["a", "zz", ""], "m": [1, 2, "q"]}))
    np.testing.assert_array_equal(E2[:, 0], [0, OTHER, np.nan])
    np.testing.assert_array_equal(E2[:, 1], [0, 1, OTHER])
    assert stats.n_unseen == 2
    # the document: format 2, native columns marked; read back equal
    d = schema.to_dict()
    assert d["format"] == 2 and d["columns"][0]["encoding"] == "native"
    assert Schema.from_dict(json.loads(json.dumps(d))) == schema
    # one-hot: as before (format 1, -1 for none)
    s1, E1, _ = Schema.infer(df, "t", categorical="onehot")
    assert s1.to_dict()["format"] == 1 and not s1.columns[0].native
    assert s1.feature_names[:2] == ["c=a", "c=b"]
    np.testing.assert_array_equal(E1[:, 0], [1, 0, 1, -1, -1, 0, 1])


def test_schema_caps_at_the_most_frequent_and_logs(caplog):
    rng = np.random.default_rng(0)
    vals = np.concatenate([np.repeat([f"top{i}" for i in range(MAX_NATIVE)], 5),
                           [f"rare{i}" for i in range(3000)]])
    rng.shuffle(vals)
    with caplog.at_level(logging.WARNING, logger="propensity"):
        schema, E, _ = Schema.infer(pd.DataFrame({"c": vals}), "t.csv", categorical="auto")
    col = schema.columns[0]
    assert len(col.categories) == MAX_NATIVE and all(c.startswith("top") for c in col.categories)
    assert (E[:, 0] == OTHER).sum() == 3000
    assert "column 'c' has 3254 distinct values" in caplog.text
    assert "3000 values (3000 of 4270 rows)" in caplog.text
    with pytest.raises(DataError, match="3254 distinct values.*--categorical auto"):
        Schema.infer(pd.DataFrame({"c": vals}), "t.csv", categorical="onehot")


def test_schema_category_columns_force_numbers_to_categories():
    df = pd.DataFrame({"region": [1.0, 2.0, np.nan, 1.0], "x": [0.5, 1.5, 2.5, 3.5]})
    schema, E, _ = Schema.infer(df, "t", categorical="auto", category_columns=["region"])
    assert schema.columns[0].native and schema.columns[0].categories == ("1.0", "2.0")
    np.testing.assert_array_equal(E[:, 0], [0, 1, np.nan, 0])
    with pytest.raises(DataError, match="names 'nope', not a feature column"):
        Schema.infer(df, "t", category_columns=["nope"])


def test_schema_old_documents_are_one_hot():
    d = {"format": 1, "id_column": None, "ignored": [],
         "columns": [{"name": "c", "kind": "category", "fill": None, "categories": ["a", "b"]}]}
    s = Schema.from_dict(d)
    assert not s.columns[0].native and s.feature_names == ["c=a", "c=b"]
    with pytest.raises(ValueError, match="unknown encoding"):
        Schema.from_dict({**d, "columns": [{**d["columns"][0], "encoding": "hash"}]})
    with pytest.raises(DataError, match="at most 254"):
        Schema([__import__("propensity.schema", fromlist=["Column"]).Column(
            "c", "category", None, tuple(map(str, range(255))), True)])


# ---------------------------------------------------------------------------------------
# the training run and the predictor
# ---------------------------------------------------------------------------------------
GRID = """
[logistic_regression]
C = [1.0]
l1_ratio = [0.5]
[random_forest]
n_estimators = [20]
max_depth = [6]
min_samples_split = [2]
[gradient_boosting]
n_estimators = [20]
max_depth = [3]
learning_rate = [0.3]
"""


def _sessions_with_campaign(rows, values, seed):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from make_categorical_sessions import make
    finally:
        sys.path.pop(0)
    return make(rows, values, seed)


@pytest.fixture(scope="module")
def cat_run(tmp_path_factory):
    from propensity.train import main
    d = tmp_path_factory.mktemp("catrun")
    df = _sessions_with_campaign(4000, 400, seed=4)
    df.to_csv(d / "train.csv", index=False)
    test = _sessions_with_campaign(600, 400, seed=5).drop(columns=["ordered"])
    test.loc[:9, "campaign"] = "launched-after-training"
    test.loc[10:14, "campaign"] = ""
    test.to_csv(d / "test.csv", index=False)
    (d / "grid.toml").write_text(GRID)
    out = d / "out"
    assert main(["--train-file", str(d / "train.csv"), "--test-file", str(d / "test.csv"),
                 "--output-dir", str(out), "--grid", str(d / "grid.toml"), "--quiet"]) == 0
    return d, out


FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")


def test_auto_makes_one_categorical_feature_for_every_model(cat_run):
    from propensity.learn.base import load_model
    d, out = cat_run
    log = (out / "ml_pipeline.log").read_text()
    assert re.search(r"category column 'campaign' has \d+ distinct values; the 254 most "
                     r"frequent keep a category each, the other \d+ values \(\d+ of 4000 rows\)",
                     log)
    for fam in FAMILIES:
        m = load_model(out / f"{fam}_model.propmodel")
        col = {c.name: c for c in m.schema_.columns}["campaign"]
        assert col.native and len(col.categories) == MAX_NATIVE
        assert "campaign" in m.feature_names_out_
        f = m.feature_names_out_.index("campaign")
        assert m.estimator_.categorical_features == [f]
        if fam == "logistic_regression":
            assert m.estimator_._target_encoding.columns == [f]
        else:
            assert m.estimator_._bin_mapper.categorical_mask_[f] == 1
            assert (m.estimator_._trees["threshold"] == 255).any()   # category splits used


def test_auto_save_load_file_and_frame_paths_agree(cat_run, tmp_path):
    from propensity.learn.base import load_model
    from propensity.scoring.predictor import CustomerPropensityPredictor
    d, out = cat_run
    test = pd.read_csv(d / "test.csv", keep_default_na=False, na_values=[""],
                       dtype={"UserID": str})
    for fam in FAMILIES:
        m = load_model(out / f"{fam}_model.propmodel")
        again = type(m).from_bytes(m.to_bytes())
        p = m.predict_proba(test)[:, 1]
        np.testing.assert_array_equal(again.predict_proba(test)[:, 1], p)
        pred = CustomerPropensityPredictor(out)
        pred.load_model(fam)
        summary = pred.predict_from_file(d / "test.csv", tmp_path / f"{fam}.csv",
                                         drift_report=tmp_path / f"{fam}.json")
        got = pd.read_csv(tmp_path / f"{fam}.csv")
        np.testing.assert_allclose(got.purchase_probability, np.round(p, 6), atol=1e-12)
        np.testing.assert_allclose(pred.predict(test).purchase_probability, p, rtol=0,
                                   atol=0)
        # the drift report: per column, the rows whose value has no category of its own
        col = {c.name: c for c in m.schema_.columns}["campaign"]
        codes, _ = m.schema_.encode(test)
        j = m.schema_.names.index("campaign")
        other = int((codes[:, j] == OTHER).sum())
        assert other >= 10 and summary["n_unseen"] == other
        report = json.loads((tmp_path / f"{fam}.json").read_text())["features"]["campaign"]
        assert report["n_unseen"] == other and report["n_missing"] == 5
        assert report["unseen_share"] == pytest.approx(other / len(test))
        assert 0 < report["expected_unseen_share"] < 1 and report["psi"] is not None
        assert len(col.categories) == MAX_NATIVE
        # explanations: the category feature's share goes back to its column
        ex = m.explain(test.head(30))
        assert "campaign" in ex.columns and ex["campaign"].abs().sum() > 0


def _onehot_model(tmp_path, rows, values, seed, model, family):
    """The training run's --categorical onehot model of one family on a generated file."""
    from propensity.learn.base import load_model
    from propensity.train import main
    _sessions_with_campaign(rows, values, seed=seed).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "out"
    assert main(["--train-file", str(tmp_path / "train.csv"), "--output-dir", str(out),
                 "--grid", str(tmp_path / "grid.toml"), "--quiet", "--models", model,
                 "--categorical", "onehot"]) == 0
    return load_model(out / f"{family}_model.propmodel")


def test_onehot_keeps_todays_encoding_and_refuses_too_many_values(tmp_path, capsys):
    from propensity.train import main
    m = _onehot_model(tmp_path, 1500, 30, 6, "lr", "logistic_regression")
    assert not m.schema_.columns[-1].native
    assert sum(f.startswith("campaign=") for f in m.feature_names_out_) == 30
    wide = _sessions_with_campaign(3000, 1500, seed=6)
    wide["campaign"] = [f"id{i}" for i in range(len(wide))]
    wide.to_csv(tmp_path / "wide.csv", index=False)
    capsys.readouterr()
    assert main(["--train-file", str(tmp_path / "wide.csv"), "--output-dir",
                 str(tmp_path / "o2"), "--quiet", "--categorical", "onehot"]) == 2
    err = capsys.readouterr().err
    assert "column 'campaign' has 3000 distinct values" in err and "--categorical auto" in err
    assert not (tmp_path / "o2").exists()


def test_old_model_documents_score_the_same(cat_run, tmp_path):
    """A one-hot model document (the only kind before native columns) keeps format 1 and
    loads and scores identically."""
    m = _onehot_model(tmp_path, 1200, 20, 8, "gb", "gradient_boosting")
    df = _sessions_with_campaign(1200, 20, seed=8)
    assert m.schema_.to_dict()["format"] == 1
    assert all("encoding" not in c for c in m.schema_.to_dict()["columns"])
    again = type(m).from_bytes(m.to_bytes())
    np.testing.assert_array_equal(again.predict_proba(df)[:, 1], m.predict_proba(df)[:, 1])


@pytest.mark.slow
def test_a_million_distinct_values_are_capped_and_logged(tmp_path):
    """A category column whose every value is distinct, over a million rows: the run
    keeps the 254 most frequent values of the sample (all counts 1: the smallest texts),
    sends the rest of the sample and every later value to 'other', says so in its log, and
    trains."""
    from propensity.datasets import make_sessions
    from propensity.learn.base import load_model
    from propensity.train import main
    n = 1_000_000
    df = make_sessions(n, seed=9)
    df.insert(1, "coupon", np.char.add("k", np.arange(n).astype(str)))
    df.to_csv(tmp_path / "train.csv", index=False)
    del df
    out = tmp_path / "out"
    assert main(["--train-file", str(tmp_path / "train.csv"), "--output-dir", str(out),
                 "--models", "lr", "--cv-folds", "2", "--quiet"]) == 0
    (tmp_path / "train.csv").unlink()
    log = (out / "ml_pipeline.log").read_text()
    assert re.search(r"category column 'coupon' has 100000 distinct values; the 254 most "
                     r"frequent keep a category each, the other 99746 values \(99746 of 100000 "
                     r"rows\) share the 'other' category", log), log[:2000]
    assert "999746 cell(s) of category columns hold values without a category" in log
    m = load_model(out / "logistic_regression_model.propmodel")
    col = {c.name: c for c in m.schema_.columns}["coupon"]
    assert col.native and len(col.categories) == MAX_NATIVE


def test_code_rows_scored_once_each_equal_row_by_row(cat_run):
    """Rows of binary and native category columns are scored once per distinct row
    (compared by their codes): the same scores and explanations as row by row."""
    from propensity.learn.base import load_model
    d, out = cat_run
    test = pd.read_csv(d / "test.csv", keep_default_na=False, na_values=[""],
                       dtype={"UserID": str})
    test = pd.concat([test] * 3, ignore_index=True)
    for fam in FAMILIES:
        m = load_model(out / f"{fam}_model.propmodel")
        E, _ = m.schema_.encode(test, warn=False)
        rows, inverse = m.distinct_encoded(E)
        assert inverse is not None and rows.shape[0] <= len(test) // 3
        np.testing.assert_array_equal(m.proba_encoded(E), m._proba_rows(E))
        np.testing.assert_array_equal(m.explain_encoded(E[:200]), m._explain_rows(E[:200]))


def test_parquet_input_scores_as_the_csv(cat_run, tmp_path):
    pytest.importorskip("pyarrow")
    from propensity.scoring.predictor import CustomerPropensityPredictor
    d, out = cat_run
    test = pd.read_csv(d / "test.csv", keep_default_na=False, na_values=[""],
                       dtype={"UserID": str})
    test.to_parquet(tmp_path / "test.parquet", index=False)
    pred = CustomerPropensityPredictor(out)
    pred.load_model("gradient_boosting")
    a = pred.predict_from_file(d / "test.csv", tmp_path / "a.csv")
    b = pred.predict_from_file(tmp_path / "test.parquet", tmp_path / "b.csv")
    assert a["n_unseen"] == b["n_unseen"] >= 10
    pd.testing.assert_series_equal(pd.read_csv(tmp_path / "a.csv").purchase_probability,
                                   pd.read_csv(tmp_path / "b.csv").purchase_probability)


def test_propensity_model_fit_defaults_to_native_categories():
    """PropensityModel.fit encodes text columns as the training run does: 'auto' by default
    (one native feature per text column), 'onehot' on request; save -> load scores the same
    and an unknown mode is refused."""
    from propensity import GradientBoostingClassifier, PropensityModel

    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"sign_in": rng.integers(0, 2, n), "saw_checkout": rng.integers(0, 2, n),
                       "region": rng.choice([f"r{i}" for i in range(40)], n)})
    y = ((df.saw_checkout + (df.region.str[1:].astype(int) % 3 == 0) + rng.random(n)) > 1.5)
    y = y.astype(int).to_numpy()
    est = GradientBoostingClassifier(n_estimators=20, random_state=0)
    auto = PropensityModel(estimator=est).fit(df, y)
    assert "region" in auto.feature_names_out_
    assert not any(f.startswith("region=") for f in auto.feature_names_out_)
    assert auto.estimator_.categorical_features == [auto.feature_names_out_.index("region")]
    back = PropensityModel.from_bytes(auto.to_bytes())
    assert np.array_equal(back.predict_proba(df), auto.predict_proba(df))
    onehot = PropensityModel(estimator=est, categorical="onehot").fit(df, y)
    assert sum(f.startswith("region=") for f in onehot.feature_names_out_) == 40
    with pytest.raises(DataError, match="categorical"):
        PropensityModel(categorical="native").fit(df, y)
