"""Tree ensembles side by side: propensity vs scikit-learn, XGBoost and LightGBM.

Data: the stand-in session data (455,401 rows, 23 binary features) plus the 10
interaction features of the pipeline (33 columns), stratified 80/20 split; and a
continuous make_classification case that row compression cannot help. Two threads
for every library; every time has the test ROC-AUC beside it.

    python benchmarks/bench_trees.py                    # full run (shared machine: run once)
    python benchmarks/bench_trees.py --quick            # smaller sizes while developing
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (best_of, peak_rss_mb, print_table, save_results,  # noqa: E402
                     session_matrix, versions)

THREADS = 2

def make_big(n_rows, path):
    """Child-process body of --memory-rows: write n_rows stand-in rows (33 uint8 columns,
    then the target) to ``path`` (.npy), built 1M rows at a time."""
    out = None
    for s in range(0, n_rows, 1_000_000):
        part, part_y, _ = session_matrix(min(1_000_000, n_rows - s), seed=100 + s // 1_000_000)
        if out is None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                            shape=(n_rows, part.shape[1] + 1))
        out[s:s + part.shape[0], :-1] = part
        out[s:s + part.shape[0], -1] = part_y
    out.flush()


def train_big(path, kind):
    """Child-process body of --memory-rows: load the rows written by make_big and fit;
    the process's peak RSS is then imports + data + training. Returns (data MB, RSS MB
    before the fit, fit seconds)."""
    import propensity as P

    data = np.load(path)
    X, y = np.ascontiguousarray(data[:, :-1]), data[:, -1].copy()
    del data
    before = peak_rss_mb()
    est = (P.RandomForestClassifier(n_estimators=100, class_weight="balanced", random_state=0,
                                    n_jobs=THREADS) if kind == "rf" else
           P.GradientBoostingClassifier(n_estimators=100, max_depth=6, random_state=0,
                                        n_jobs=THREADS))
    t0 = time.perf_counter()
    est.fit(X, y)
    return X.nbytes / 2**20, before, time.perf_counter() - t0


def auc(y, p):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _cpu_seconds():
    """User + system CPU time of this process (all threads)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_fit(label, make, Xtr, ytr, Xte, yte, repeat, rows, extra=None):
    """Best wall time of `repeat` fits, with the CPU time of that fit beside it (CPU time
    shows the work done; wall time on the shared 2-core machine also shows waiting)."""
    secs, cpu, model = float("inf"), None, None
    for _ in range(repeat):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        m = make().fit(Xtr, ytr)
        t, c = time.perf_counter() - t0, _cpu_seconds() - c0
        if t < secs:
            secs, cpu, model = t, c, m
    a = auc(yte, model.predict_proba(Xte)[:, 1])
    rows.append({"case": label[0], "library": label[1], "fit_s": secs, "fit_cpu_s": cpu,
                 "auc": a, **(extra or {})})
    print(f"  {label[0]:<28} {label[1]:<22} fit {secs:8.3f} s (CPU {cpu:8.3f} s)   "
          f"AUC {a:.5f}", flush=True)
    return model


