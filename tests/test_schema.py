"""One schema, one validator, one scorer: regression tests of the defects that came from
the same concept living in several places (training vs prediction value rules, two
writers of test_predictions.csv, a pandas fallback of the scorer, Dask's private calls).
"""
import io
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import FEATURES
from propensity import CustomerPropensityPredictor, RandomForestClassifier
from propensity import predict as predict_cli
from propensity import train as train_cli
from propensity.datasets import make_sessions
from propensity.errors import DataError, InputDataError
from propensity.schema import BINARY, CATEGORY, NUMERIC, Column, Schema

GRID = """
[random_forest]
n_estimators = [10]
max_depth = [4]
min_samples_split = [2]
"""


def _train(tmp_path, train_df, test_df=None, extra=()):
    train_df.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "grid.toml").write_text(GRID)
    args = ["--train-file", str(tmp_path / "train.csv"), "--output-dir",
            str(tmp_path / "out"), "--models", "random_forest", "--grid",
            str(tmp_path / "grid.toml"), "--quiet", *extra]
    if test_df is not None:
        test_df.to_csv(tmp_path / "test.csv", index=False)
        args += ["--test-file", str(tmp_path / "test.csv")]
    assert train_cli.main(args) in (0, None)
    return str(tmp_path / "out")


def _generic(n=600, seed=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "UserID": [f"{i:04d}" for i in range(n)],
        "sign_in": rng.integers(0, 2, n),
        "spend": np.round(rng.gamma(2.0, 10.0, n), 2),
        "channel": rng.choice(["web", "app", "store"], n),
    })
    df["ordered"] = ((df["sign_in"] == 1) & (df["spend"] > 15) | (df["channel"] == "app")
                     ).astype(int)
    return df


# ---------------------------------------------------------------- the value rules
@pytest.mark.parametrize("kind,text,want", [
    (BINARY, "1", 1), (BINARY, " 0 ", 0), (BINARY, "1.0", 1), (BINARY, "TRUE", 1),
    (BINARY, "no", 0), (BINARY, "Y", 1), (NUMERIC, "2.5", 2.5), (NUMERIC, " -1e3", -1000),
    (CATEGORY, "web", 0), (CATEGORY, "app", 1), (CATEGORY, "other", -1), (CATEGORY, "", -1),
])
def test_same_value_same_verdict_for_frames_and_files(kind, text, want):
    col = Column("c", kind, None, ("web", "app") if kind == CATEGORY else ())
    schema = Schema([col])
    E, _ = schema.encode(pd.DataFrame({"c": [text]}))
    assert float(E[0, 0]) == want
    try:
        number = float(text)
    except ValueError:
        number = None
    if kind != CATEGORY and number is not None:   # the same value as a number
        E2, _ = schema.encode(pd.DataFrame({"c": [number]}))
        assert float(E2[0, 0]) == want


@pytest.mark.parametrize("kind,value,fragment", [
    (BINARY, "2", "is not 0 or 1"), (BINARY, "maybe", "is not 0 or 1"),
    (BINARY, 0.5, "is not 0 or 1"), (NUMERIC, "abc", "is not a number"),
    (NUMERIC, "inf", "is infinite"), (NUMERIC, float("inf"), "is infinite"),
    (BINARY, "", "empty cell"),
])
def test_bad_values_are_refused_with_column_row_and_value(kind, value, fragment):
    schema = Schema([Column("c", kind)])
    with pytest.raises(DataError, match=rf"row 1, column 'c': .*{fragment}"):
        schema.encode(pd.DataFrame({"c": [0 if kind == BINARY else 1.0, value]},
                                   dtype=object if isinstance(value, str) else None),
                      row_label=lambda i: f"row {i}")


def test_schema_round_trips_and_describes_its_features():
    schema = Schema([Column("a", BINARY, 0.0), Column("x", NUMERIC, 3.5),
                     Column("c", CATEGORY, None, ("p", "q"))], ignored=["e"], id_column="id")
    again = Schema.from_dict(schema.to_dict())
    assert again == schema and again.feature_names == ["a", "x", "c=p", "c=q"]
    E, _ = schema.encode(pd.DataFrame({"a": ["", "1"], "x": ["", "2"], "c": ["q", "z"]}))
    np.testing.assert_array_equal(E, [[0, 3.5, 1], [1, 2, -1]])
    np.testing.assert_array_equal(schema.expand(E), [[0, 3.5, 0, 1], [1, 2, 0, 0]])


# ---------------------------------------------------------------- the defects
def test_true_false_and_yes_no_in_known_features_train_and_predict(tmp_path):
    df = make_sessions(800, seed=4)
    words = df.copy()
    words["sign_in"] = np.where(df["sign_in"] == 1, "TRUE", "FALSE")
    words["loc_uk"] = np.where(df["loc_uk"] == 1, "yes", "no")
    out = _train(tmp_path, words)
    test = make_sessions(50, seed=5, testing=True)
    test["sign_in"] = np.where(test["sign_in"] == 1, "true", "false")
    test.to_csv(tmp_path / "new.csv", index=False)
    rc = predict_cli.main(["--input_file", str(tmp_path / "new.csv"), "--output_file",
                           str(tmp_path / "p.csv"), "--model_dir", out, "--quiet"])
    assert rc == 0 and len(pd.read_csv(tmp_path / "p.csv")) == 50
    numeric = test.copy()
    numeric["sign_in"] = (test["sign_in"] == "true").astype(int)
    p = CustomerPropensityPredictor(out)
    p.load_best_model()
    np.testing.assert_array_equal(p.predict(test)["purchase_probability"],
                                  p.predict(numeric)["purchase_probability"])


