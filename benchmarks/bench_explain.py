"""Exact per-row explanations (SHAP values) side by side: propensity vs XGBoost and LightGBM.

    python benchmarks/bench_explain.py [--repeat 3] [--continuous-rows 200000]
                                       [--cli-rows 10000000] [--workdir /tmp/propensity_bench]
                                       [--deep-rows 200] [--deep-only] [--quick] [--no-save]

Every side explains the same rows with 100 trees of depth 6 (learning rate 0.1, L2 1, 255
bins; LightGBM num_leaves 63), trained on the same rows, 2 threads each, and is timed best
of ``--repeat`` runs (the same for every side):

- stand-in validation split: the stand-in sessions (455,401 rows, 23 binary columns + the
  10 interaction features = 33 uint8 columns), stratified 80/20 split (seed 42): the
  models are trained on the 80% and explain the 91,081 validation rows. Ours is
  ``GradientBoostingClassifier.shap_values`` (path-dependent TreeSHAP in C, each distinct
  row once), also timed without the distinct rows (every row explained: the kernel
  alone); XGBoost ``Booster.predict(DMatrix, pred_contribs=True)``; LightGBM
  ``Booster.predict(X, pred_contrib=True)``.
- continuous: make_classification 200,000 x 50 (20 informative, seed 0), trained on
  those rows and explaining them: distinct rows cannot help.
- ``python -m propensity.predict --explain 3`` on a ``--cli-rows`` testing-style CSV (the
  file and the gradient boosting model of bench_predict.py: make_input, and
  ``propensity.train --models gradient_boosting`` with its small grid), in a fresh
  process (run_isolated: imports included, peak RSS of the child), and the same command
  without ``--explain`` beside it.

- deep forest: random forests of 100 trees of depth 20 on the stand-in training split
  (ours: RandomForestClassifier, max_features sqrt; XGBoost: one round of 100 parallel
  trees, subsample 0.632, colsample_bynode 0.17, eta 1, no hessian floor; LightGBM:
  boosting rf, the same fractions, num_leaves 131072; their leaves a tree are printed,
  the trees' sizes differ at the same depth), each explaining the first ``--deep-rows`` distinct
  validation rows (exact TreeSHAP of such trees costs milliseconds to seconds a row, so
  not all 91k). Ours is also timed with the reference recursion (the kernel the linear
  walk replaced for deep trees).

Each side's additivity (largest |sum of a row's values - its raw score|) is printed and
saved beside its time. Results: benchmarks/results/explain.json (not with --no-save).
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import best_of, print_table, save_results, session_matrix, versions  # noqa: E402
from bench_predict import (SMALL_GRID, THREADS, count_rows, ensure_model,  # noqa: E402
                           make_input, timed)

ROUNDS, DEPTH, LR = 100, 6, 0.1


def fit_all(X, y):
    """The three models of one case, same configuration."""
    import lightgbm as lgb
    import xgboost as xgb

    import propensity as P

    ours = P.GradientBoostingClassifier(n_estimators=ROUNDS, max_depth=DEPTH, learning_rate=LR,
                                        reg_lambda=1.0, min_child_weight=1.0, random_state=0,
                                        n_jobs=THREADS).fit(X, y)
    xg = xgb.train({"objective": "binary:logistic", "max_depth": DEPTH, "eta": LR,
                    "lambda": 1.0, "min_child_weight": 1.0, "tree_method": "hist",
                    "max_bin": 256, "nthread": THREADS, "seed": 0},
                   xgb.DMatrix(X, label=y, nthread=THREADS), num_boost_round=ROUNDS)
    lg = lgb.train({"objective": "binary", "num_leaves": 63, "max_depth": DEPTH,
                    "learning_rate": LR, "lambda_l2": 1.0, "min_sum_hessian_in_leaf": 1.0,
                    "min_data_in_leaf": 1, "max_bin": 255, "num_threads": THREADS, "seed": 0,
                    "verbose": -1}, lgb.Dataset(X, label=y), num_boost_round=ROUNDS)
    return ours, xg, lg


DEEP_TREES, DEEP_DEPTH, DEEP_COLS = 100, 20, 0.17


def fit_deep(X, y):
    """Random forests of DEEP_TREES trees of depth DEEP_DEPTH, one per library."""
    import lightgbm as lgb
    import xgboost as xgb

    import propensity as P

    ours = P.RandomForestClassifier(n_estimators=DEEP_TREES, max_depth=DEEP_DEPTH,
                                    random_state=0, n_jobs=THREADS).fit(X, y)
    xg = xgb.train({"objective": "binary:logistic", "max_depth": DEEP_DEPTH, "eta": 1.0,
                    "num_parallel_tree": DEEP_TREES, "subsample": 0.632,
                    "colsample_bynode": DEEP_COLS, "lambda": 0.0, "min_child_weight": 0.0,
                    "tree_method": "hist", "max_bin": 256, "nthread": THREADS, "seed": 0},
                   xgb.DMatrix(X, label=y, nthread=THREADS), num_boost_round=1)
    lg = lgb.train({"objective": "binary", "boosting": "rf", "num_leaves": 131072,
                    "max_depth": DEEP_DEPTH, "bagging_fraction": 0.632, "bagging_freq": 1,
                    "feature_fraction_bynode": DEEP_COLS, "min_data_in_leaf": 1,
                    "min_sum_hessian_in_leaf": 0.0, "max_bin": 255, "num_threads": THREADS,
                    "seed": 0, "verbose": -1}, lgb.Dataset(X, label=y),
                   num_boost_round=DEEP_TREES)
    return ours, xg, lg


def explain_deep(X, models, repeat, rows):
    """The deep-forest case: ours (the linear walk, and the recursion), XGBoost, LightGBM."""
    import xgboost as xgb

    from propensity import _core

    ours, xg, lg = models
    n = X.shape[0]
    leaves = (int((ours._trees["left"] < 0).sum()),
              int((xg.trees_to_dataframe()["Feature"] == "Leaf").sum()),
              int(lg.trees_to_dataframe()["left_child"].isna().sum()))
    print("  deep forest, leaves a tree: ours %.0f, xgboost %.0f, lightgbm %.0f"
          % tuple(x / DEEP_TREES for x in leaves), flush=True)
    recursion = (lambda: _core.trees_shap(codes=ours._binned(X), trees=ours._tree_tuple(),
                                          average=True, base=0.0, n_threads=THREADS,
                                          kernel=1))
    sides = [
        ("propensity", lambda: ours.shap_values(X), lambda: ours.predict_proba(X)[:, 1]),
        ("propensity, the recursion (reference)", recursion,
         lambda: ours.predict_proba(X)[:, 1]),
        ("xgboost pred_contribs",
         lambda: xg.predict(xgb.DMatrix(X, nthread=THREADS), pred_contribs=True),
         lambda: xg.predict(xgb.DMatrix(X, nthread=THREADS), output_margin=True)),
        ("lightgbm pred_contrib", lambda: lg.predict(X, pred_contrib=True, num_threads=THREADS),
         lambda: lg.predict(X, raw_score=True, num_threads=THREADS)),
    ]
    time_sides(f"deep_forest_{DEEP_TREES}x{DEEP_DEPTH}", sides, n, repeat, rows)


def time_sides(case, sides, n, repeat, rows):
    """Time each (name, explain, raw score) side on the n rows, best of ``repeat``; its
    additivity; the first side's speedup over each other."""
    out = []
    for name, explain, raw in sides:
        secs, phi = best_of(explain, repeat)
        err = float(np.max(np.abs(np.asarray(phi).sum(axis=1) - raw())))
        out.append({"case": case, "library": name, "rows": n, "seconds": secs,
                    "rows_per_s": n / secs, "additivity_max_err": err})
        print(f"  {case:<28} {name:<42} {secs:8.3f} s  {n / secs / 1e3:10.3f} k rows/s  "
              f"additivity {err:.1e}", flush=True)
    for r in out[1:]:
        r["propensity_speedup"] = out[0]["rows_per_s"] / r["rows_per_s"]
    rows.extend(out)


