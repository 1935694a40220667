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


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


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


def _files(*folders):
    """{path: (inode, bytes or link target)} of every file under ``folders``."""
    out = {}
    for folder in folders:
        for rel, v in _tree_snapshot(folder).items():
            out[os.path.join(str(folder), rel)] = v
    return out


def _check_failure(code, err, ok_codes=(0,), prefix="error: "):
    """Every failing run: no traceback, and (argparse's usage lines aside) its message is
    one line with the command's prefix."""
    assert "Traceback" not in err and "Logging error" not in err, err
    if code in ok_codes:
        return
    lines = [ln for ln in err.splitlines() if not ln.startswith("WARNING: ")]
    if code == 2 and lines and lines[0].startswith("usage: "):
        assert lines[-1].startswith(("propensity-predict: error: ",
                                     "propensity-train: error: ")), err
    else:
        assert len(lines) == 1 and lines[0].startswith(prefix), err


@pytest.fixture()
def run_predict(model_dir, tmp_path, capsys):
    """Run propensity.predict; checks for every case: no traceback, a one-line message,
    and every input and model file byte for byte and inode for inode as it was."""
    def run(content=None, *, args=(), input_path=None, output=None):
        if input_path is None:
            input_path = tmp_path / "in.csv"
            input_path.write_bytes(content)
        out = output if output is not None else tmp_path / "out" / "pred.csv"
        if output is None:
            out.parent.mkdir(exist_ok=True)
        argv = ["--input_file", str(input_path), "--output_file", str(out),
                "--model_dir", model_dir, "--quiet", *args]
        watched = [model_dir] + ([str(input_path)] if os.path.isfile(input_path) else [])
        before = {p: v for p, v in _files(model_dir).items()}
        if os.path.isfile(input_path):
            before[str(input_path)] = (os.stat(input_path).st_ino, open(input_path, "rb").read())
        try:
            code = predict.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        err = capsys.readouterr().err
        _check_failure(code, err)
        after = {p: v for p, v in _files(model_dir).items()}
        if str(input_path) in before:
            after[str(input_path)] = (os.stat(input_path).st_ino, open(input_path, "rb").read())
        assert after == before, f"an input or model file changed: {watched}"
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
    assert code == predict.EXIT_INPUT and "afile" in err, err
    assert (tmp_path / "afile").read_text() == "x"


def test_predict_output_is_a_directory(run_predict, tmp_path):
    out = tmp_path / "outdir"
    out.mkdir()
    code, err, _ = run_predict(_text(HEADER, *_good_rows()), output=out)
    assert code == predict.EXIT_INPUT and "outdir: it is a folder" in err, err
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


@pytest.fixture()
def run_train(tmp_path, capsys):
    """Run propensity.train in ``tmp_path``; checks for every case: no traceback, a
    one-line message, every file under ``tmp_path`` (inputs, a previous output folder)
    byte for byte and inode for inode as it was, no new file or folder left."""
    def run(argv):
        before = _files(tmp_path)
        names = set(os.listdir(tmp_path))
        try:
            code = train.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        err = capsys.readouterr().err
        _check_failure(code, err, prefix="propensity-train: error: ")
        if code != 0:
            assert _files(tmp_path) == before
            assert set(os.listdir(tmp_path)) == names, "a file or folder was left behind"
        return code, err
    return run


@pytest.mark.parametrize("case", sorted(TRAIN_INPUTS))
def test_train_bad_data(tmp_path, run_train, case):
    content, fragments = TRAIN_INPUTS[case]
    f = tmp_path / "train.csv"
    f.write_bytes(content)
    out = tmp_path / "ml_outputs"
    code, err = run_train(_train_argv(tmp_path, f, out))
    assert code == 2, err
    for frag in fragments:
        assert frag.lower() in err.lower(), (frag, err)
    assert not out.exists()


def test_train_missing_file(tmp_path, run_train):
    out = tmp_path / "ml_outputs"
    code, err = run_train(_train_argv(tmp_path, tmp_path / "absent.csv", out))
    assert code == 2 and "absent.csv" in err
    assert not out.exists()


def test_train_output_under_a_file(tmp_path, run_train):
    f = tmp_path / "train.csv"
    write_sessions_csv(f, session_rows(200, seed=1), ids=[f"u{i}" for i in range(200)])
    (tmp_path / "afile").write_text("x")
    code, err = run_train(_train_argv(tmp_path, f, tmp_path / "afile" / "out"))
    assert code == 3 and "afile" in err


