"""CustomerPropensityPredictor: loading (manifest, checksums, safe documents), DataFrame
scoring against the model itself, file streaming (C path and pandas path agree), input
validation, exact ids, atomic output, drift report, threads."""
import hashlib
import json
import logging
import os
import pickle
import shutil
import threading
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import FEATURES, session_rows, write_sessions_csv
from propensity import CustomerPropensityPredictor
from propensity.scoring import predictor as predictor_mod
from propensity.scoring.predictor import InputDataError, ModelIntegrityError, ModelNotFoundError


@pytest.fixture(scope="module")
def predictor(model_dir):
    p = CustomerPropensityPredictor(model_dir)
    p.load_best_model()
    return p


@pytest.fixture
def copy_dir(model_dir, tmp_path):
    dst = tmp_path / "models"
    shutil.copytree(model_dir, dst)
    return dst


def _manifest(d):
    return json.loads((d / "manifest.json").read_text())


def _rewrite_manifest(d, man):
    (d / "manifest.json").write_text(json.dumps(man))


def _read_out(path):
    return pd.read_csv(path, dtype={"UserID": str}, keep_default_na=False)


# ---------------------------------------------------------------- loading
def test_loads_the_manifests_best_model(model_dir, predictor):
    man = json.loads(open(os.path.join(model_dir, "manifest.json")).read())
    assert predictor.model_name == man["best_model"]
    assert list(predictor.model.input_columns_) == FEATURES


def test_load_model_by_name_and_unknown_name(model_dir):
    p = CustomerPropensityPredictor(model_dir)
    name = _manifest(__import__("pathlib").Path(model_dir))["best_model"]
    assert p.load_model(name) is p.model
    with pytest.raises(ModelNotFoundError, match="'no_such_model' is not in"):
        p.load_model("no_such_model")


