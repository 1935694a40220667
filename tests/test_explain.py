"""Reason codes (issue 17): PropensityModel.explain, the predictor's explain=k on
DataFrames and files, and propensity.predict --explain."""
import numpy as np
import pandas as pd
import pytest

from conftest import FEATURES, session_rows, write_sessions_csv
from propensity import CustomerPropensityPredictor
from propensity.learn.forest import RandomForestClassifier
from propensity.learn.gbdt import GradientBoostingClassifier
from propensity.learn.linear import LogisticRegression
from propensity.predict import main
from propensity.scoring.model import PropensityModel, top_reasons

MODELS = ["random_forest", "gradient_boosting", "logistic_regression"]


@pytest.fixture(scope="module")
def predictors(model_dir):
    out = {}
    for name in MODELS:
        p = CustomerPropensityPredictor(model_dir)
        p.load_model(name)
        out[name] = p
    return out


def _frame(n=400, seed=5):
    return pd.DataFrame(session_rows(n, seed=seed, p=0.3), columns=FEATURES)


def _raw_target(model, X):
    raw = model.predict_raw(X)
    if model.model_name_ == "random_forest":
        return raw
    return np.log(raw / (1.0 - raw))  # the estimator's log-odds


@pytest.mark.parametrize("name", MODELS)
def test_explain_columns_and_additivity(predictors, name):
    model = predictors[name].model
    X = _frame()
    ex = model.explain(X)
    assert list(ex.columns) == list(model.input_columns_) + ["base_value"]
    assert ex.index.equals(X.index)
    np.testing.assert_allclose(ex.sum(axis=1), _raw_target(model, X), rtol=0, atol=1e-9)


def test_interaction_shares_go_equally_to_their_sources(predictors):
    """Reference: the estimator's SHAP values on the feature matrix, each derived feature
    split equally between the source columns the transformer lists."""
    model = predictors["gradient_boosting"].model
    X = _frame(200, seed=9)
    E = model.encode(X)[0]
    Z = model.transformer_.transform(model.schema_.expand(E))
    phi = model.estimator_.shap_values(Z)
    names = list(model.transformer_.get_feature_names_out())
    assert model.transformer_.derived_  # the fixture's models have interaction features
    ref = pd.DataFrame(0.0, index=X.index, columns=list(model.input_columns_))
    derived = {name: src for name, _, src in model.transformer_.derived_}
    for f, fname in enumerate(names):
        for src in derived.get(fname, [fname]):
            ref[src] += phi[:, f] / len(derived.get(fname, [fname]))
    ex = model.explain(X)
    np.testing.assert_allclose(ex[ref.columns].to_numpy(), ref.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ex["base_value"], phi[:, -1], rtol=0, atol=0)