@pytest.mark.parametrize("case, code, first", [
    ("output_is_a_file", 3, "output folder {tmp}/afile exists and is not a folder"),
    ("output_unwritable", 3, "cannot write the output folder "),
    ("test_file_missing", 2, "--test-file '{tmp}/nope.csv' not found"),
    ("test_file_is_a_folder", 2, "--test-file '{tmp}/adir' is a folder, not a file"),
    ("train_file_is_a_folder", 2, "--train-file '{tmp}/adir' is a folder, not a file"),
    ("grid_missing", 2, "{tmp}/nope.toml: cannot read the grid file (No such file"),
    ("grid_is_a_folder", 2, "{tmp}/adir: cannot read the grid file (Is a directory)"),
    ("grid_not_toml", 2, "{tmp}/bad.toml: not a valid grid file"),
    ("grid_unknown_model", 2, "{tmp}/bad.toml: unknown model 'svm'"),
    ("grid_unknown_parameter", 2, "grid of logistic_regression: LogisticRegression has no "
                                  "parameter 'foo'"),
    ("grid_empty_list", 2, "{tmp}/bad.toml: grid of 'logistic_regression' has no value for 'C'"),
    ("id_column_is_target", 2, "--id-column and --target both name 'ordered'"),
    ("id_column_missing", 2, "{tmp}/train.csv: id column 'nosuch' not found (--id-column)"),
    ("target_missing", 2, "{tmp}/train.csv: target column 'bought' not found"),
])
def test_train_bad_paths_and_options(tmp_path, run_train, train_csv, case, code, first):
    """Neighbours of the failures above: output folder, test file, grid file and column
    options, each refused with its exit code and first line, nothing written."""
    shutil.copy(train_csv, tmp_path / "train.csv")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    grid = {"grid_not_toml": "[logistic_regression\nC = [1.0]\n",
            "grid_unknown_model": "[svm]\nC = [1.0]\n",
            "grid_unknown_parameter": "[logistic_regression]\nfoo = [1]\n",
            "grid_empty_list": "[logistic_regression]\nC = []\n"}.get(case)
    if grid is not None:
        (tmp_path / "bad.toml").write_text(grid)
    out = tmp_path / "ml_outputs"
    argv = ["--train-file", str(tmp_path / "train.csv"), "--models", "lr", "--quiet",
            "--output-dir", str(out)]
    argv += {
        "output_is_a_file": ["--output-dir", str(tmp_path / "afile")],
        "output_unwritable": ["--output-dir", "/sys/propensity-test-outputs"],
        "test_file_missing": ["--test-file", str(tmp_path / "nope.csv")],
        "test_file_is_a_folder": ["--test-file", str(tmp_path / "adir")],
        "train_file_is_a_folder": ["--train-file", str(tmp_path / "adir")],
        "grid_missing": ["--grid", str(tmp_path / "nope.toml")],
        "grid_is_a_folder": ["--grid", str(tmp_path / "adir")],
        "id_column_is_target": ["--id-column", "ordered"],
        "id_column_missing": ["--id-column", "nosuch"],
        "target_missing": ["--target", "bought"],
    }.get(case, ["--grid", str(tmp_path / "bad.toml")] if grid is not None else [])
    if case == "output_unwritable" and not ROOT:
        ro = tmp_path / "adir"
        os.chmod(ro, 0o555)
        argv[-1] = str(ro / "out")
    got, err = run_train(argv)
    assert got == code, err
    assert err.splitlines()[-1].startswith(
        "propensity-train: error: " + first.format(tmp=tmp_path)), err
    assert not out.exists() and not os.path.exists("/sys/propensity-test-outputs")


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
# propensity.train: an input inside the output folder it replaces (exit 2)