def test_missing_folder_manifest_and_model_file(copy_dir, tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        CustomerPropensityPredictor(tmp_path / "absent").load_best_model()
    man = _manifest(copy_dir)
    model_file = man["models"][man["best_model"]]["model_file"]
    (copy_dir / model_file).unlink()
    with pytest.raises(ModelNotFoundError, match="missing"):
        CustomerPropensityPredictor(copy_dir).load_best_model()
    (copy_dir / "manifest.json").unlink()
    with pytest.raises(ModelNotFoundError, match="manifest.json not found"):
        CustomerPropensityPredictor(copy_dir).load_best_model()


def test_checksum_mismatch_is_refused(copy_dir):
    man = _manifest(copy_dir)
    path = copy_dir / man["models"][man["best_model"]]["model_file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="checksum mismatch"):
        CustomerPropensityPredictor(copy_dir).load_best_model()


def test_newer_format_versions_are_refused(copy_dir):
    man = _manifest(copy_dir)
    name = man["models"][man["best_model"]]["model_file"]
    path = copy_dir / name
    data = bytearray(path.read_bytes()[:-32])
    data[8:10] = (7).to_bytes(2, "little")           # model document major version 7
    data = bytes(data) + hashlib.sha256(bytes(data)).digest()
    path.write_bytes(data)
    man["files"][name] = hashlib.sha256(data).hexdigest()
    _rewrite_manifest(copy_dir, man)
    with pytest.raises(ModelIntegrityError, match="version 7"):
        CustomerPropensityPredictor(copy_dir).load_best_model()
    man["format_version"] = 99
    _rewrite_manifest(copy_dir, man)
    with pytest.raises(ModelIntegrityError, match="newer"):
        CustomerPropensityPredictor(copy_dir).load_best_model()


class _Boom:
    def __reduce__(self):
        return (os.mkdir, ("/nonexistent-dir-created-by-unpickling",))


def test_never_unpickles_unless_allowed(copy_dir, predictor):
    man = _manifest(copy_dir)
    pkl = man["models"][man["best_model"]]["pickle_file"]
    good = (copy_dir / pkl).read_bytes()
    (copy_dir / pkl).write_bytes(pickle.dumps(_Boom()))
    man["files"][pkl] = hashlib.sha256((copy_dir / pkl).read_bytes()).hexdigest()
    _rewrite_manifest(copy_dir, man)
    p = CustomerPropensityPredictor(copy_dir)
    p.load_best_model()                     # the safe document; the pickle is not touched
    (copy_dir / pkl).write_bytes(good)
    man["files"][pkl] = hashlib.sha256(good).hexdigest()
    _rewrite_manifest(copy_dir, man)
    q = CustomerPropensityPredictor(copy_dir, allow_pickle=True)
    q.load_best_model()
    X = session_rows(50, seed=3)
    np.testing.assert_array_equal(q.model.predict_proba(X), p.model.predict_proba(X))


def test_predict_needs_a_loaded_model(model_dir):
    with pytest.raises(RuntimeError, match="load_best_model"):
        CustomerPropensityPredictor(model_dir).predict(pd.DataFrame({"sort_by": [1]}))


# ---------------------------------------------------------------- DataFrames
def test_predict_matches_the_model(predictor):
    X = session_rows(3000, seed=1)
    df = pd.DataFrame(X, columns=FEATURES)
    df.insert(0, "UserID", [f"{i:08d}" for i in range(len(df))])
    df["ordered"] = 0
    out = predictor.predict(df, segments=True)
    assert list(out.columns) == ["UserID", "predicted_ordered", "purchase_probability",
                                 "prediction_timestamp", "segment"]
    ref = predictor.model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(out["purchase_probability"], ref, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["predicted_ordered"], predictor.model.predict(X))
    assert out["UserID"].tolist() == df["UserID"].tolist()
    seg = np.where(ref > 0.5, "High", np.where(ref >= 0.1, "Medium", "Low"))
    assert out["segment"].tolist() == seg.tolist()
    pd.Timestamp(out["prediction_timestamp"].iloc[0])          # ISO timestamp
    custom = predictor.predict(df, threshold=0.9)
    np.testing.assert_array_equal(custom["predicted_ordered"], (ref >= 0.9).astype(int))
    edges = predictor.predict(df, segments=(0.02, 0.97))
    seg = np.where(ref > 0.97, "High", np.where(ref >= 0.02, "Medium", "Low"))
    assert edges["segment"].tolist() == seg.tolist()
    for bad in ((0.6, 0.4), (-0.1, 0.5), (0.1, 1.5), (0.1,), "high"):
        with pytest.raises(ValueError, match="segment"):
            predictor.predict(df, segments=bad)


def test_segment_edges_same_in_the_file_writer(predictor, tmp_path):
    """The C writer's segments under other edges equal the DataFrame path's, edge values
    included (a probability equal to an edge: Medium)."""
    X = session_rows(2000, seed=8)
    df = pd.DataFrame(X, columns=FEATURES)
    df.insert(0, "UserID", [f"{i:06d}" for i in range(len(df))])
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    proba = predictor.predict(df)["purchase_probability"].to_numpy()
    u = np.unique(proba)
    assert u.size >= 2
    lo = hi = float(u[1])   # an edge equal to a score: those rows are Medium
    dst = tmp_path / "out.csv"
    predictor.predict_from_file(src, dst, chunksize=300, segments=(lo, hi))
    got = pd.read_csv(dst, dtype={"UserID": str})
    want = predictor.predict(df, segments=(lo, hi))
    assert got["segment"].tolist() == want["segment"].tolist()
    assert {"Medium", "Low"} <= set(got["segment"])
    assert (got["segment"] == "Medium").sum() == (proba == lo).sum()


def test_missing_columns_filled_with_zero_one_warning(predictor):
    X = session_rows(200, seed=2)
    full = pd.DataFrame(X, columns=FEATURES)
    full[["sort_by", "loc_uk"]] = 0
    part = full.drop(columns=["sort_by", "loc_uk"]).assign(extra_col="x")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = predictor.predict(part)
    msgs = [str(w.message) for w in rec if "filled with 0" in str(w.message)]
    assert len(msgs) == 1 and "sort_by" in msgs[0] and "loc_uk" in msgs[0]
    np.testing.assert_array_equal(out["purchase_probability"],
                                  predictor.predict(full)["purchase_probability"])
    assert out["UserID"].tolist() == list(range(200))      # the row number stands in


def test_no_known_feature_column_is_an_error(predictor):
    with pytest.raises(InputDataError, match="no known feature column"):
        predictor.predict(pd.DataFrame({"a": [1], "b": [0]}))


def test_bad_values_name_column_row_and_value(predictor):
    df = pd.DataFrame(session_rows(10, seed=4), columns=FEATURES)
    df.loc[6, "sign_in"] = 3
    with pytest.raises(InputDataError, match=r"row 6 .*'sign_in': value '3' is not 0 or 1"):
        predictor.predict(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predictor.predict(df, coerce=True)
    fixed = df.copy()
    fixed.loc[6, "sign_in"] = 1
    np.testing.assert_array_equal(out["purchase_probability"],
                                  predictor.predict(fixed)["purchase_probability"])
    df2 = pd.DataFrame(session_rows(10, seed=4), columns=FEATURES).astype(float)
    df2.loc[2, "sort_by"] = np.nan
    with pytest.raises(InputDataError, match=r"row 2 .*'sort_by': empty cell"):
        predictor.predict(df2)
    filled = predictor.predict(df2, fill_missing=0)
    df2.loc[2, "sort_by"] = 0
    np.testing.assert_array_equal(filled["purchase_probability"],
                                  predictor.predict(df2)["purchase_probability"])
    df3 = pd.DataFrame(session_rows(4, seed=4), columns=FEATURES).astype(str)
    df3.loc[1, "loc_uk"] = "maybe"
    with pytest.raises(InputDataError, match=r"row 1 .*'loc_uk': value 'maybe' is not 0 or 1"):
        predictor.predict(df3)


def test_threads_give_the_serial_result(predictor):
    frames = [pd.DataFrame(session_rows(2000, seed=s), columns=FEATURES) for s in range(8)]
    serial = [predictor.predict(f)["purchase_probability"].to_numpy() for f in frames]
    results = [None] * 8

    def work(i):
        results[i] = predictor.predict(frames[i])["purchase_probability"].to_numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- files
def _ids(n):
    ids = [f"{i:07d}" for i in range(n)]                       # leading zeros
    ids[1] = "123456789012345678901234567890"                  # longer than any int
    ids[2] = '"a,b ""quoted""\nid"'                           # quoted, comma, newline
    ids[3] = "9d24-25k4-47889d24-25k4-494b-398124"
    return ids


def _unquote(s):
    return s[1:-1].replace('""', '"') if s.startswith('"') else s


@pytest.mark.parametrize("chunksize", [7, 100_000])
def test_file_matches_dataframe_prediction(predictor, tmp_path, chunksize):
    X = session_rows(1500, seed=5)
    ids = _ids(len(X))
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=ids)
    dst = tmp_path / "out.csv"
    summary = predictor.predict_from_file(src, dst, chunksize=chunksize, segments=True)
    assert summary["rows"] == len(X)
    out = _read_out(dst)
    assert out["UserID"].tolist() == [_unquote(i) for i in ids]
    ref = predictor.model.predict_proba(X)[:, 1]
    assert out["purchase_probability"].map(lambda v: f"{v:.6f}").tolist() == [f"{p:.6f}" for p in ref]
    np.testing.assert_array_equal(out["predicted_ordered"], predictor.model.predict(X))
    assert set(out["segment"]) <= {"High", "Medium", "Low"}
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]  # no temporary file left
    assert summary["sha256"] == hashlib.sha256(dst.read_bytes()).hexdigest()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_file_without_ids_uses_row_numbers(predictor, tmp_path):
    X = session_rows(30, seed=7)
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=None)
    predictor.predict_from_file(src, tmp_path / "out.csv", chunksize=4)
    assert _read_out(tmp_path / "out.csv")["UserID"].tolist() == [str(i) for i in range(30)]