def test_test_predictions_keep_ids_as_written(tmp_path):
    train = _generic()
    test = _generic(40, seed=9)
    test["UserID"] = [f"00{i:02d}" for i in range(40)]
    out = _train(tmp_path, train, test.drop(columns="ordered"))
    got = pd.read_csv(os.path.join(out, "test_predictions.csv"), dtype=str)
    assert got["UserID"].tolist() == test["UserID"].tolist()       # '0002' stays '0002'
    p = CustomerPropensityPredictor(out)
    p.load_best_model()
    p.predict_from_file(tmp_path / "test.csv", tmp_path / "again.csv")
    again = pd.read_csv(tmp_path / "again.csv", dtype=str)
    pd.testing.assert_frame_equal(got.drop(columns="prediction_timestamp"),
                                  again.drop(columns="prediction_timestamp"))


def test_numeric_and_text_model_is_read_by_the_c_reader(tmp_path):
    out = _train(tmp_path, _generic())
    p = CustomerPropensityPredictor(out)
    p.load_best_model()
    kinds = [c.kind for c in p.model.schema_.columns]
    assert kinds == [BINARY, NUMERIC, CATEGORY]
    head = "UserID,sign_in,spend,channel\n"
    ok = head + "a,1,20.5,web\nb,0,,app\nc,1,3,\"st\"\"ore\"\n"
    p.predict_from_file(io.BytesIO(ok.encode()), tmp_path / "ok.csv")
    frame = pd.read_csv(io.StringIO(ok), dtype={"UserID": str}, keep_default_na=False,
                        na_values=[""])
    got = pd.read_csv(tmp_path / "ok.csv")
    ref = p.predict(frame)
    np.testing.assert_allclose(got["purchase_probability"],
                               ref["purchase_probability"].round(6), atol=1e-12)
    for bad, fragment in [(head + "a,1,20.5,web\nb,0,3", "truncated last line"),
                          (head + "a,1,20.5,web\nb,0,3\n", "expected 4 fields"),
                          (head + "a,1,abc,web\n", "'spend': value 'abc' is not a number")]:
        with pytest.raises(InputDataError, match=fragment):
            p.predict_from_file(io.BytesIO(bad.encode()), tmp_path / "bad.csv",
                                fill_missing=0)
        assert not (tmp_path / "bad.csv").exists()


def test_empty_column_dropped_at_training_is_not_needed_at_prediction(tmp_path):
    train = _generic()
    train["notes"] = np.nan
    test = _generic(30, seed=2).drop(columns="ordered")
    test["notes"] = ""
    out = _train(tmp_path, train, test)
    assert len(pd.read_csv(os.path.join(out, "test_predictions.csv"))) == 30
    p = CustomerPropensityPredictor(out)
    p.load_best_model()
    assert p.model.schema_.ignored == ["notes"]
    assert "notes" not in p.model.input_columns_


def test_training_run_fills_a_missing_test_column_as_the_predictor_does(tmp_path):
    train = make_sessions(800, seed=4)
    test = make_sessions(60, seed=6, testing=True).drop(columns=["sort_by"])
    out = _train(tmp_path, train, test)
    got = pd.read_csv(os.path.join(out, "test_predictions.csv"))
    p = CustomerPropensityPredictor(out)
    p.load_best_model()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ref = p.predict(test)
    assert any("sort_by" in str(w.message) for w in rec)
    np.testing.assert_allclose(got["purchase_probability"], ref["purchase_probability"].round(6))
    log = open(os.path.join(out, "ml_pipeline.log")).read()
    assert "lacks 1 feature column(s), filled with 0: sort_by" in log


def test_predict_dask_scores_what_fit_dask_returns():
    dd = pytest.importorskip("dask.dataframe")
    from propensity import dask as pdask

    df = make_sessions(3000, seed=8).drop(columns="UserID")
    ddf = dd.from_pandas(df, npartitions=3)
    import dask
    with dask.config.set(scheduler="synchronous"):
        est = pdask.fit_dask(RandomForestClassifier(n_estimators=10, random_state=0), ddf,
                             "ordered")
        out = pdask.predict_dask(est, ddf).compute()
    local = est.predict_proba(df[FEATURES])[:, 1]
    np.testing.assert_allclose(out["purchase_probability"].to_numpy(), local)
    np.testing.assert_array_equal(out["predicted_ordered"].to_numpy(), (local >= 0.5).astype(int))


def test_text_columns_with_empty_cells_keep_their_kind():
    """Empty cells do not decide a text column's kind (as for numbers): yes/no with a
    gap is binary and numbers written as text with a gap are numeric, each with its
    median as the fill; text stays a category column."""
    df = pd.DataFrame({"member": ["yes", None, "no", "yes"], "spend": ["1.5", None, " 2", " 3"],
                       "channel": ["a", None, "b", "a"]})
    schema, E, stats = Schema.infer(df, "t.csv")
    got = {c.name: (c.kind, c.fill) for c in schema.columns}
    assert got == {"member": (BINARY, 1.0), "spend": (NUMERIC, 2.0), "channel": (CATEGORY, None)}
    np.testing.assert_array_equal(E[:, :2], [[1, 1.5], [1, 2], [0, 2], [1, 3]])
    assert stats.n_filled == 2
