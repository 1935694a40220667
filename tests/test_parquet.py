"""Parquet in and out: the same data as CSV and as Parquet gives the same training table,
the same model bytes and the same scores; bad values are named by column and row; no
partial output; without pyarrow a one-line error says how to install it."""
import os
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from conftest import FEATURES, SMALL_GRID, session_rows, write_sessions_csv  # noqa: E402
from propensity import CustomerPropensityPredictor, predict, train  # noqa: E402
from propensity.datasets import make_sessions  # noqa: E402
from propensity.errors import DataError  # noqa: E402
from propensity.io.table import read_training_file  # noqa: E402
from propensity.scoring.predictor import InputDataError  # noqa: E402


@pytest.fixture(scope="module")
def predictor(model_dir):
    p = CustomerPropensityPredictor(model_dir)
    p.load_best_model()
    return p


def _mixed(n, seed):
    """Sessions with a numeric column (some missing), a text column and a text id."""
    df = make_sessions(n, seed=seed)
    rng = np.random.default_rng(seed)
    df["UserID"] = [f"id-{i}" for i in range(n)]
    df["basket_value"] = np.where(rng.random(n) < 0.05, np.nan, rng.gamma(2.0, 30.0, n).round(2))
    df["channel"] = rng.choice(["web", "app", "mail"], n)
    return df


@pytest.mark.parametrize("how", ["ints", "bools", "mixed"])
def test_training_table_equals_the_csv_files(tmp_path, how):
    df = _mixed(4000, 5) if how == "mixed" else make_sessions(4000, seed=5)
    csv_path = tmp_path / "t.csv"
    df.to_csv(csv_path, index=False)
    pdf = df.copy()
    if how == "bools":   # a bool column is a binary column, like its 0/1 text
        for c in FEATURES + ["ordered"]:
            pdf[c] = pdf[c].astype(bool)
    pq_path = tmp_path / "t.parquet"
    pdf.to_parquet(pq_path, row_group_size=900)
    ref = read_training_file(csv_path)
    got = read_training_file(pq_path)
    assert got.fingerprint() == ref.fingerprint()
    assert [c.kind for c in got.schema.columns] == [c.kind for c in ref.schema.columns]
    # batches smaller than the sample and than a row group give the same rows (the
    # numeric bins' means are sums in another order: equal to rounding)
    from propensity.io.table import read_training_parquet
    small = read_training_parquet(pq_path, batch_rows=333)
    np.testing.assert_array_equal(small.rows, ref.rows)
    if how == "mixed":
        np.testing.assert_allclose(small.reps, ref.reps, rtol=1e-12)
    else:
        assert small.fingerprint() == ref.fingerprint()