@pytest.mark.parametrize("content", ["", "UserID," + ",".join(FEATURES) + "\n"])
def test_empty_input_gives_header_only(predictor, tmp_path, content):
    (tmp_path / "in.csv").write_text(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor.predict_from_file(tmp_path / "in.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == (
        "UserID,predicted_ordered,purchase_probability,prediction_timestamp\n")


@pytest.mark.parametrize("body, kwargs, match", [
    ("u1,0,1\nu2,0,5\n", {}, r"line 5003 \(data row 5002\), column 'sort_by': value '5'"),
    ("u1,0,1\nu2,,1\n", {}, r"line 5003 \(data row 5002\), column 'basket_icon_click': empty cell"),
    ("u1,0,1\nu2,0,1,1\n", {}, r"line 5003 \(data row 5002\): expected 3 fields"),
    ("u1,0,1\nu2,0", {}, "truncated last line"),
    ("u1,0,1\n\"u2,0,1\n", {}, "quoted field not closed"),
])
def test_bad_file_errors_and_no_partial_output(predictor, tmp_path, body, kwargs, match):
    src = tmp_path / "in.csv"
    src.write_text("UserID,basket_icon_click,sort_by\n" + "u0,1,1\n" * 5000 + body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputDataError, match=match):
            predictor.predict_from_file(src, tmp_path / "out.csv", chunksize=100, **kwargs)
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]


