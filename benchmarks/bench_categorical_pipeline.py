"""The whole training run on a file with a high-cardinality text column (issue 19).

The file: ``make_categorical_sessions.py`` (30,000 rows by default: the 23 session columns
and one text column ``campaign`` of 1,000 values, Zipf-like frequencies, each with its own
effect on the target). ``python -m propensity.train`` runs on it once per
``--categorical`` mode, in a fresh process with the default grids, 3 folds and every
core; the wall time of the command (start-up included) is measured, best of
``--repeat`` runs (all of them kept in the results), and a mode still running after
``--timeout`` seconds is stopped and reported as such (not repeated). ROC-AUC on the
run's validation split (from model_evaluation_results.json) for each model.

    python benchmarks/bench_categorical_pipeline.py [--rows 30000] [--values 1000]
        [--modes auto,onehot] [--timeout 300] [--repeat 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import print_table, save_results, versions  # noqa: E402
from make_categorical_sessions import make  # noqa: E402

FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")


def run_mode(train_file, out, mode, timeout):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "propensity.train", "--train-file", train_file,
           "--output-dir", out, "--categorical", mode, "--quiet"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "status": f"still running after {timeout} s (stopped)",
                "seconds": None}
    secs = time.perf_counter() - t0
    row = {"mode": mode, "status": "ok" if proc.returncode == 0 else
           f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", "seconds": secs}
    if proc.returncode == 0:
        with open(os.path.join(out, "model_evaluation_results.json")) as f:
            ev = json.load(f)
        for fam in FAMILIES:
            row[f"auc_{fam}"] = ev[fam]["roc_auc"]
            row[f"fit_s_{fam}"] = ev[fam]["seconds"]
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=30_000)
    ap.add_argument("--values", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="auto,onehot")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.csv")
        make(a.rows, a.values, a.seed).to_csv(train, index=False)
        for mode in a.modes.split(","):
            runs = []
            for _ in range(max(1, a.repeat)):
                runs.append(run_mode(train, os.path.join(tmp, f"out_{mode}"), mode, a.timeout))
                if runs[-1]["seconds"] is None:
                    break
            timed = [r for r in runs if r["seconds"] is not None]
            row = dict(min(timed, key=lambda r: r["seconds"]) if timed else runs[-1])
            row["all_seconds"] = [r["seconds"] for r in runs]
            rows.append(row)
            print_table(rows[-1:], list(rows[-1]))
    payload = {"rows": a.rows, "values": a.values, "seed": a.seed, "timeout": a.timeout,
               "repeat": a.repeat, "load_average_at_end": os.getloadavg(),
               "cpu_count": os.cpu_count(), "results": rows,
               "versions": versions("numpy", "pandas")}
    print("saved", save_results("categorical_pipeline", payload))


if __name__ == "__main__":
    main()