def _tree_snapshot(folder):
    """{relative path: (inode, bytes or link target)} of every file under ``folder``."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            body = ("link", os.readlink(p)) if os.path.islink(p) else \
                open(p, "rb").read() if os.path.isfile(p) else None
            out[os.path.relpath(p, folder)] = (os.lstat(p).st_ino, body)
    return out


@pytest.mark.parametrize("case", ["train_in_output", "test_is_test_predictions",
                                  "grid_in_output", "link_into_output", "train_in_subfolder"])
def test_train_refuses_an_input_inside_the_output_folder(tmp_path, capsys, case):
    out = tmp_path / "ml_outputs"
    (out / "sub").mkdir(parents=True)
    (out / "manifest.json").write_text("{}")
    rows = session_rows(200, seed=1)
    ids = [f"u{i}" for i in range(200)]
    outside = tmp_path / "train.csv"
    write_sessions_csv(outside, rows, ids=ids)
    train_file, extra, label = outside, [], "--train-file"
    if case == "train_in_output":
        train_file = out / "train.csv"
        write_sessions_csv(train_file, rows, ids=ids)
    elif case == "train_in_subfolder":
        train_file = out / "sub" / "train.csv"
        write_sessions_csv(train_file, rows, ids=ids)
    elif case == "link_into_output":
        write_sessions_csv(out / "real.csv", rows, ids=ids)
        train_file = tmp_path / "link.csv"
        train_file.symlink_to(out / "real.csv")
    elif case == "test_is_test_predictions":
        write_sessions_csv(out / "test_predictions.csv", rows, ids=ids)
        extra, label = ["--test-file", str(out / "test_predictions.csv")], "--test-file"
    else:
        (out / "grid.toml").write_text("[logistic_regression]\nC = [1.0]\n")
        extra, label = ["--grid", str(out / "grid.toml")], "--grid"
    before_out, before_top = _tree_snapshot(out), _tree_snapshot(tmp_path)
    code = train.main(_train_argv(tmp_path, train_file, out) + extra)
    first = capsys.readouterr().err.splitlines()[0]
    assert code == 2, first
    assert first.startswith("propensity-train: error: " + label), first
    assert "is inside --output-dir" in first and str(out) in first
    assert _tree_snapshot(out) == before_out and _tree_snapshot(tmp_path) == before_top


@pytest.mark.parametrize("case", ["drift_is_manifest", "drift_is_model_file", "drift_is_input",
                                  "drift_is_output", "drift_links_to_input"])
def test_predict_refuses_a_drift_report_over_another_file(model_dir, tmp_path, capsys, case):
    """--drift-report that is the same file as the input, a model file or the output:
    exit 2 naming both, every file as it was."""
    folder = tmp_path / "models"
    shutil.copytree(model_dir, folder)
    inp = tmp_path / "in.csv"
    inp.write_bytes(_text(HEADER, *_good_rows()))
    out = tmp_path / "pred.csv"
    target, other = {
        "drift_is_manifest": (folder / "manifest.json", "the model file"),
        "drift_is_model_file": (sorted(folder.glob("*.propmodel"))[0], "the model file"),
        "drift_is_input": (inp, "--input_file"),
        "drift_is_output": (out, "--output_file"),
        "drift_links_to_input": (tmp_path / "link.json", "--input_file"),
    }[case]
    if case == "drift_links_to_input":
        target.symlink_to(inp)
    before = _tree_snapshot(tmp_path)
    code = predict.main(["--input_file", str(inp), "--output_file", str(out), "--model_dir",
                         str(folder), "--drift-report", str(target), "--quiet"])
    first = capsys.readouterr().err.splitlines()[0]
    assert code == predict.EXIT_USAGE, first
    assert first.startswith("error: ") and "is the same file as" in first and other in first
    assert str(target) in first
    assert _tree_snapshot(tmp_path) == before


# ---------------------------------------------------------------------------
# failures as messages: grids out of range, write failures, misleading messages

@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    """A small training file of the stand-in data (both classes, ~3,000 rows)."""
    from propensity.datasets import make_sessions
    path = tmp_path_factory.mktemp("train_data") / "train.csv"
    make_sessions(3000, seed=1).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("family, grid, first", [
    ("rf", "[random_forest]\nmax_depth = [-5]",
     "grid of random_forest: max_depth must be in [1, 2147483647], got -5"),
    ("rf", "[random_forest]\nmax_depth = [4294967296]",
     "grid of random_forest: max_depth must be in [1, 2147483647], got 4294967296"),
    ("rf", "[random_forest]\nmax_depth = [2147483648]",
     "grid of random_forest: max_depth must be in [1, 2147483647], got 2147483648"),
    ("rf", "[random_forest]\nmax_depth = [5.5]",
     "grid of random_forest: max_depth must be an int or None, got 5.5"),
    ("rf", "[random_forest]\nmin_samples_leaf = [0]",
     "grid of random_forest: min_samples_leaf must be in [1, 2147483647], got 0"),
    ("rf", "[random_forest]\nn_estimators = [9223372036854775807]",
     "grid of random_forest: n_estimators must be in [1, 2147483647]"),
    ("gb", "[gradient_boosting]\nmax_depth = [-1]",
     "grid of gradient_boosting: max_depth must be in [1, 2147483647], got -1"),
    ("gb", "[gradient_boosting]\nn_estimators = [2147483648]",
     "grid of gradient_boosting: n_estimators must be in [1, 2147483647], got 2147483648"),
    ("gb", "[gradient_boosting]\nmax_bins = [256]",
     "grid of gradient_boosting: max_bins must be in [2, 255], got 256"),
    ("lr", "[logistic_regression]\nmax_iter = [2147483648]",
     "grid of logistic_regression: max_iter must be at most 2147483647, got 2147483648"),
    ("lr", "[logistic_regression]\nC = [-1.0]",
     "grid of logistic_regression: C must be a finite number > 0, got -1.0"),
])
def test_train_grid_value_out_of_range(tmp_path, capsys, train_csv, family, grid, first):
    """A grid value the estimator refuses (or the C core could not hold): exit 2 naming
    the family, the parameter and the value, before any fit; nothing written."""
    (tmp_path / "grid.toml").write_text(grid + "\n")
    out = tmp_path / "ml_outputs"
    code = train.main(["--train-file", str(train_csv), "--output-dir", str(out), "--models",
                       family, "--grid", str(tmp_path / "grid.toml"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines()[0].startswith("propensity-train: error: " + first), err
    assert "Traceback" not in err and not out.exists()
    _no_leftovers(tmp_path, keep=("grid.toml",))


def _previous_outputs(folder):
    folder.mkdir()
    (folder / "manifest.json").write_text('{"previous": true}\n')
    (folder / "test_predictions.csv").write_text("UserID,p\nu1,0.5\n")
    return _tree_snapshot(folder)


def _limited(code, limit, cwd):
    """Run ``code`` in a child with the file-size limit at ``limit`` bytes (SIGXFSZ
    ignored, so a write past it fails with EFBIG as on a full quota)."""
    import subprocess
    import sys

    from conftest import package_env
    prog = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n" + code)
    return subprocess.run([sys.executable, "-c", prog], cwd=cwd, env=package_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("limit, name", [(4000, "logistic_regression_model.propmodel"),
                                         (15000, "detailed_evaluation_results.pkl"),
                                         (50000, "test_predictions.csv")])
def test_train_file_size_limit_is_a_message(tmp_path, train_csv, limit, name):
    """EFBIG while writing the outputs: exit 3, one line naming the output file, the
    previous output folder byte for byte and inode for inode as it was, no temporary
    folder left."""
    out = tmp_path / "ml_outputs"
    before = _previous_outputs(out)
    res = _limited(f"from propensity import train\nsys.exit(train.main(['--train-file', "
                   f"{str(train_csv)!r}, '--output-dir', 'ml_outputs', '--models', 'lr', "
                   f"'--quiet']))\n", limit, tmp_path)
    assert res.returncode == 3, res.stderr
    lines = res.stderr.splitlines()
    assert lines[-1] == (f"propensity-train: error: cannot write the outputs to {out}: cannot "
                         f"write {out / name}: File too large; the previous outputs are "
                         f"unchanged"), res.stderr
    assert "Traceback" not in res.stderr and "Logging error" not in res.stderr
    assert _tree_snapshot(out) == before
    _no_leftovers(tmp_path, keep=("ml_outputs",))


def test_train_disk_full_is_a_message(tmp_path, capsys, train_csv, monkeypatch):
    """ENOSPC while writing a model pickle: exit 3 naming it; previous outputs kept."""
    import errno

    from propensity.training import pipeline

    def full(self, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pipeline._DocumentPickler, "dump", full)
    out = tmp_path / "ml_outputs"
    before = _previous_outputs(out)
    code = train.main(["--train-file", str(train_csv), "--output-dir", str(out), "--models",
                       "lr", "--quiet"])
    first = capsys.readouterr().err.splitlines()[-1]  # after the run's warnings
    assert code == 3
    assert first == (f"propensity-train: error: cannot write the outputs to {out}: cannot write "
                     f"{out / 'logistic_regression_model.pkl'}: No space left on device; the "
                     f"previous outputs are unchanged")
    assert _tree_snapshot(out) == before
    _no_leftovers(tmp_path, keep=("ml_outputs",))


def test_predict_file_size_limit_keeps_output_and_drift_report(model_dir, tmp_path):
    """EFBIG while writing the predictions: exit 5, one line naming the output; the
    previous predictions and drift report as they were."""
    from propensity.datasets import make_sessions
    make_sessions(20000, seed=2, testing=True).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "pred.csv").write_text("previous\n")
    (tmp_path / "drift.json").write_text("{}\n")
    before = _tree_snapshot(tmp_path)
    res = _limited(f"from propensity import predict\nsys.exit(predict.main(['--input_file', "
                   f"'in.csv', '--output_file', 'pred.csv', '--model_dir', {model_dir!r}, "
                   f"'--drift-report', 'drift.json', '--quiet']))\n", 200_000, tmp_path)
    assert res.returncode == predict.EXIT_INPUT, res.stderr
    assert res.stderr.splitlines() == ["error: cannot write pred.csv: File too large"]
    assert _tree_snapshot(tmp_path) == before


@pytest.mark.parametrize("device, code, first", [
    ("/dev/full", 5, "error: cannot write /dev/full: No space left on device"),
    ("/dev/null", 0, None),
])
def test_predict_to_a_device(run_predict, device, code, first):
    """A device is written straight through, never replaced by a regular file."""
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    st = os.stat(device)
    got, err, _ = run_predict(_text(HEADER, *_good_rows(2000)), output=device)
    assert got == code, err
    if first is not None:
        assert err.splitlines()[0] == first
    after = os.stat(device)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (st.st_ino, st.st_mode, st.st_rdev)


def test_train_constant_model_warns_naming_min_samples_leaf(tmp_path, capsys, train_csv):
    """One line per warning on stderr (captured from the warnings module, without the
    file, line and source text warnings.formatwarning adds)."""
    import re
    (tmp_path / "grid.toml").write_text("[random_forest]\nn_estimators = [5]\n"
                                        "max_depth = [3]\nmin_samples_split = [2]\n"
                                        "min_samples_leaf = [100000]\n")
    code = train.main(["--train-file", str(train_csv), "--output-dir", str(tmp_path / "o"),
                       "--models", "rf", "--grid", str(tmp_path / "grid.toml"), "--quiet"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 0
    assert lines and all(re.fullmatch(
        r"WARNING: RandomForestClassifier: min_samples_leaf=100000 \(a split needs 200000 "
        r"rows\) on \d+ training rows: no node can be split, every tree is one leaf and the "
        r"model is constant", line) for line in lines), lines


def test_train_few_positives_warns(tmp_path, capsys):
    from propensity.datasets import make_sessions
    d = make_sessions(30000, seed=1)
    d.loc[np.flatnonzero(d.ordered.to_numpy() == 1)[8:], "ordered"] = 0
    d.to_csv(tmp_path / "few.csv", index=False)
    code = train.main(["--train-file", str(tmp_path / "few.csv"), "--output-dir",
                       str(tmp_path / "o"), "--models", "lr", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert "only 7 positive row(s) in the training split" in err, err
    assert "at least 30, and 10 per fold" in err


def test_train_unknown_id_column_names_it(tmp_path, capsys, train_csv):
    code = train.main(["--train-file", str(train_csv), "--output-dir", str(tmp_path / "o"),
                       "--models", "lr", "--id-column", "nosuch", "--quiet"])
    first = capsys.readouterr().err.splitlines()[0]
    assert code == 2
    assert first.startswith(f"propensity-train: error: {train_csv}: id column 'nosuch' not "
                            f"found (--id-column); columns are ['UserID', ")
    assert "UserID" not in first.split("columns are")[0]
    assert not (tmp_path / "o").exists()


def test_predict_model_folder_that_is_a_file(run_predict, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, err, out = run_predict(_text(HEADER, *_good_rows()),
                                 args=["--model_dir", str(tmp_path / "afile")])
    assert code == predict.EXIT_MODEL_MISSING
    assert "is a file, not a folder" in err.splitlines()[0] and "does not exist" not in err
    assert not out.exists() and (tmp_path / "afile").read_text() == "x"


def test_train_test_file_error_counts_rows_as_the_user_sees_them(tmp_path, capsys, train_csv):
    """The 7th data row (line 8 of the file) is named as both, with plain ints."""
    test = tmp_path / "test.csv"
    lines = open(train_csv).read().splitlines()[:12]
    cells = lines[7].split(",")
    cells[4] = "7"  # sort_by
    lines[7] = ",".join(cells)
    test.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    code = train.main(["--train-file", str(train_csv), "--test-file", str(test),
                       "--output-dir", str(out), "--models", "lr", "--quiet"])
    first = capsys.readouterr().err.splitlines()[-1]  # after the run's warnings
    assert code == 2
    assert "line 8 (data row 7), column 'sort_by': value '7'" in first, first
    assert "np." not in first and "int64" not in first
    assert not out.exists()


@pytest.mark.parametrize("case, code, first", [
    ("output_link_to_folder", 5, "error: cannot write {out}: it is a folder"),
    ("output_unwritable_folder", 5, "error: cannot write {out}: Permission denied"),
    ("output_dangling_link_into_missing_folder", 5, "error: cannot write {out}: the folder "),
    ("output_hard_link_of_input", 2, "error: --output_file {out!r} is the same file as "
                                     "--input_file"),
    ("drift_report_is_a_folder", 5, "error: cannot write {drift}: it is a folder"),
    ("drift_report_in_missing_folder", 5, "error: cannot write {drift}: the folder "),
    ("model_dir_link_to_a_file", 3, "error: model folder "),
])
def test_predict_bad_output_paths(run_predict, tmp_path, case, code, first):
    """Neighbours of the output cases: links to folders, unwritable and missing folders,
    a hard link of the input, a bad drift-report path, a model folder that is a link to
    a file; each refused with its exit code and first line, no output written, a
    previous output kept."""
    inp = tmp_path / "in.csv"
    inp.write_bytes(_text(HEADER, *_good_rows()))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    out, drift, args = tmp_path / "pred.csv", None, []
    if case == "output_link_to_folder":
        out = tmp_path / "link"
        out.symlink_to(tmp_path / "adir")
    elif case == "output_unwritable_folder":
        if ROOT:
            out = "/sys/propensity-test-pred.csv"
        else:
            os.chmod(tmp_path / "adir", 0o555)
            out = tmp_path / "adir" / "pred.csv"
    elif case == "output_dangling_link_into_missing_folder":
        out = tmp_path / "link.csv"
        out.symlink_to(tmp_path / "missing" / "pred.csv")
    elif case == "output_hard_link_of_input":
        out = tmp_path / "hard.csv"
        os.link(inp, out)
    elif case == "drift_report_is_a_folder":
        drift = tmp_path / "adir"
    elif case == "drift_report_in_missing_folder":
        drift = tmp_path / "missing" / "drift.json"
    else:
        link = tmp_path / "models_link"
        link.symlink_to(tmp_path / "afile")
        args = ["--model_dir", str(link)]
    if drift is not None:
        args += ["--drift-report", str(drift)]
        (tmp_path / "pred.csv").write_text("previous\n")
    before = _files(tmp_path)
    got, err, _ = run_predict(input_path=inp, output=out, args=args)
    assert got == code, err
    assert err.splitlines()[0].startswith(first.format(out=str(out), drift=str(drift))), err
    assert _files(tmp_path) == before
    assert not os.path.exists("/sys/propensity-test-pred.csv")


def test_predict_to_a_fifo_and_a_descriptor_path(run_predict, tmp_path):
    """A FIFO and /dev/fd/N get the same bytes a regular output gets (timestamps aside),
    and stay what they were."""
    import stat
    import threading
    rows = _text(HEADER, *_good_rows(3000))
    code, err, ref = run_predict(rows)
    assert code == 0, err
    want = [line.rsplit(",", 1)[0] for line in ref.read_text().splitlines()]

    def read_all(path_or_fd, sink):
        with open(path_or_fd, "rb") as f:
            sink.append(f.read())

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    t = threading.Thread(target=read_all, args=(fifo, got))
    t.start()
    code, err, _ = run_predict(rows, output=fifo)
    t.join()
    assert code == 0, err
    assert [ln.rsplit(",", 1)[0] for ln in got[0].decode().splitlines()] == want
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    r, w = os.pipe()
    got = []
    t = threading.Thread(target=read_all, args=(r, got))
    t.start()
    try:
        code, err, _ = run_predict(rows, output=f"/dev/fd/{w}")
    finally:
        os.close(w)
    t.join()
    assert code == 0, err
    assert [ln.rsplit(",", 1)[0] for ln in got[0].decode().splitlines()] == want


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


# ---------------------------------------------------------------------------
# targeting policies (issue 18): bad --contact-cost / --order-value / --top-percent /
# --budget, exit 2 with the reason, nothing written

@pytest.mark.parametrize("args, fragment", [
    (["--target-policy", "profit", "--contact-cost", "0", "--order-value", "40"],
     "argument --contact-cost: must be a number > 0, got '0'"),
    (["--target-policy", "profit", "--contact-cost", "-1", "--order-value", "40"],
     "argument --contact-cost: must be a number > 0, got '-1'"),
    (["--target-policy", "profit", "--contact-cost", "abc", "--order-value", "40"],
     "argument --contact-cost: expected a number, got 'abc'"),
    (["--target-policy", "profit", "--contact-cost", "nan", "--order-value", "40"],
     "argument --contact-cost: must be a number > 0, got 'nan'"),
    (["--target-policy", "profit", "--contact-cost", "5", "--order-value", "5"],
     "--order-value 5 is not above --contact-cost 5: no contact can be profitable"),
    (["--target-policy", "profit", "--contact-cost", "5"],
     "--contact-cost and --order-value go together: give both"),
    (["--target-policy", "profit"], "--target-policy profit needs --contact-cost and --order-value"),
    (["--target-policy", "top-percent", "--top-percent", "0"],
     "argument --top-percent: must be in (0, 100], got 0"),
    (["--target-policy", "top-percent", "--top-percent", "100.5"],
     "argument --top-percent: must be in (0, 100], got 100.5"),
    (["--target-policy", "top-percent", "--top-percent", "ten"],
     "argument --top-percent: expected a percentage, got 'ten'"),
    (["--target-policy", "top-percent"], "--target-policy top-percent needs --top-percent P"),
    (["--top-percent", "10"], "--top-percent goes with --target-policy top-percent"),
    (["--target-policy", "budget"], "--target-policy budget needs --budget N"),
    (["--target-policy", "budget", "--budget", "20", "--budget-sessions", "10"],
     "--budget 20 is above the 10 sessions it is spread over: at most one contact per session"),
    (["--target-policy", "budget", "--budget", "30"],
     "--budget 30 is above the 20 sessions it is spread over: at most one contact per session "
     "(the 20 rows of the training data; --budget-sessions sets another number)"),
])
def test_train_bad_policy(tmp_path, run_train, args, fragment):
    (tmp_path / "train.csv").write_bytes(_text(HEADER, *_two_class_rows(20)))
    out = tmp_path / "ml_outputs"
    code, err = run_train(_train_argv(tmp_path, tmp_path / "train.csv", out) + args)
    assert code == 2, err
    assert fragment in err, err
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--top-percent", "0"], "argument --top-percent: must be in (0, 100], got 0"),
    (["--top-percent", "101"], "argument --top-percent: must be in (0, 100], got 101"),
    (["--budget", "50"], "--budget N and --budget-sessions S go together"),
    (["--budget", "50", "--budget-sessions", "10"],
     "--budget 50 is above the 10 sessions it is spread over"),
    (["--budget", "-3", "--budget-sessions", "10"], "argument --budget: must be a number > 0"),
    (["--top-percent", "10", "--threshold", "0.5"], "not allowed with argument"),
])
def test_predict_bad_policy_override(run_predict, args, fragment):
    code, err, out = run_predict(_text(HEADER, *_good_rows()), args=args)
    assert code == predict.EXIT_USAGE and fragment in err, err
    assert not out.exists()


# ---------------------------------------------------------------------------
# category columns (issue 19): refused options, and the documented behaviours

def _category_training_file(path, values, n=600, seed=3):
    """The stand-in sessions with a text column ``channel`` of the given values (cycled)."""
    from propensity.datasets import make_sessions
    df = make_sessions(n, seed=seed)
    df.insert(1, "channel", [values[i % len(values)] for i in range(n)])
    df.insert(2, "region", np.where(np.arange(n) % 7 == 0, np.nan, np.arange(n) % 4 + 1.0))
    df.to_csv(path, index=False)
    return df


@pytest.mark.parametrize("args, code, first", [
    (["--categorical-columns", "nope"], 2,
     "{tmp}/train.csv: --categorical-columns names 'nope', not a feature column"),
    (["--categorical-columns", "ordered"], 2, "--categorical-columns names 'ordered', the target"),
    (["--categorical-columns", "sign_in"], 2,
     "{tmp}/train.csv: 'sign_in' must be binary (a session column)"),
    (["--categorical", "onehot"], 2,
     "{tmp}/train.csv: text column 'channel' has 1200 distinct values; too many to one-hot"),
])
def test_train_category_options_refused(tmp_path, run_train, args, code, first):
    _category_training_file(tmp_path / "train.csv", [f"v{i}" for i in range(1200)], n=1200)
    out = tmp_path / "ml_outputs"
    got, err = run_train(_train_argv(tmp_path, tmp_path / "train.csv", out) + args)
    assert got == code, err
    assert err.splitlines()[-1].startswith(
        "propensity-train: error: " + first.format(tmp=tmp_path)), err
    assert not out.exists()


@pytest.mark.parametrize("args", [["--categorical", "magic"], ["--categorical-columns", ","],
                                  ["--categorical-columns", ""]])
def test_train_category_usage_errors(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exc:
        train.main(["--output-dir", str(tmp_path / "o"), *args])
    assert exc.value.code == 2
    assert "--categorical" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["many_values", "mixed_numbers_and_text", "empty_string",
                                  "numeric_with_nan_named"])
def test_train_category_documented_behaviour(tmp_path, run_train, case):
    """Category columns the run takes, each with its documented outcome (exit 0): more
    values than the cap (the most frequent 254 kept, the cap logged), numbers and text in
    one column (a category column, the numbers' text its categories), an empty cell (a
    missing value, never a category), a numeric column with NaN named in
    --categorical-columns (its numbers' text the categories, NaN missing)."""
    values = {"many_values": [f"v{i}" for i in range(5000)],
              "mixed_numbers_and_text": ["1", "2", "web", "3.5", "app"],
              "empty_string": ["web", "", "app"],
              "numeric_with_nan_named": ["web", "app"]}[case]
    _category_training_file(tmp_path / "train.csv", values, n=5000 if case == "many_values"
                            else 600)
    out = tmp_path / "ml_outputs"
    extra = ["--categorical-columns", "region"] if case == "numeric_with_nan_named" else []
    code, err = run_train(_train_argv(tmp_path, tmp_path / "train.csv", out) + extra)
    assert code == 0, err
    m = load_model(out / "logistic_regression_model.propmodel")
    cols = {c.name: c for c in m.schema_.columns}
    log = (out / "ml_pipeline.log").read_text()
    if case == "many_values":
        assert len(cols["channel"].categories) == 254
        assert "category column 'channel' has 5000 distinct values; the 254 most frequent " \
               "keep a category each, the other 4746 values (4746 of 5000 rows)" in log
    elif case == "mixed_numbers_and_text":
        assert cols["channel"].kind == "category"
        assert cols["channel"].categories == ("1", "2", "3.5", "app", "web")
    elif case == "empty_string":
        assert cols["channel"].categories == ("app", "web")
        E, _ = m.schema_.encode(pd.DataFrame({"channel": ["", "web"]}), warn=False)
        assert np.isnan(E[0, list(cols).index("channel")])
    else:
        assert cols["region"].native and cols["region"].categories == ("1.0", "2.0", "3.0",
                                                                       "4.0")
        E, _ = m.schema_.encode(pd.DataFrame({"region": [np.nan, 2.0]}), warn=False)
        j = list(cols).index("region")
        assert np.isnan(E[0, j]) and E[1, j] == 1.0


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest",
                                    "gradient_boosting"])
def test_api_categorical_features_bad_and_nan(family):
    """categorical_features naming a column X lacks: ValueError naming it; naming a
    numeric column with NaN: its values are categories and NaN a missing one (the fit
    works, a NaN row scores as a missing category)."""
    from propensity.learn.estimators import estimator_class
    X, y = _fit_data()
    df = pd.DataFrame(X[:, :5].astype(float), columns=list("abcde"))
    df["code"] = np.where(np.arange(len(df)) % 9 == 0, np.nan, np.arange(len(df)) % 5)
    cls = estimator_class(family)
    with pytest.raises(ValueError, match="categorical_features names the column 'nope'"):
        cls(categorical_features=["nope"]).fit(df, y)
    est = cls(categorical_features=["code"]).fit(df, y)
    assert np.isfinite(est.predict_proba(df)[:, 1]).all()
    # a missing category scores as a category fit never saw (the prior / the default branch)
    nan_rows, unseen = df.head(20).copy(), df.head(20).copy()
    nan_rows["code"], unseen["code"] = np.nan, 99.0
    np.testing.assert_array_equal(est.predict_proba(nan_rows), est.predict_proba(unseen))