@pytest.mark.parametrize("categorical, width", [("onehot", 3), ("auto", 1)])
def test_one_hot_columns_are_summed_back_to_their_text_column(categorical, width):
    """A text column's share: its one-hot columns summed ('onehot'), or its one native
    feature ('auto')."""
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame({"visits": rng.integers(0, 9, n).astype(float),
                      "channel": rng.choice(["email", "search", "social"], n),
                      "promo": rng.integers(0, 2, n)})
    y = ((X["channel"] == "email") * 1.5 + 0.2 * X["visits"] + X["promo"] +
         rng.normal(size=n) > 2).astype(int)
    for est in (GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
                LogisticRegression()):
        model = PropensityModel(estimator=est, calibration=None, interactions=False,
                                categorical=categorical).fit(X, y)
        ex = model.explain(X)
        assert list(ex.columns) == ["visits", "channel", "promo", "base_value"]
        E = model.encode(X)[0]
        Z = model.transformer_.transform(model.schema_.expand(E))
        phi = model.estimator_.shap_values(Z)
        feats = list(model.transformer_.get_feature_names_out())
        onehot = [f for f, name in enumerate(feats) if name not in ("visits", "promo")]
        assert len(onehot) == width
        np.testing.assert_allclose(ex["channel"], phi[:, onehot].sum(axis=1), rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(ex.sum(axis=1), _raw_target(model, X), rtol=0, atol=1e-9)


def test_forest_explain_from_a_fresh_fit_is_additive():
    X = _frame(1200, seed=2)
    y = (X["saw_checkout"] + X["sign_in"] + np.random.default_rng(1).random(1200) > 1.2)
    model = PropensityModel(estimator=RandomForestClassifier(n_estimators=10, max_depth=5,
                                                             random_state=0)).fit(X, y)
    np.testing.assert_allclose(model.explain(X).sum(axis=1), _raw_target(model, X), rtol=0,
                               atol=1e-9)


def test_top_reasons_order_and_ties():
    c = np.array([[0.1, 0.3, 0.3, -0.2], [0.0, 0.0, 0.0, 0.0], [-1.0, -2.0, -0.5, -3.0]])
    idx, val = top_reasons(c, 3)
    assert idx.tolist() == [[1, 2, 0], [0, 1, 2], [2, 0, 1]]
    assert val.tolist() == [[0.3, 0.3, 0.1], [0.0, 0.0, 0.0], [-0.5, -1.0, -2.0]]


@pytest.mark.parametrize("name", MODELS)
def test_predict_reasons_are_the_top_contributions(predictors, name):
    pred = predictors[name]
    X = _frame(300, seed=4)
    out = pred.predict(X, explain=3)
    base = pred.predict(X)
    pd.testing.assert_frame_equal(out[base.columns].drop(columns="prediction_timestamp"),
                                  base.drop(columns="prediction_timestamp"))
    assert list(out.columns[len(base.columns):]) == [
        "reason_1", "reason_2", "reason_3",
        "reason_1_contribution", "reason_2_contribution", "reason_3_contribution"]
    ex = pred.model.explain(X).drop(columns="base_value")
    for i in range(len(X)):
        row = ex.iloc[i]
        order = sorted(range(len(row)), key=lambda j: (-row.iloc[j], j))[:3]
        assert [out.at[i, f"reason_{r + 1}"] for r in range(3)] == [row.index[j] for j in order]
        assert [out.at[i, f"reason_{r + 1}_contribution"] for r in range(3)] == \
            [row.iloc[j] for j in order]


def _read(path):
    return pd.read_csv(path, dtype={"UserID": str}, keep_default_na=False)


def test_file_reasons_equal_dataframe_reasons(predictors, tmp_path):
    pred = predictors["gradient_boosting"]
    X = session_rows(700, seed=8, p=0.3)
    ids = [f"id{i}" for i in range(700)]
    path = write_sessions_csv(tmp_path / "in.csv", X, ids=ids)
    df = pd.DataFrame(X, columns=FEATURES)
    df.insert(0, "UserID", ids)
    want = pred.predict(df, explain=4)
    for chunk in (64, 100_000):  # explained block by block, or at once
        out = tmp_path / f"out{chunk}.csv"
        pred.predict_from_file(path, out, chunksize=chunk, explain=4)
        got = _read(out)
        assert list(got.columns) == list(want.columns)
        for r in range(1, 5):
            assert got[f"reason_{r}"].tolist() == want[f"reason_{r}"].tolist()
            np.testing.assert_allclose(got[f"reason_{r}_contribution"],
                                       want[f"reason_{r}_contribution"], rtol=0, atol=5e-7)
    pred.predict_to_file(df, tmp_path / "df.csv", explain=4)
    assert _read(tmp_path / "df.csv").drop(columns="prediction_timestamp").equals(
        _read(tmp_path / "out64.csv").drop(columns="prediction_timestamp"))


def test_bad_explain_values(predictors):
    pred = predictors["random_forest"]
    X = _frame(10)
    for bad in (-1, True, 2.5, "3", len(FEATURES) + 1):
        with pytest.raises(ValueError, match="explain must be an int"):
            pred.predict(X, explain=bad)
    assert list(pred.predict(X, explain=0).columns) == list(pred.predict(X).columns)
    out = pred.predict(X.iloc[:0], explain=2)
    assert len(out) == 0 and "reason_2_contribution" in out.columns


def test_cli_explain(model_dir, tmp_path, capsys):
    X = session_rows(200, seed=12, p=0.3)
    path = write_sessions_csv(tmp_path / "in.csv", X, ids=[f"u{i}" for i in range(200)])
    out = tmp_path / "pred.csv"
    rc = main(["--input_file", str(path), "--output_file", str(out), "--model_dir", model_dir,
               "--explain", "3", "--chunksize", "50", "--quiet"])
    assert rc == 0
    df = _read(out)
    assert list(df.columns[-6:]) == ["reason_1", "reason_2", "reason_3", "reason_1_contribution",
                                     "reason_2_contribution", "reason_3_contribution"]
    assert set(df["reason_1"]) <= set(FEATURES)
    assert (df["reason_1_contribution"] >= df["reason_2_contribution"]).all()
    capsys.readouterr()
    rc = main(["--input_file", str(path), "--output_file", str(tmp_path / "p2.csv"),
               "--model_dir", model_dir, "--explain", "99", "--quiet"])
    assert rc == 2 and "input columns" in capsys.readouterr().err
    assert not (tmp_path / "p2.csv").exists()
    with pytest.raises(SystemExit) as exc:
        main(["--input_file", str(path), "--output_file", str(tmp_path / "p3.csv"),
              "--model_dir", model_dir, "--explain", "0"])
    assert exc.value.code == 2


@pytest.mark.parametrize("max_rows", [0, 5, 200_000])
def test_reason_cache_gives_the_reasons_of_each_block(predictors, max_rows):
    """The stream's cache of explained distinct rows (full, partly full or off) returns
    what explaining each block alone returns."""
    from propensity.scoring.predictor import ReasonCache

    model = predictors["random_forest"].model
    cache = ReasonCache(model, 3, max_rows=max_rows)
    for seed in range(4):
        E = model.encode(_frame(500, seed=seed))[0]
        idx, val = cache(E)
        want_idx, want_val = model.reasons_encoded(E, 3)
        assert np.array_equal(idx, want_idx) and np.array_equal(val, want_val)
    assert len(cache.slot) <= max_rows


def test_explain_needs_an_estimator_that_explains(predictors):
    import copy

    pred = CustomerPropensityPredictor.from_model(copy.copy(predictors["random_forest"].model))
    pred.model.estimator_ = object()
    with pytest.raises(ValueError, match="cannot explain"):
        pred.predict(_frame(5), explain=2)


def test_csv_format_reason_arguments_are_checked():
    from propensity import _core

    pred, proba = np.zeros(2, np.uint8), np.array([0.25, 0.5])
    col, val = np.array([[1], [0]], np.int32), np.array([[0.5], [-0.25]])
    names, starts = b"ab,c", np.array([0, 1, 4], np.int64)
    out = _core.csv_format(pred, proba, 2, b"T", False, reason_col=col, reason_value=val,
                           reason_names=names, reason_name_start=starts, reason_digits=3)
    assert out == b'0,0,0.25,T,"b,c",0.500\n1,0,0.50,T,a,-0.250\n'
    bad = [dict(reason_col=col[:1]), dict(reason_value=val[:, :0]),
           dict(reason_name_start=np.array([0, 1, 9], np.int64)),
           dict(reason_col=np.array([[2], [0]], np.int32)),
           dict(reason_value=np.array([[np.inf], [0.0]])), dict(reason_digits=10),
           dict(reason_names=None)]
    for change in bad:
        kw = dict(reason_col=col, reason_value=val, reason_names=names,
                  reason_name_start=starts, reason_digits=3)
        kw.update(change)
        with pytest.raises(ValueError):
            _core.csv_format(pred, proba, 2, b"T", False, **kw)


def test_explain_with_parquet_is_refused(predictors, model_dir, tmp_path, capsys):
    pred = predictors["gradient_boosting"]
    path = write_sessions_csv(tmp_path / "in.csv", session_rows(20, seed=1), ids=None)
    with pytest.raises(ValueError, match="Parquet"):
        pred.predict_from_file(path, tmp_path / "out.parquet", explain=2)
    with pytest.raises(ValueError, match="Parquet"):
        pred.predict_to_file(_frame(5), tmp_path / "out.parquet", explain=2)
    with pytest.raises(ValueError, match="Parquet"):
        pred.predict_from_file(tmp_path / "in.parquet", tmp_path / "out.csv", explain=2)
    for args in (["--input_file", str(path), "--output_file", str(tmp_path / "o.parquet")],
                 ["--input_file", str(tmp_path / "i.pq"), "--output_file", str(tmp_path / "o.csv")]):
        with pytest.raises(SystemExit) as exc:
            main(args + ["--model_dir", model_dir, "--explain", "2"])
        assert exc.value.code == 2
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob("out.*"))
    # gzip CSV output takes the reasons
    pred.predict_from_file(path, tmp_path / "r.csv.gz", explain=2)
    got = pd.read_csv(tmp_path / "r.csv.gz")
    assert list(got.columns[-4:]) == ["reason_1", "reason_2", "reason_1_contribution",
                                      "reason_2_contribution"] and len(got) == 20