def test_coerce_and_fill_missing_on_files(predictor, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("UserID,basket_icon_click,sort_by\nu1,2,1\nu2,,0.7\nu3,1,-1\n")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        s = predictor.predict_from_file(src, tmp_path / "out.csv", coerce=True, fill_missing=0)
    assert s["n_coerced"] == 3 and s["n_filled"] == 1
    assert any("3 value(s)" in str(w.message) for w in rec)
    df = pd.DataFrame({"basket_icon_click": [1, 0, 1], "sort_by": [1, 1, 0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = predictor.predict(df)["purchase_probability"].round(6).tolist()
    assert _read_out(tmp_path / "out.csv")["purchase_probability"].tolist() == ref


def test_wrong_delimiter_and_encoding(predictor, tmp_path):
    src = tmp_path / "semi.csv"
    src.write_text("UserID;" + ";".join(FEATURES) + "\nu;" + ";".join("0" * 23) + "\n")
    with pytest.raises(InputDataError, match="delimiter"):
        predictor.predict_from_file(src, tmp_path / "o.csv")
    src16 = tmp_path / "u16.csv"
    src16.write_bytes(("UserID," + ",".join(FEATURES) + "\n").encode("utf-16"))
    with pytest.raises(InputDataError, match="UTF-16"):
        predictor.predict_from_file(src16, tmp_path / "o.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(("Us\xe9rID," + ",".join(FEATURES) + "\n").encode("latin-1"))
    with pytest.raises(InputDataError, match="not UTF-8"):
        predictor.predict_from_file(latin, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_drift_report(predictor, tmp_path, caplog):
    X = session_rows(4000, seed=8, p=0.5)          # far from the training rates
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=[str(i) for i in range(len(X))])
    with caplog.at_level(logging.WARNING, logger="propensity"):
        s = predictor.predict_from_file(src, tmp_path / "out.csv", drift_report=tmp_path / "d.json")
    rep = json.loads((tmp_path / "d.json").read_text())
    assert rep["n_rows"] == len(X) and set(rep["features"]) == set(FEATURES)
    prof = predictor.model.training_profile_["features"]["sort_by"]
    actual = np.array([1 - X[:, 3].mean(), X[:, 3].mean()])
    assert rep["features"]["sort_by"]["psi"] == pytest.approx(
        predictor_mod.psi(prof["fractions"], actual), rel=1e-9)
    assert rep["drifted"] and "data drift" in caplog.text
    assert s["drift"] == rep


def test_threads_give_the_one_thread_file(model_dir, tmp_path):
    """Blocks of a few MB are parsed and written by several threads (cut at line ends
    outside quotes): the output is byte for byte the one-thread output."""
    X = session_rows(60_000, seed=12)
    ids = [f'"id {i}, ""q""\nx"' if i % 9 == 0 else f"{i:07d}" for i in range(len(X))]
    src = write_sessions_csv(tmp_path / "in.csv", X, ids=ids, newline="\r\n")
    outs = []
    for n_jobs in (1, 2, 4):
        p = CustomerPropensityPredictor(model_dir, n_jobs=n_jobs)
        p.load_best_model()
        dst = tmp_path / f"out{n_jobs}.csv"
        p.predict_from_file(src, dst, chunksize=20_000, segments=True)
        outs.append([line.rsplit(",", 2)[0] for line in dst.read_text().splitlines()])
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) > len(X)


# ---------------------------------------------------------------- reading files ahead
def _file_and_stream_outputs(predictor, tmp_path, text, **kwargs):
    """The predictions of the same bytes read as a file (read ahead on a thread) and as a
    stream without a file descriptor (read as it comes)."""
    import io
    src = tmp_path / "in.csv"
    src.write_bytes(text)
    predictor.predict_from_file(src, tmp_path / "from_file.csv", **kwargs)
    predictor.predict_from_file(io.BytesIO(text), tmp_path / "from_stream.csv", **kwargs)
    return (tmp_path / "from_file.csv").read_bytes(), (tmp_path / "from_stream.csv").read_bytes()


@pytest.mark.parametrize("chunksize", [1, 5, 100_000])
def test_file_read_ahead_gives_the_streams_output(predictor, tmp_path, monkeypatch, chunksize):
    monkeypatch.setattr(predictor_mod, "_now_iso", lambda: "2026-01-01T00:00:00+00:00")
    X = session_rows(4000, seed=11)
    ids = [f"id{i}" for i in range(len(X))]
    ids[100] = "x" * 150_000           # a record longer than a block and the kept tail
    ids[3000] = '"q ' + "y" * 70_000 + '"'  # quoted, longer than the kept tail
    text = open(write_sessions_csv(tmp_path / "w.csv", X, ids=ids), "rb").read()
    a, b = _file_and_stream_outputs(predictor, tmp_path, text, chunksize=chunksize)
    assert a == b and a.count(b"\n") == len(X) + 1
    assert not [t for t in threading.enumerate() if t.name == "propensity-reader"]


def test_file_read_ahead_long_header_and_errors(predictor, tmp_path, monkeypatch):
    monkeypatch.setattr(predictor_mod, "_now_iso", lambda: "2026-01-01T00:00:00+00:00")
    X = session_rows(50, seed=12)
    head = ",".join(["UserID"] + FEATURES + [f"extra_{k:06d}" for k in range(9000)])
    rows = [",".join([f"u{i}"] + [str(v) for v in r] + ["0"] * 9000) for i, r in enumerate(X)]
    text = (head + "\n" + "\n".join(rows) + "\n").encode()
    assert len(head) > 1 << 16
    a, b = _file_and_stream_outputs(predictor, tmp_path, text, chunksize=1)
    assert a == b and a.count(b"\n") == len(X) + 1
    # a bad value half way: the error, no output, and the reading thread stopped
    bad = text.replace(b"\nu30,0", b"\nu30,7", 1)
    (tmp_path / "bad.csv").write_bytes(bad)
    with pytest.raises(InputDataError, match="data row 31"):
        predictor.predict_from_file(tmp_path / "bad.csv", tmp_path / "out.csv", chunksize=1)
    assert not (tmp_path / "out.csv").exists()
    assert not [t for t in threading.enumerate() if t.name == "propensity-reader"]
    for content in (b"", b"  \n\n", b"UserID," + ",".join(FEATURES).encode()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = _file_and_stream_outputs(predictor, tmp_path, content)
        assert a == b