def ratios(rows, case, ours="propensity"):
    base = next(r for r in rows if r["case"] == case and r["library"] == ours)
    for r in rows:
        if r["case"] == case and r is not base:
            r["speedup_vs_this"] = r["fit_s"] / base["fit_s"]
            if r.get("fit_cpu_s") and base.get("fit_cpu_s"):
                r["cpu_ratio_vs_this"] = r["fit_cpu_s"] / base["fit_cpu_s"]
            r["auc_gap"] = base["auc"] - r["auc"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, skips sklearn RF")
    ap.add_argument("--continuous-rows", type=int, default=None)
    ap.add_argument("--score-rows", type=int, default=1_000_000)
    ap.add_argument("--memory-rows", type=int, default=0,
                    help="also measure peak RSS of training on this many stand-in rows "
                         "(e.g. 10000000), in a fresh process")
    args = ap.parse_args(argv)

    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier as SkRF
    from sklearn.model_selection import train_test_split

    import propensity as P

    n_sessions = 100_000 if args.quick else 455_401
    n_cont = args.continuous_rows or (100_000 if args.quick else 1_000_000)
    rows = []
    print(f"load average at start: {os.getloadavg()}")

    X, y, names = session_matrix(n_sessions, seed=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    print(f"sessions: {X.shape[0]} rows x {X.shape[1]} features, "
          f"{len(np.unique(X, axis=0))} distinct rows, {y.mean():.4f} positive")

    # ---- random forest: 100 trees, unlimited depth, balanced ----
    case = "rf_100_balanced"
    sqrt_frac = max(1, int(np.sqrt(X.shape[1]))) / X.shape[1]
    ours_rf = run_fit((case, "propensity"), lambda: P.RandomForestClassifier(
        n_estimators=100, class_weight="balanced", random_state=0, n_jobs=THREADS),
        Xtr, ytr, Xte, yte, 3, rows)
    if not args.quick:
        run_fit((case, "sklearn"), lambda: SkRF(
            n_estimators=100, class_weight="balanced", random_state=0, n_jobs=THREADS),
            Xtr, ytr, Xte, yte, 1, rows)
    run_fit((case, "lightgbm rf"), lambda: lgb.LGBMClassifier(
        boosting_type="rf", n_estimators=100, num_leaves=4096, max_depth=-1,
        min_child_samples=1, min_child_weight=1e-3, bagging_freq=1, bagging_fraction=0.632,
        feature_fraction_bynode=sqrt_frac, class_weight="balanced", n_jobs=THREADS,
        random_state=0, verbose=-1), Xtr, ytr, Xte, yte, 1, rows)
    ratios(rows, case)

    # ---- gradient boosting: 100 rounds, depth 6, lr 0.1 ----
    case = "gbdt_100_d6"
    run_fit((case, "propensity"), lambda: P.GradientBoostingClassifier(
        n_estimators=100, max_depth=6, learning_rate=0.1, random_state=0, n_jobs=THREADS),
        Xtr, ytr, Xte, yte, 3, rows)
    run_fit((case, "xgboost hist"), lambda: xgb.XGBClassifier(
        n_estimators=100, max_depth=6, learning_rate=0.1, tree_method="hist",
        n_jobs=THREADS, random_state=0), Xtr, ytr, Xte, yte, 1, rows)
    run_fit((case, "lightgbm"), lambda: lgb.LGBMClassifier(
        n_estimators=100, max_depth=6, num_leaves=63, learning_rate=0.1, min_child_samples=1,
        min_child_weight=1.0, reg_lambda=1.0, n_jobs=THREADS, random_state=0, verbose=-1),
        Xtr, ytr, Xte, yte, 1, rows)
    ratios(rows, case)

    # ---- scoring the forest ----
    Xs, ys, _ = session_matrix(args.score_rows, seed=1)
    secs, proba = best_of(lambda: ours_rf.predict_proba(Xs), repeat=3)
    score_row = {"case": "rf_predict_proba", "library": "propensity", "rows": Xs.shape[0],
                 "predict_s": secs, "rows_per_s": Xs.shape[0] / secs, "auc": auc(ys, proba[:, 1])}
    rows.append(score_row)
    print(f"  rf predict_proba on {Xs.shape[0]} rows: {secs:.4f} s = "
          f"{score_row['rows_per_s'] / 1e6:.1f} M rows/s  AUC {score_row['auc']:.5f}", flush=True)

    # ---- continuous features: compression cannot help ----
    case = f"gbdt_continuous_{n_cont}x50"
    Xc, yc = make_classification(n_samples=n_cont, n_features=50, n_informative=20,
                                 random_state=0)
    Xc = Xc.astype(np.float64)
    Ctr, Cte, ctr, cte = train_test_split(Xc, yc, test_size=0.2, stratify=yc, random_state=42)
    run_fit((case, "propensity"), lambda: P.GradientBoostingClassifier(
        n_estimators=100, max_depth=6, learning_rate=0.1, random_state=0, n_jobs=THREADS),
        Ctr, ctr, Cte, cte, 3, rows)
    run_fit((case, "lightgbm"), lambda: lgb.LGBMClassifier(
        n_estimators=100, max_depth=6, num_leaves=63, learning_rate=0.1, min_child_samples=1,
        min_child_weight=1.0, reg_lambda=1.0, n_jobs=THREADS, random_state=0, verbose=-1),
        Ctr, ctr, Cte, cte, 3, rows)
    ratios(rows, case)

    if args.memory_rows:
        from _common import run_isolated

        import tempfile

        tmp = tempfile.mkdtemp()
        big = os.path.join(tmp, "sessions.npy")
        run_isolated(make_big, args.memory_rows, big)
        for kind in ("rf", "gbdt"):
            (data_mb, before, secs), _, peak = run_isolated(train_big, big, kind)
            rows.append({"case": f"memory_{kind}_{args.memory_rows}_rows", "library": "propensity",
                         "fit_s": secs, "data_mb": data_mb, "peak_rss_before_fit_mb": before,
                         "peak_rss_mb": peak})
            print(f"  {kind} on {args.memory_rows} rows: data {data_mb:.0f} MB, fit {secs:.2f} s, "
                  f"peak RSS {peak:.0f} MB (before the fit {before:.0f} MB)", flush=True)
        os.unlink(big)
        os.rmdir(tmp)

    print()
    print_table(rows, ["case", "library", "fit_s", "fit_cpu_s", "speedup_vs_this",
                       "cpu_ratio_vs_this", "auc", "auc_gap",
                       "rows_per_s", "peak_rss_mb"])
    path = save_results("trees", {
        "load_average_at_end": os.getloadavg(),
        "note": "peers timed once, propensity best of 3, except the continuous case: "
                "best of 3 for both sides",
        "command": "python benchmarks/bench_trees.py" + (" --quick" if args.quick else ""),
        "threads": THREADS, "n_sessions": n_sessions, "n_continuous": n_cont,
        "versions": versions("numpy", "sklearn", "xgboost", "lightgbm"), "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"total {time.time() - t0:.0f} s")
