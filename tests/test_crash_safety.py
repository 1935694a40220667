"""Crash safety: a training run and a prediction run killed with SIGKILL midway leave the
previous outputs intact and readable (the manifest's checksums still match)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import propensity
from conftest import SMALL_GRID, session_rows, write_sessions_csv
from propensity import load_model
from propensity.datasets import make_sessions

pytestmark = pytest.mark.slow


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_folder(folder):
    """Every file the manifest lists is there with its checksum, and the models load."""
    with open(os.path.join(folder, "manifest.json")) as f:
        man = json.load(f)
    for name, digest in man["files"].items():
        assert _sha(os.path.join(folder, name)) == digest, name
    for entry in man["models"].values():
        model = load_model(os.path.join(folder, entry["model_file"]))
        p = model.predict_proba(session_rows(10))
        assert p.shape == (10, 2)
    return man


def _snapshot(folder):
    return {n: _sha(os.path.join(folder, n)) for n in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, n))}


def _kill_when(proc, ready, timeout=120):
    """SIGKILL ``proc`` as soon as ``ready()`` holds (the run is midway); True if it was."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return False
        if ready():
            time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    return False


def _env():
    env = dict(os.environ)  # the child imports the same propensity as this process
    root = os.path.dirname(os.path.dirname(os.path.abspath(propensity.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start_training(model_dir, tmp_path, stderr):
    """A training run of 60,000 rows in a child process over a copy of ``model_dir``:
    ``(process, output folder, its snapshot before the run)``."""
    import shutil
    out = tmp_path / "ml_outputs"
    shutil.copytree(model_dir, out)
    before = _snapshot(out)
    make_sessions(60_000, seed=5).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "grid.toml").write_text(SMALL_GRID)
    proc = subprocess.Popen(
        [sys.executable, "-m", "propensity.train", "--train-file", str(tmp_path / "train.csv"),
         "--output-dir", str(out), "--grid", str(tmp_path / "grid.toml"), "--quiet"],
        cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    return proc, out, before


def test_train_killed_midway_keeps_previous_outputs(model_dir, tmp_path):
    proc, out, before = _start_training(model_dir, tmp_path, subprocess.DEVNULL)
    man_before = _check_folder(out)

    def midway():  # the temporary folder exists and has started to fill
        tmps = [d for d in os.listdir(tmp_path) if d.startswith(".ml_outputs.tmp-")]
        return bool(tmps)

    killed = _kill_when(proc, midway)
    assert killed, "the training run finished before it could be killed"
    assert _snapshot(out) == before
    assert _check_folder(out) == man_before
    # a new run after the crash still succeeds and replaces the folder
    from propensity import train
    code = train.main(["--train-file", str(tmp_path / "train.csv"), "--output-dir", str(out),
                       "--grid", str(tmp_path / "grid.toml"), "--models", "logistic_regression",
                       "--quiet"])
    assert code == 0
    _check_folder(out)


def test_predict_killed_midway_keeps_previous_output(model_dir, tmp_path):
    n = 400_000
    X = session_rows(n, seed=3)
    inp = write_sessions_csv(tmp_path / "big.csv", X, ids=[f"id{i}" for i in range(n)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "predictions.csv"
    out.write_text("UserID,predicted,probability,timestamp\nprevious,1,0.5,then\n")
    before = out.read_bytes()
    models_before = _snapshot(model_dir)

    # the input comes through a pipe of which only the first half is written before the
    # kill, so the run is midway however fast it scores
    data = open(inp, "rb").read()
    proc = subprocess.Popen(
        [sys.executable, "-m", "propensity.predict", "--input_file", "-", "--output_file",
         str(out), "--model_dir", model_dir, "--chunksize", "5000", "--quiet"],
        cwd=tmp_path, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    proc.stdin.write(data[:len(data) // 2])
    proc.stdin.flush()

    def midway():  # the temporary output has rows in it
        tmps = [f for f in os.listdir(out_dir) if f != "predictions.csv"]
        return any(os.path.getsize(out_dir / f) > 0 for f in tmps if (out_dir / f).exists())

    killed = _kill_when(proc, midway)
    proc.stdin.close()
    assert killed, "the prediction run finished before it could be killed"
    assert out.read_bytes() == before
    assert _snapshot(model_dir) == models_before
    _check_folder(model_dir)
    # the next run overwrites the output completely
    from propensity import predict
    assert predict.main(["--input_file", str(inp), "--output_file", str(out), "--model_dir",
                         model_dir, "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == n + 1 and lines[1].startswith("id0,")
    leftovers = [f for f in os.listdir(out_dir) if f != "predictions.csv"]
    # the killed run's temporary file may remain (hidden, never the output itself)
    assert all(f.startswith(".predictions.csv.") for f in leftovers), leftovers


def _signal_when(proc, sig, ready, timeout=120):
    """Send ``sig`` to ``proc`` once ``ready()`` holds; True if it was sent midway."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return False
        if ready():
            proc.send_signal(sig)
            return True
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    return False


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_signalled_midway_cleans_up(model_dir, tmp_path, sig, code):
    """SIGINT / SIGTERM during training: the conventional exit code, one line saying so,
    the run's temporary folder removed, the previous outputs byte for byte as they were."""
    proc, out, before = _start_training(model_dir, tmp_path, subprocess.PIPE)

    def midway():
        return any(d.startswith(".ml_outputs.tmp-") for d in os.listdir(tmp_path))

    sent = _signal_when(proc, sig, midway)
    _, err = proc.communicate(timeout=300)
    assert sent, "the training run finished before the signal"
    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert proc.returncode == code, err
    assert err.splitlines()[-1] == (f"propensity-train: interrupted by {name}; the output "
                                    f"folder was left unchanged and the run's temporary files "
                                    f"removed"), err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["grid.toml", "ml_outputs", "train.csv"]
    assert _snapshot(out) == before
    _check_folder(out)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_predict_signalled_midway_cleans_up(model_dir, tmp_path, sig, code):
    """SIGINT / SIGTERM while scoring (the input half sent through a pipe, so the run is
    midway however fast it scores): exit 130 / 143, one line, no .part file left, the
    previous predictions unchanged."""
    n = 200_000
    inp = write_sessions_csv(tmp_path / "big.csv", session_rows(n, seed=3),
                             ids=[f"id{i}" for i in range(n)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "predictions.csv"
    out.write_text("UserID,predicted,probability,timestamp\nprevious,1,0.5,then\n")
    before = out.read_bytes()
    data = open(inp, "rb").read()
    proc = subprocess.Popen(
        [sys.executable, "-m", "propensity.predict", "--input_file", "-", "--output_file",
         str(out), "--model_dir", model_dir, "--chunksize", "5000", "--quiet"],
        cwd=tmp_path, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    proc.stdin.write(data[:len(data) // 2].decode())
    proc.stdin.flush()

    def midway():  # the temporary output exists and has rows in it
        parts = [out_dir / f for f in os.listdir(out_dir) if f.endswith(".part")]
        return any(p.exists() and p.stat().st_size > 0 for p in parts)

    sent = _signal_when(proc, sig, midway)
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert sent, "the prediction run finished before the signal"
    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert proc.returncode == code, err
    assert err.splitlines() == [f"error: interrupted by {name}; no output written (a previous "
                                f"output file is unchanged)"], err
    assert os.listdir(out_dir) == ["predictions.csv"] and out.read_bytes() == before