def explain_case(case, X, models, repeat, rows):
    import xgboost as xgb

    ours, xg, lg = models
    n = X.shape[0]
    sides = [
        ("propensity", lambda: ours.shap_values(X), lambda: ours.decision_function(X)),
        ("propensity, every row (no distinct rows)",
         lambda: ours._shap_from_codes(ours._binned(X), distinct=False),
         lambda: ours.decision_function(X)),
        ("xgboost pred_contribs",
         lambda: xg.predict(xgb.DMatrix(X, nthread=THREADS), pred_contribs=True),
         lambda: xg.predict(xgb.DMatrix(X, nthread=THREADS), output_margin=True)),
        ("lightgbm pred_contrib", lambda: lg.predict(X, pred_contrib=True, num_threads=THREADS),
         lambda: lg.predict(X, raw_score=True, num_threads=THREADS)),
    ]
    time_sides(case, sides, n, repeat, rows)


def run_cli(input_path, output_path, model_dir, explain):
    """``python -m propensity.predict`` (its main()), with ``--explain K`` when K > 0."""
    from propensity import predict

    argv = ["--input_file", input_path, "--output_file", output_path, "--model_dir", model_dir,
            "--quiet"] + (["--explain", str(explain)] if explain else [])
    rc = predict.main(argv)
    if rc != 0:
        raise RuntimeError(f"propensity.predict exited with {rc}")
    return {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per side, best time kept (same for every side)")
    ap.add_argument("--continuous-rows", type=int, default=200_000)
    ap.add_argument("--cli-rows", type=int, default=10_000_000,
                    help="rows of the CSV for --explain 3 (0: skip that case)")
    ap.add_argument("--workdir", default="/tmp/propensity_bench")
    ap.add_argument("--deep-rows", type=int, default=200,
                    help="distinct validation rows the deep forests explain (0: skip)")
    ap.add_argument("--deep-only", action="store_true",
                    help="only the deep-forest case")
    ap.add_argument("--quick", action="store_true",
                    help="100k stand-in rows, 50k continuous rows, 1M CLI rows, 1 repeat")
    ap.add_argument("--no-save", action="store_true",
                    help="print only; do not write benchmarks/results/explain.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.continuous_rows, args.cli_rows = 1, 50_000, min(args.cli_rows, 1_000_000)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    rows = []
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", flush=True)

    # ---- the stand-in validation split ----
    X, y, _ = session_matrix(100_000 if args.quick else 455_401, seed=0)
    Xtr, Xva, ytr, _ = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    Xva = np.ascontiguousarray(Xva)
    print(f"stand-in: {Xva.shape[0]} validation rows x {Xva.shape[1]} features, "
          f"{len(np.unique(Xva, axis=0))} distinct", flush=True)
    if not args.deep_only:
        explain_case("standin_validation", Xva, fit_all(Xtr, ytr), args.repeat, rows)

    # ---- deep forests ----
    if args.deep_rows:
        Xd = np.ascontiguousarray(np.unique(Xva, axis=0)[:args.deep_rows])
        explain_deep(Xd, fit_deep(Xtr, ytr), args.repeat, rows)

    # ---- continuous rows ----
    if not args.deep_only:
        Xc, yc = make_classification(n_samples=args.continuous_rows, n_features=50,
                                     n_informative=20, random_state=0)
        Xc = np.ascontiguousarray(Xc, dtype=np.float64)
        explain_case(f"continuous_{args.continuous_rows}x50", Xc, fit_all(Xc, yc), args.repeat,
                     rows)

    # ---- the CLI on a large CSV ----
    if args.cli_rows and not args.deep_only:
        wd = args.workdir
        os.makedirs(wd, exist_ok=True)
        grid = os.path.join(wd, "small.toml")
        with open(grid, "w") as f:
            f.write(SMALL_GRID)
        gb_dir = os.path.join(wd, "ml_outputs_gb_small")
        ensure_model(gb_dir, ["--models", "gradient_boosting", "--grid", grid])
        path = os.path.join(wd, f"sessions_{args.cli_rows}.csv")
        print(f"input {path} ...", flush=True)
        make_input(path, args.cli_rows)
        out = os.path.join(wd, "explained.csv")
        for k in (3, 0):
            _, secs, peak = timed(args.repeat, run_cli, path, out, gb_dir, k)
            n = count_rows(out)
            if n != args.cli_rows:
                raise RuntimeError(f"the output has {n} rows, the input {args.cli_rows}")
            label = f"propensity.predict --explain {k}" if k else "propensity.predict"
            rows.append({"case": f"cli_{args.cli_rows}_rows", "library": label,
                         "rows": args.cli_rows, "seconds": secs,
                         "rows_per_s": args.cli_rows / secs, "peak_rss_mb": peak})
            print(f"  {label:<36} {secs:8.2f} s  {args.cli_rows / secs / 1e6:6.2f} M rows/s  "
                  f"peak RSS {peak:.0f} MB", flush=True)
            os.unlink(out)

    print()
    print_table(rows, ["case", "library", "rows", "seconds", "rows_per_s", "propensity_speedup",
                       "additivity_max_err", "peak_rss_mb"])
    load_end = os.getloadavg()
    print(f"load average at end: {load_end}")
    if not args.no_save:
        path = save_results("explain", {
            "config": {"trees": ROUNDS, "max_depth": DEPTH, "learning_rate": LR,
                       "threads": THREADS, "repeat": args.repeat, "quick": args.quick,
                       "deep_forest": {"trees": DEEP_TREES, "max_depth": DEEP_DEPTH,
                                       "rows": args.deep_rows}},
            "load_average": {"start": load_start, "end": load_end},
            "versions": versions("numpy", "xgboost", "lightgbm", "propensity"),
            "rows": rows})
        print(f"saved {path}")


if __name__ == "__main__":
    main()
