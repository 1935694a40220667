"""The bad-input matrix: malformed inputs to ``propensity.predict``, ``propensity.train``
and the Python API. Each case asserts the exit code (or exception type), a clear
message naming the file / column / row at fault, and that no partial output is left.
"""
import glob
import os
import pickle
import shutil
import struct

import numpy as np
import pandas as pd
import pytest

from conftest import FEATURES, session_rows, write_sessions_csv
from propensity import LogisticRegression, load_model, predict, train

# ---------------------------------------------------------------------------
# helpers

HEADER = "UserID," + ",".join(FEATURES) + ",ordered"


def _row(uid, values=None, ordered="0"):
    vals = values if values is not None else ["0"] * len(FEATURES)
    return f"{uid}," + ",".join(vals) + f",{ordered}"


def _with(col, value):
    vals = ["0"] * len(FEATURES)
    vals[FEATURES.index(col)] = value
    return vals


def _good_rows(n=5):
    return [_row(f"u{i}", [str((i + j) % 2) for j in range(len(FEATURES))]) for i in range(n)]


def _two_class_rows(n):
    return [_row(f"u{i}", [str((i + j) % 2) for j in range(len(FEATURES))], str(i % 2))
            for i in range(n)]


def _text(*lines, end="\n"):
    return (end.join(lines) + end).encode()


def _no_leftovers(folder, keep=()):
    """No temporary or partial files in ``folder`` besides ``keep``."""
    left = [f for f in os.listdir(folder) if f not in keep]
    assert not left, f"left behind: {left}"


# ---------------------------------------------------------------------------
# propensity.predict: bad input files (exit 5)

PREDICT_INPUTS = {
    # id: (file bytes, message fragments)
    "header_only_no_features": (_text("UserID,foo,bar", "u1,0,1"), ["feature column"]),
    "value_2": (_text(HEADER, *_good_rows(3), _row("u9", _with("sort_by", "2"))),
                ["sort_by", "'2'", "row 4"]),
    "value_text": (_text(HEADER, _row("u1", _with("loc_uk", "maybe"))), ["loc_uk", "maybe"]),
    # "nan" / "NA" are missing-value markers, reported like an empty cell
    "value_nan": (_text(HEADER, _row("u1", _with("sign_in", "nan"))), ["sign_in", "row 1"]),
    "value_inf": (_text(HEADER, _row("u1", _with("sign_in", "inf"))), ["sign_in", "inf"]),
    "value_negative": (_text(HEADER, _row("u1", _with("saw_homepage", "-1"))),
                       ["saw_homepage", "-1"]),
    "value_huge": (_text(HEADER, _row("u1", _with("device_mobile", "1e400"))),
                   ["device_mobile", "1e400"]),
    "value_long": (_text(HEADER, _row("u1", _with("device_mobile", "1" * 5000))),
                   ["device_mobile"]),
    "empty_cell": (_text(HEADER, *_good_rows(2), _row("u9", _with("sort_by", ""))),
                   ["sort_by", "row 3"]),
    "too_many_fields": (_text(HEADER, *_good_rows(2), _row("u9") + ",1"), ["row 3"]),
    "too_few_fields": (_text(HEADER, *_good_rows(2), "u9,0,1"), ["row 3"]),
    "truncated_last_line": (_text(HEADER, *_good_rows(3))[:-30], ["row 3"]),
    "unterminated_quote": (_text(HEADER, '"u1' + _row("")[0:] ), ["quote"]),
    "utf16": ((HEADER + "\n" + _row("u1") + "\n").encode("utf-16"), ["utf-16"]),
    "latin1_header": (_text(HEADER.replace("UserID", "Us\xe9rID")).replace(b"\xc3\xa9", b"\xe9"),
                      ["utf-8"]),
    "binary_garbage": (bytes(range(256)) * 20, []),
    "semicolon_mixed": (_text(HEADER, _row("u1").replace(",", ";")), ["row 1"]),
    "duplicate_header": (_text(HEADER + ",sort_by", _row("u1") + ",1"), ["sort_by", "duplicate"]),
    "duplicate_id": (_text(HEADER + ",UserID", _row("u1") + ",u2"), ["UserID", "duplicate"]),
    "nul_bytes": (_text(HEADER, _row("u1", _with("sort_by", "\0"))), ["sort_by"]),
}


