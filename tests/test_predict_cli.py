"""python -m propensity.predict: arguments, stdin/stdout, exit codes and messages for each
kind of failure, and no partial output file."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import FEATURES, package_env, session_rows, write_sessions_csv
from propensity.predict import main


@pytest.fixture
def data(tmp_path):
    X = session_rows(300, seed=11)
    return write_sessions_csv(tmp_path / "in.csv", X, ids=[f"{i:05d}" for i in range(300)])


def test_scores_a_file(model_dir, data, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    rc = main(["--input_file", str(data), "--output_file", str(out), "--model_dir", model_dir,
               "--segments", "--threshold", "0.3", "--chunksize", "50", "--quiet"])
    assert rc == 0
    df = pd.read_csv(out, dtype={"UserID": str})
    assert list(df.columns) == ["UserID", "predicted_ordered", "purchase_probability",
                                "prediction_timestamp", "segment"]
    assert df["UserID"].tolist() == [f"{i:05d}" for i in range(300)]
    assert ((df["purchase_probability"] >= 0.3).astype(int) == df["predicted_ordered"]).all()
    assert capsys.readouterr().err == ""               # --quiet: no progress, no info


def test_segment_edges(model_dir, data, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    rc = main(["--input_file", str(data), "--output_file", str(out), "--model_dir", model_dir,
               "--segment-edges", "0.2,0.6", "--quiet"])
    assert rc == 0
    df = pd.read_csv(out, dtype={"UserID": str})
    p = df["purchase_probability"].to_numpy()
    want = np.where(p > 0.6, "High", np.where(p >= 0.2, "Medium", "Low"))
    assert df["segment"].tolist() == want.tolist()
    for bad, says in (("0.6,0.2", "0 <= low <= high <= 1"), ("0.1", "two numbers"),
                      ("a,b", "two numbers"), ("0.1,1.2", "0 <= low <= high <= 1")):
        with pytest.raises(SystemExit) as e:
            main(["--input_file", str(data), "--output_file", str(tmp_path / "x.csv"),
                  "--model_dir", model_dir, "--segment-edges", bad])
        assert e.value.code == 2
        assert says in capsys.readouterr().err
        assert not (tmp_path / "x.csv").exists()


def test_named_model_and_drift_report(model_dir, data, tmp_path):
    name = json.load(open(os.path.join(model_dir, "manifest.json")))["best_model"]
    rc = main(["--input_file", str(data), "--output_file", str(tmp_path / "p.csv"),
               "--model_dir", model_dir, "--model", name, "--drift-report",
               str(tmp_path / "drift.json"), "--quiet"])
    assert rc == 0
    assert set(json.load(open(tmp_path / "drift.json"))["features"]) == set(FEATURES)


def test_stdin_to_stdout(model_dir, data, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "propensity.predict", "--input_file", "-", "--output_file", "-",
         "--model_dir", model_dir, "--quiet"],
        input=open(data, "rb").read(), capture_output=True, check=False,
        cwd=tmp_path, env=package_env())
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "UserID,predicted_ordered,purchase_probability,prediction_timestamp"
    assert len(lines) == 301 and lines[1].startswith("00000,")


def _run(args, capsys):
    rc = main(args + ["--quiet"])
    return rc, capsys.readouterr().err


def test_model_problems_exit_codes(model_dir, data, tmp_path, capsys):
    out = tmp_path / "o.csv"
    base = ["--input_file", str(data), "--output_file", str(out)]
    rc, err = _run(base + ["--model_dir", str(tmp_path / "none")], capsys)
    assert rc == 3 and "does not exist" in err
    empty = tmp_path / "empty_models"
    empty.mkdir()
    rc, err = _run(base + ["--model_dir", str(empty)], capsys)
    assert rc == 3 and "manifest.json not found" in err
    bad = tmp_path / "bad_models"
    shutil.copytree(model_dir, bad)
    man = json.load(open(bad / "manifest.json"))
    model_file = bad / man["models"][man["best_model"]]["model_file"]
    model_file.write_bytes(model_file.read_bytes() + b"x")
    rc, err = _run(base + ["--model_dir", str(bad)], capsys)
    assert rc == 4 and "checksum mismatch" in err
    model_file.unlink()
    rc, err = _run(base + ["--model_dir", str(bad)], capsys)
    assert rc == 3 and "missing" in err
    assert not out.exists()


@pytest.mark.parametrize("content, match", [
    ("a;b\n1;2\n", "no known feature column"),
    ("UserID;" + ";".join(FEATURES) + "\n", "delimiter"),
    ("UserID,sort_by\nu1,1\nu2", "truncated last line"),
    ("UserID,sort_by\nu1,1\nu2,4\n", "line 3 (data row 2), column 'sort_by': value '4'"),
])
def test_input_problems_exit_codes(model_dir, tmp_path, capsys, content, match):
    src = tmp_path / "in.csv"
    src.write_text(content)
    out = tmp_path / "o.csv"
    rc, err = _run(["--input_file", str(src), "--output_file", str(out), "--model_dir",
                    model_dir], capsys)
    assert rc == 5 and match in err
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]


def test_encoding_missing_input_and_usage(model_dir, tmp_path, capsys):
    src = tmp_path / "u16.csv"
    src.write_bytes(("UserID,sort_by\nu1,1\n").encode("utf-16"))
    rc, err = _run(["--input_file", str(src), "--output_file", str(tmp_path / "o.csv"),
                    "--model_dir", model_dir], capsys)
    assert rc == 5 and "UTF-16" in err
    rc, err = _run(["--input_file", str(tmp_path / "nope.csv"), "--output_file",
                    str(tmp_path / "o.csv"), "--model_dir", model_dir], capsys)
    assert rc == 5 and "not found" in err
    with pytest.raises(SystemExit) as exc:
        main(["--input_file", "x"])
    assert exc.value.code == 2


def test_coerce_and_fill_missing_flags(model_dir, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("UserID,sort_by,sign_in\nu1,4,\nu2,1,0\n")
    out = tmp_path / "o.csv"
    rc, err = _run(["--input_file", str(src), "--output_file", str(out), "--model_dir",
                    model_dir, "--coerce", "--fill-missing", "0"], capsys)
    assert rc == 0 and "1 value(s)" in err and "filled with 0" in err
    assert len(pd.read_csv(out)) == 2


def _snapshot(paths):
    return {str(p): (os.stat(p).st_ino, open(p, "rb").read()) for p in paths}


def test_an_output_that_is_an_input_or_another_output_is_refused(model_dir, data, tmp_path,
                                                                  capsys):
    """Exit 2 naming both, and every input byte for byte and inode for inode as it was."""
    manifest = os.path.join(model_dir, "manifest.json")
    link = tmp_path / "link_to_input.csv"
    os.symlink(data, link)
    before = _snapshot([data, manifest])
    cases = [
        (["--output_file", str(data)], "--input_file"),
        (["--output_file", str(link)], "--input_file"),
        (["--output_file", manifest], "the model file"),
        (["--output_file", str(tmp_path / "p.csv"), "--drift-report", str(tmp_path / "p.csv")],
         "--output_file"),
        (["--output_file", str(tmp_path / "p.csv"), "--drift-report", str(data)], "--input_file"),
    ]
    for extra, other in cases:
        rc, err = _run(["--input_file", str(data), "--model_dir", model_dir] + extra, capsys)
        assert rc == 2, (extra, err)
        first = err.splitlines()[0]
        assert first.startswith("error: ") and "is the same file as" in first and other in first
    assert _snapshot([data, manifest]) == before
    assert os.path.islink(link)
    assert not (tmp_path / "p.csv").exists()