def test_train_cli_parquet_gives_the_csv_models(tmp_path, capsys):
    df = _mixed(3000, 8)
    test_df = df.drop(columns=["ordered"]).head(400)
    df.to_csv(tmp_path / "train.csv", index=False)
    test_df.to_csv(tmp_path / "test.csv", index=False)
    df.to_parquet(tmp_path / "train.parquet")
    test_df.to_parquet(tmp_path / "test.pq", row_group_size=150)
    (tmp_path / "grid.toml").write_text(SMALL_GRID)
    common = ["--grid", str(tmp_path / "grid.toml"), "--models", "lr,gb", "--quiet"]
    assert train.main(["--train-file", str(tmp_path / "train.csv"), "--test-file",
                       str(tmp_path / "test.csv"), "--output-dir", str(tmp_path / "a"),
                       *common]) == 0
    assert train.main(["--train-file", str(tmp_path / "train.parquet"), "--test-file",
                       str(tmp_path / "test.pq"), "--output-dir", str(tmp_path / "b"),
                       *common]) == 0
    for name in ("logistic_regression_model.propmodel", "gradient_boosting_model.propmodel"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    strip = lambda p: [ln.rsplit(",", 1)[0] for ln in p.read_text().splitlines()]  # noqa: E731
    assert strip(tmp_path / "a" / "test_predictions.csv") == \
        strip(tmp_path / "b" / "test_predictions.csv")


@pytest.mark.parametrize("chunksize", [64, 100_000])
def test_predict_parquet_in_and_out(predictor, tmp_path, chunksize):
    X = session_rows(3000, seed=6)     # about 180 kB: several CSV blocks at chunksize 64
    ids = [f'"q,{i}"' if i % 9 == 0 else f"u{i}" for i in range(len(X))]
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=ids)
    frame = pd.read_csv(src, dtype={"UserID": str}, keep_default_na=False)
    frame.to_parquet(tmp_path / "in.parquet", row_group_size=300)
    ref = tmp_path / "ref.csv"
    predictor.predict_from_file(src, ref, chunksize=chunksize, segments=True)
    want = pd.read_csv(ref, dtype={"UserID": str}, keep_default_na=False)
    # Parquet in, CSV out: the CSV input's bytes, timestamps aside
    out_csv = tmp_path / "from_parquet.csv"
    predictor.predict_from_file(tmp_path / "in.parquet", out_csv, chunksize=chunksize,
                                segments=True)
    strip = lambda p: [ln.rsplit(",", 2)[0] + "," + ln.rsplit(",", 1)[1]  # noqa: E731
                       for ln in p.read_text().splitlines()]
    assert strip(out_csv) == strip(ref)
    # CSV in and Parquet in, Parquet out: the same rows, probabilities unrounded
    for source in (src, tmp_path / "in.parquet"):
        out = tmp_path / "p.parquet"
        summary = predictor.predict_from_file(source, out, chunksize=chunksize, segments=True)
        assert summary["rows"] == len(X)
        got = pd.read_parquet(out)
        assert list(got.columns) == list(want.columns)
        assert got["UserID"].tolist() == want["UserID"].tolist()
        assert got["UserID"][0] == "q,0"
        np.testing.assert_array_equal(got["predicted_ordered"], want["predicted_ordered"])
        np.testing.assert_allclose(got["purchase_probability"], want["purchase_probability"],
                                   atol=5e-7)
        np.testing.assert_allclose(got["purchase_probability"],
                                   predictor.model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
        assert got["segment"].tolist() == want["segment"].tolist()
        if chunksize == 64:       # written by batches: a row group per block
            assert pq.ParquetFile(out).metadata.num_row_groups > 1
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_predict_to_file_parquet(predictor, tmp_path):
    X = pd.DataFrame(session_rows(40, seed=2), columns=FEATURES)
    predictor.predict_to_file(X, tmp_path / "p.pq", timestamp="T")
    got = pd.read_parquet(tmp_path / "p.pq")
    assert len(got) == 40 and set(got["prediction_timestamp"]) == {"T"}
    np.testing.assert_allclose(got["purchase_probability"],
                               predictor.model.predict_proba(X.to_numpy())[:, 1])


def _bad_parquet(tmp_path, with_target=False):
    df = make_sessions(600, seed=3)
    if not with_target:
        df = df.drop(columns=["ordered"])
    df = df.astype({"sort_by": "int64"})
    df.loc[450, "sort_by"] = 7
    path = tmp_path / "bad.parquet"
    df.to_parquet(path, row_group_size=200)
    return path


def test_bad_value_names_column_and_row(predictor, tmp_path, model_dir, capsys):
    path = _bad_parquet(tmp_path)
    with pytest.raises(InputDataError, match=r"'.*bad.parquet', data row 451, column "
                                             r"'sort_by': value '7' is not 0 or 1"):
        predictor.predict_from_file(path, tmp_path / "o.csv", chunksize=100)
    out = tmp_path / "keep.parquet"
    out.write_bytes(b"previous")
    code = predict.main(["--input_file", str(path), "--output_file", str(out), "--model_dir",
                         model_dir, "--quiet"])
    err = capsys.readouterr().err
    assert code == predict.EXIT_INPUT and "data row 451, column 'sort_by'" in err, err
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["bad.parquet", "keep.parquet"]


def test_bad_training_value_beyond_the_sample(tmp_path, monkeypatch):
    from propensity.io import table as table_mod
    monkeypatch.setattr(table_mod, "SAMPLE_ROWS", 100)
    path = _bad_parquet(tmp_path, with_target=True)
    with pytest.raises(DataError, match=r"bad.parquet, data row 451, column 'sort_by': "
                                        r"value '7' is not 0 or 1"):
        read_training_file(path)


def test_damaged_and_missing_files(predictor, tmp_path):
    good = tmp_path / "g.parquet"
    make_sessions(100, seed=1).to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(InputDataError, match="cut.parquet': cannot read it as Parquet"):
        predictor.predict_from_file(cut, tmp_path / "o.csv")
    with pytest.raises(DataError, match="cut.parquet: cannot read it as Parquet"):
        read_training_file(cut)
    with pytest.raises(InputDataError, match="nope.parquet': file not found"):
        predictor.predict_from_file(tmp_path / "nope.parquet", tmp_path / "o.csv")
    with pytest.raises(ValueError, match="a Parquet input has neither"):
        predictor.predict_from_file(good, tmp_path / "o.csv", sep=";")
    assert not (tmp_path / "o.csv").exists()


def test_without_pyarrow_one_line_says_how_to_install(predictor, tmp_path, model_dir,
                                                      monkeypatch, capsys):
    good = tmp_path / "g.parquet"
    make_sessions(100, seed=1).to_parquet(good)
    for mod in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'propensity\[parquet\]'"):
        predictor.predict_from_file(good, tmp_path / "o.csv")
    code = predict.main(["--input_file", str(good), "--output_file", str(tmp_path / "o.csv"),
                         "--model_dir", model_dir, "--quiet"])
    err = capsys.readouterr().err
    assert code == predict.EXIT_ERROR
    assert err.strip().splitlines() == ["error: ImportError: Parquet files need pyarrow, which "
                                        "is not installed: pip install 'propensity[parquet]'"]
    code = train.main(["--train-file", str(good), "--output-dir", str(tmp_path / "ml"),
                       "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'propensity[parquet]'" in err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "ml").exists()


def test_parquet_ids_of_any_type_are_text(predictor, tmp_path):
    """An int id column is written as its digits, a missing id as empty, and a file
    without an id column gets row numbers, as a CSV file does."""
    X = session_rows(30, seed=4)
    df = pd.DataFrame(X, columns=FEATURES)
    df.insert(0, "UserID", pd.array([10 * i if i % 5 else None for i in range(30)],
                                    dtype="Int64"))
    df.to_parquet(tmp_path / "ids.parquet")
    predictor.predict_from_file(tmp_path / "ids.parquet", tmp_path / "o.csv", chunksize=7)
    got = pd.read_csv(tmp_path / "o.csv", dtype={"UserID": str}, keep_default_na=False)
    assert got["UserID"].tolist() == ["" if i % 5 == 0 else str(10 * i) for i in range(30)]
    df.drop(columns=["UserID"]).to_parquet(tmp_path / "no_ids.parquet")
    predictor.predict_from_file(tmp_path / "no_ids.parquet", tmp_path / "n.parquet", chunksize=7)
    assert pd.read_parquet(tmp_path / "n.parquet")["UserID"].tolist() == [str(i) for i in range(30)]
    write_sessions_csv(tmp_path / "no_ids.csv", X)
    predictor.predict_from_file(tmp_path / "no_ids.csv", tmp_path / "n.csv")
    assert pd.read_csv(tmp_path / "n.csv", dtype={"UserID": str})["UserID"].tolist() == \
        [str(i) for i in range(30)]


def test_csv_to_parquet_ids_unquoted_and_quoted_blocks(predictor, tmp_path):
    """Blocks without a quoted id take the gathered path, blocks with one the per-row
    path: both give the ids of the CSV output (empty ids and non-ASCII ones too)."""
    X = session_rows(4000, seed=12)
    ids = ["" if i % 11 == 0 else f"\u00e9t\u00e9-{i}" for i in range(len(X))]
    ids[3900] = '"late,quoted"'
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=ids)
    predictor.predict_from_file(src, tmp_path / "ref.csv", chunksize=64)
    predictor.predict_from_file(src, tmp_path / "out.parquet", chunksize=64)
    want = pd.read_csv(tmp_path / "ref.csv", dtype={"UserID": str}, keep_default_na=False)
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert got["UserID"].tolist() == want["UserID"].tolist()
    assert got["UserID"][3900] == "late,quoted" and got["UserID"][0] == ""
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups > 2