@pytest.fixture()
def run_predict(model_dir, tmp_path, capsys):
    def run(content=None, *, args=(), input_path=None, output=None):
        if input_path is None:
            input_path = tmp_path / "in.csv"
            input_path.write_bytes(content)
        out = output if output is not None else tmp_path / "out" / "pred.csv"
        if output is None:
            out.parent.mkdir(exist_ok=True)
        argv = ["--input_file", str(input_path), "--output_file", str(out),
                "--model_dir", model_dir, "--quiet", *args]
        try:
            code = predict.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        err = capsys.readouterr().err
        return code, err, out
    return run


@pytest.mark.parametrize("case", sorted(PREDICT_INPUTS))
def test_predict_bad_input_file(run_predict, case):
    content, fragments = PREDICT_INPUTS[case]
    code, err, out = run_predict(content)
    assert code == predict.EXIT_INPUT, err
    assert "in.csv" in err or "input" in err.lower(), err
    for frag in fragments:
        assert frag.lower() in err.lower(), (frag, err)
    assert not out.exists()
    _no_leftovers(out.parent)


@pytest.mark.parametrize("content, warning", [
    (b"", "is empty"),
    (_text(",".join(["UserID"] + FEATURES[1:]), ",".join(["u1"] + ["0"] * 22)),
     "lacks 1 feature column(s), filled with 0: " + FEATURES[0]),
])
def test_predict_documented_warnings(run_predict, content, warning):
    """An empty file and a missing feature column are not errors: a header-only output /
    a column of zeros, with a warning that says so."""
    code, err, out = run_predict(content)
    assert code == predict.EXIT_OK and warning in err
    assert out.read_text().startswith("UserID,")


def test_predict_missing_input_file(run_predict, tmp_path):
    code, err, out = run_predict(input_path=tmp_path / "nope.csv")
    assert code == predict.EXIT_INPUT and "nope.csv" in err
    assert not out.exists()


def test_predict_input_is_a_directory(run_predict, tmp_path):
    code, err, out = run_predict(input_path=tmp_path)
    assert code in (predict.EXIT_INPUT, predict.EXIT_ERROR) and str(tmp_path.name) in err
    assert not out.exists()


# ---------------------------------------------------------------------------
# propensity.predict: bad output paths (exit 1) and usage (exit 2)

def test_predict_output_folder_missing(run_predict, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "pred.csv"
    code, err, _ = run_predict(_text(HEADER, *_good_rows()), output=out)
    assert code == predict.EXIT_INPUT and "dir" in err and "does not exist" in err
    assert not out.exists()


def test_predict_output_under_a_file(run_predict, tmp_path):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "pred.csv"
    code, err, _ = run_predict(_text(HEADER, *_good_rows()), output=out)
    assert code in (predict.EXIT_INPUT, predict.EXIT_ERROR) and "afile" in err, err
    assert (tmp_path / "afile").read_text() == "x"


def test_predict_output_is_a_directory(run_predict, tmp_path):
    out = tmp_path / "outdir"
    out.mkdir()
    code, err, _ = run_predict(_text(HEADER, *_good_rows()), output=out)
    assert code in (predict.EXIT_INPUT, predict.EXIT_ERROR) and "outdir" in err, err
    assert os.listdir(out) == []


def test_predict_bad_input_keeps_previous_output(run_predict, tmp_path):
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    out.write_text("previous\n")
    code, err, _ = run_predict(_text(HEADER, _row("u1", _with("sort_by", "7"))), output=out)
    assert code == predict.EXIT_INPUT and "sort_by" in err
    assert out.read_text() == "previous\n"
    _no_leftovers(out.parent, keep=("pred.csv",))


@pytest.mark.parametrize("args, fragment", [
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "nan"], "--threshold"),
    (["--threshold", "abc"], "--threshold"),
    (["--chunksize", "0"], "--chunksize"),
    (["--chunksize", "-5"], "--chunksize"),
    (["--fill-missing", "1"], "--fill-missing"),
    (["--no-such-flag"], "--no-such-flag"),
])
def test_predict_usage_errors(run_predict, args, fragment):
    code, err, out = run_predict(_text(HEADER, *_good_rows()), args=args)
    assert code == predict.EXIT_USAGE and fragment in err
    assert not out.exists()


# ---------------------------------------------------------------------------
# propensity.predict: hostile model folders (exit 3 missing, exit 4 damaged)

def _damage(folder, how):
    man = os.path.join(folder, "manifest.json")
    model_file = sorted(glob.glob(os.path.join(folder, "*_model.propmodel")))
    if how == "no_folder":
        shutil.rmtree(folder)
    elif how == "no_manifest":
        os.unlink(man)
    elif how == "manifest_not_json":
        open(man, "w").write("{not json")
    elif how == "manifest_wrong_format":
        open(man, "w").write('{"format": "something-else"}')
    elif how == "manifest_list":
        open(man, "w").write("[1, 2, 3]")
    elif how == "model_files_missing":
        for f in model_file:
            os.unlink(f)
    elif how in ("truncated", "garbage", "flipped_byte", "newer_version", "sealed_bad_array",
                 "pickle_bomb_in_propmodel"):
        for f in model_file:
            data = bytearray(open(f, "rb").read())
            if how == "truncated":
                data = data[:len(data) // 2]
            elif how == "garbage":
                data = bytearray(os.urandom(len(data)))
            elif how == "flipped_byte":
                data[len(data) // 2] ^= 0xFF
            elif how == "newer_version":
                struct.pack_into("<H", data, 8, 99)
            elif how == "sealed_bad_array":  # a valid checksum, an impossible array entry
                import hashlib
                import json
                hlen = struct.unpack_from("<Q", data, 12)[0]
                header = json.loads(bytes(data[20:20 + hlen]))
                header["arrays"][0]["offset"] = 10**12
                raw = json.dumps(header).encode()
                head = bytes(data[:12]) + struct.pack("<Q", len(raw)) + raw
                head += b"\0" * ((-len(head)) % 8)
                start = 20 + hlen
                start += (-start) % 8
                body = head + bytes(data[start:-32])
                data = bytearray(body + hashlib.sha256(body).digest())
            else:  # a pickle that would run code, named as the model document
                data = bytearray(pickle.dumps(os.system))
            open(f, "wb").write(bytes(data))


@pytest.mark.parametrize("how, code, fragment", [
    ("no_folder", predict.EXIT_MODEL_MISSING, "models"),
    ("no_manifest", predict.EXIT_MODEL_MISSING, "manifest"),
    ("manifest_not_json", predict.EXIT_MODEL_BAD, "manifest"),
    ("manifest_wrong_format", predict.EXIT_MODEL_BAD, "manifest"),
    ("manifest_list", predict.EXIT_MODEL_BAD, "manifest"),
    ("model_files_missing", predict.EXIT_MODEL_MISSING, "propmodel"),
    ("truncated", predict.EXIT_MODEL_BAD, "propmodel"),
    ("garbage", predict.EXIT_MODEL_BAD, "propmodel"),
    ("flipped_byte", predict.EXIT_MODEL_BAD, "propmodel"),
    ("newer_version", predict.EXIT_MODEL_BAD, "propmodel"),
    ("sealed_bad_array", predict.EXIT_MODEL_BAD, "propmodel"),
    ("pickle_bomb_in_propmodel", predict.EXIT_MODEL_BAD, "propmodel"),
])
def test_predict_hostile_model_folder(model_dir, tmp_path, capsys, how, code, fragment):
    folder = tmp_path / "models"
    shutil.copytree(model_dir, folder)
    _damage(str(folder), how)
    inp = tmp_path / "in.csv"
    inp.write_bytes(_text(HEADER, *_good_rows()))
    out = tmp_path / "pred.csv"
    got = predict.main(["--input_file", str(inp), "--output_file", str(out),
                        "--model_dir", str(folder), "--quiet"])
    err = capsys.readouterr().err
    assert got == code, err
    assert fragment in err, err
    assert not out.exists()


# ---------------------------------------------------------------------------
# propensity.train (exit 2 bad data / usage, 3 unwritable output)

TRAIN_INPUTS = {
    "empty_file": (b"", ["empty"]),
    "no_target": (_text(",".join(["UserID"] + FEATURES), ",".join(["u1"] + ["0"] * 23)),
                  ["ordered"]),
    "one_class": (_text(HEADER, *[_row(f"u{i}", ordered="0") for i in range(50)]), ["class"]),
    "three_classes": (_text(HEADER, *[_row(f"u{i}", ordered=str(i % 3)) for i in range(60)]),
                      ["ordered"]),
    "target_text": (_text(HEADER, *[_row(f"u{i}", ordered="maybe") for i in range(20)]),
                    ["ordered"]),
    "feature_text": (_text(HEADER, *_two_class_rows(20), _row("u99", _with("sort_by", "abc"))),
                     ["sort_by"]),
    "feature_nan_target": (_text(HEADER, *_two_class_rows(20), _row("u99", ordered="nan")),
                           ["ordered"]),
    "utf16": ((HEADER + "\n" + "\n".join(_good_rows(20)) + "\n").encode("utf-16"), ["train.csv"]),
    "truncated": (_text(HEADER, *_good_rows(30))[:-25], ["train.csv"]),
    "duplicate_header": (_text(HEADER + ",sort_by", *[r + ",1" for r in _good_rows(20)]),
                         ["sort_by"]),
    "binary_garbage": (bytes(range(256)) * 40, ["train.csv"]),
}


def _train_argv(tmp_path, train_file, out):
    return ["--train-file", str(train_file), "--output-dir", str(out), "--models",
            "logistic_regression", "--cv-folds", "2", "--quiet"]


@pytest.mark.parametrize("case", sorted(TRAIN_INPUTS))
def test_train_bad_data(tmp_path, capsys, case):
    content, fragments = TRAIN_INPUTS[case]
    f = tmp_path / "train.csv"
    f.write_bytes(content)
    out = tmp_path / "ml_outputs"
    code = train.main(_train_argv(tmp_path, f, out))
    err = capsys.readouterr().err
    assert code == 2, err
    for frag in fragments:
        assert frag.lower() in err.lower(), (frag, err)
    assert not out.exists()
    _no_leftovers(tmp_path, keep=("train.csv",))


def test_train_missing_file(tmp_path, capsys):
    out = tmp_path / "ml_outputs"
    code = train.main(_train_argv(tmp_path, tmp_path / "absent.csv", out))
    err = capsys.readouterr().err
    assert code == 2 and "absent.csv" in err
    assert not out.exists()


def test_train_output_under_a_file(tmp_path, capsys):
    f = tmp_path / "train.csv"
    write_sessions_csv(f, session_rows(200, seed=1), ids=[f"u{i}" for i in range(200)])
    (tmp_path / "afile").write_text("x")
    code = train.main(_train_argv(tmp_path, f, tmp_path / "afile" / "out"))
    err = capsys.readouterr().err
    assert code == 3 and "afile" in err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("args, fragment", [
    (["--cv-folds", "1"], "--cv-folds"),
    (["--models", "svm"], "svm"),
    (["--n-jobs", "0"], "--n-jobs"),
    (["--calibration", "magic"], "--calibration"),
])
def test_train_usage_errors(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as exc:
        train.main(["--output-dir", str(tmp_path / "o"), *args])
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------
# Python API

def _fit_data():
    X = session_rows(200, seed=2)
    return X, (X[:, 0] ^ (np.arange(200) % 7 == 0)).astype(int)


@pytest.mark.parametrize("make, fragment", [
    (lambda X, y: (np.where(np.eye(200, 23) == 1, np.nan, X.astype(float)), y), "nan"),
    (lambda X, y: (np.where(np.eye(200, 23) == 1, np.inf, X.astype(float)), y), "inf"),
    (lambda X, y: (X[:, :, None], y), "2"),
    (lambda X, y: (np.full(X.shape, "x", dtype=object), y), "x"),
    (lambda X, y: (X, np.arange(200) % 3), "class"),
    (lambda X, y: (X, np.zeros(200, int)), "class"),
    (lambda X, y: (X, y[:-1]), "200"),
    (lambda X, y: (X[:0], y[:0]), "0"),
    (lambda X, y: (pd.DataFrame(X, columns=["a"] * 23), y), "a"),
])
def test_api_fit_bad_input(make, fragment):
    X, y = make(*_fit_data())
    with pytest.raises((ValueError, TypeError)) as exc:
        LogisticRegression().fit(X, y)
    assert fragment.lower() in str(exc.value).lower()


def test_api_predict_wrong_width():
    X, y = _fit_data()
    est = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="23"):
        est.predict_proba(X[:, :5])


def test_api_load_model_garbage(tmp_path):
    p = tmp_path / "m.propmodel"
    p.write_bytes(b"\x80\x04garbage" * 10)
    with pytest.raises(ValueError, match="m.propmodel"):
        load_model(p)


def test_api_load_model_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.propmodel"
    p.write_bytes(pickle.dumps(os.system))
    with pytest.raises(ValueError, match="evil.propmodel"):
        load_model(p)


def test_api_load_model_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.propmodel")


def test_api_save_to_unwritable_path(tmp_path):
    X, y = _fit_data()
    est = LogisticRegression().fit(X, y)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError):
        est.save(tmp_path / "afile" / "m.propmodel")
    _no_leftovers(tmp_path, keep=("afile",))


@pytest.mark.parametrize("frame, fragment", [
    (lambda: pd.DataFrame({"foo": [0, 1]}), "no known feature column"),
    (lambda: pd.DataFrame([[0] * 24], columns=FEATURES + ["sort_by"]), "duplicate"),
    (lambda: pd.DataFrame(np.full((2, 23), 2), columns=FEATURES), "2"),
    (lambda: pd.DataFrame(np.full((2, 23), np.nan), columns=FEATURES), "basket_icon_click"),
    (lambda: pd.DataFrame(np.full((2, 23), "x"), columns=FEATURES), "basket_icon_click"),
])
def test_api_predictor_bad_frame(model_dir, frame, fragment):
    from propensity.scoring.predictor import CustomerPropensityPredictor, InputDataError

    pred = CustomerPropensityPredictor(model_dir)
    pred.load_best_model()
    with pytest.raises(InputDataError) as exc:
        pred.predict(frame())
    assert fragment in str(exc.value)


# ---------------------------------------------------------------------------
# input formats: gzip, encodings, delimiters, over-long lines (predict exit 5, train
# exit 2). Each case: the exit code, the first line of the message, the input's bytes and
# inode unchanged, a previous output kept and nothing partial left beside it.

import gzip as _gzip  # noqa: E402

from propensity.io import blocks as _blocks  # noqa: E402


def _gz(data):
    return _gzip.compress(data, mtime=0)


def _flip_middle(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


_MANY = _text(HEADER, *_two_class_rows(2000))   # about 100 kB: several predict blocks
_LATIN1_LATE = _MANY.replace(b"\nu1500,", b"\nu1500\xe9,", 1)
_SEMI = _text(*[r.replace(",", ";") for r in [HEADER] + _two_class_rows(40)])
_TABS = _text(*[r.replace(",", "\t") for r in [HEADER] + _two_class_rows(40)])

FORMAT_CASES = {
    # id: (file bytes, extra args, first line of the message holds these)
    "gzip_truncated": (_gz(_MANY)[:-200], [], ["in.csv", "gzip data is truncated"]),
    "gzip_damaged": (_flip_middle(_gz(_MANY)), [], ["in.csv", "gzip data is damaged"]),
    "gzip_latin1": (_gz(_LATIN1_LATE), [], ["in.csv", "line 1502 is not UTF-8",
                                             "byte 0xE9", "--encoding"]),
    "latin1_id": (_text(HEADER, *_good_rows(2)).replace(b"u1,", b"\xfc1,"), [],
                  ["in.csv", "line 3 is not UTF-8", "byte 0xFC at byte 1"]),
    "latin1_late_block": (_LATIN1_LATE, ["--chunksize", "1"],
                          ["in.csv", "line 1502 is not UTF-8", "byte 0xE9 at byte 6"]),
    "latin1_header": (_text(HEADER.replace("UserID", "Us\xe9rID"), *_good_rows(2))
                      .replace(b"\xc3\xa9", b"\xe9"), [], ["line 1 is not UTF-8", "byte 0xE9"]),
    "cp1252_as_utf16": (_text(HEADER, *_good_rows(2)) + b"\x00", ["--encoding", "utf-16"],
                        ["in.csv", "not utf-16 text"]),
    "semicolons": (_SEMI, [], ["no known feature column", "pass --sep ';'"]),
    "tabs": (_TABS, [], ["no known feature column", "pass --sep '\\t'"]),
    "semicolons_with_pipe": (_SEMI, ["--sep", "|"], ["not '|'; pass --sep ';'"]),
    "first_line_5mb": (b"x" * (5 << 20), [], ["in.csv", "header line is longer than 4194304"]),
    "parquet_named_csv": (b"PAR1" + bytes(100) + b"PAR1", [], ["in.csv", "is a Parquet file"]),
}


def _snapshot(path):
    st = os.stat(path)
    return st.st_ino, path.read_bytes()


def _first_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return lines[0] if lines else ""


@pytest.mark.parametrize("case", sorted(FORMAT_CASES))
def test_predict_input_format_errors(run_predict, tmp_path, case):
    content, args, fragments = FORMAT_CASES[case]
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    out.write_text("previous\n")
    inp = tmp_path / "in.csv"
    inp.write_bytes(content)
    before = _snapshot(inp)
    code, err, _ = run_predict(input_path=inp, output=out, args=args)
    assert code == predict.EXIT_INPUT, err
    first = _first_line(err)
    assert first.startswith("error: "), err
    for frag in fragments:
        assert frag.lower() in first.lower(), (frag, first)
    assert "Traceback" not in err
    assert _snapshot(inp) == before
    assert out.read_text() == "previous\n"
    _no_leftovers(out.parent, keep=("pred.csv",))


def test_predict_dev_zero(run_predict, tmp_path):
    """/dev/zero has no line end: a one-line error, not MemoryError."""
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    code, err, _ = run_predict(input_path="/dev/zero", output=out)
    assert code == predict.EXIT_INPUT, err
    assert _first_line(err) == ("error: '/dev/zero': the header line is longer than 4194304 "
                                "bytes (no line end found); is this a CSV file?")
    _no_leftovers(out.parent)


def test_predict_data_line_too_long(run_predict, tmp_path, monkeypatch):
    monkeypatch.setattr(_blocks, "MAX_RECORD_BYTES", 1 << 17)
    inp = tmp_path / "in.csv"
    inp.write_bytes(_text(HEADER, *_good_rows(3), _row("u" * 300_000), *_good_rows(2)))
    before = _snapshot(inp)
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    code, err, _ = run_predict(input_path=inp, output=out, args=["--chunksize", "1"])
    assert code == predict.EXIT_INPUT, err
    assert "in.csv': line 5 is longer than 131072 bytes" in _first_line(err), err
    assert _snapshot(inp) == before
    _no_leftovers(out.parent)


@pytest.mark.parametrize("args, fragment", [
    (["--sep", "ab"], "argument --sep: sep must be one ASCII character"),
    (["--sep", '"'], "argument --sep"),
    (["--encoding", "no-such-codec"], "argument --encoding: unknown encoding 'no-such-codec'"),
])
def test_predict_format_usage_errors(run_predict, args, fragment):
    code, err, out = run_predict(_text(HEADER, *_good_rows()), args=args)
    assert code == predict.EXIT_USAGE and fragment in err, err
    assert not out.exists()


TRAIN_FORMAT_CASES = {
    "gzip_truncated": (_gz(_MANY)[:-200], [], ["train.csv", "gzip data is truncated"]),
    "gzip_damaged": (_flip_middle(_gz(_MANY)), [], ["train.csv", "gzip data is damaged"]),
    "latin1_id": (_LATIN1_LATE, [], ["train.csv", "line 1502 is not UTF-8", "byte 0xE9"]),
    "semicolons": (_SEMI, [], ["target column 'ordered' not found", "pass --sep ';'"]),
    "tabs": (_TABS, [], ["target column 'ordered' not found", "pass --sep '\\t'"]),
    "first_line_5mb": (b"x" * (5 << 20), [], ["train.csv", "header line is longer than"]),
    "parquet_named_csv": (b"PAR1" + bytes(100) + b"PAR1", [], ["is a Parquet file"]),
}


@pytest.mark.parametrize("case", sorted(TRAIN_FORMAT_CASES))
def test_train_input_format_errors(tmp_path, capsys, case):
    content, args, fragments = TRAIN_FORMAT_CASES[case]
    f = tmp_path / "train.csv"
    f.write_bytes(content)
    before = _snapshot(f)
    out = tmp_path / "ml_outputs"
    code = train.main(_train_argv(tmp_path, f, out) + args)
    err = capsys.readouterr().err
    assert code == 2, err
    first = _first_line(err)
    assert first.startswith("propensity-train: error: "), err
    for frag in fragments:
        assert frag.lower() in first.lower(), (frag, first)
    assert "Traceback" not in err
    assert _snapshot(f) == before
    assert not out.exists()
    _no_leftovers(tmp_path, keep=("train.csv",))


def test_train_dev_zero(tmp_path, capsys):
    out = tmp_path / "ml_outputs"
    code = train.main(_train_argv(tmp_path, "/dev/zero", out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert _first_line(err) == ("propensity-train: error: /dev/zero: the header line is longer "
                                "than 4194304 bytes (no line end found); is this a CSV file?")
    assert not out.exists()


def _parquet_cases(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(pd.io.common.BytesIO(_MANY), dtype={"UserID": str})
    good = tmp_path / "good.parquet"
    frame.to_parquet(good, row_group_size=500)
    bad_value = frame.copy()
    bad_value.loc[1200, "sign_in"] = 5
    bad_value.to_parquet(tmp_path / "value.parquet", row_group_size=500)
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[:-64])
    (tmp_path / "text.parquet").write_bytes(_text(HEADER, *_good_rows(3)))
    return {"value.parquet": ["value.parquet", "data row 1201", "column 'sign_in'", "not 0 or 1"],
            "cut.parquet": ["cut.parquet': cannot read it as parquet"],
            "text.parquet": ["text.parquet': cannot read it as parquet"]}


def test_predict_parquet_input_errors(run_predict, tmp_path):
    cases = _parquet_cases(tmp_path)
    out = tmp_path / "out" / "pred.parquet"
    out.parent.mkdir()
    out.write_bytes(b"previous")
    for name, fragments in cases.items():
        inp = tmp_path / name
        before = _snapshot(inp)
        code, err, _ = run_predict(input_path=inp, output=out, args=["--chunksize", "100"])
        assert code == predict.EXIT_INPUT, (name, err)
        for frag in fragments:
            assert frag.lower() in _first_line(err).lower(), (name, frag, err)
        assert _snapshot(inp) == before
        assert out.read_bytes() == b"previous"
        _no_leftovers(out.parent, keep=("pred.parquet",))


def test_train_parquet_input_errors(tmp_path, capsys):
    cases = _parquet_cases(tmp_path)
    for name, fragments in cases.items():
        inp = tmp_path / name
        before = _snapshot(inp)
        out = tmp_path / "ml_outputs"
        code = train.main(_train_argv(tmp_path, inp, out))
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        first = _first_line(err).replace("'", "").lower()
        assert first.startswith("propensity-train: error: "), err
        for frag in fragments:
            assert frag.replace("'", "").lower() in first, (name, frag, err)
        assert _snapshot(inp) == before
        assert not out.exists()
