"""The whole training run (python -m propensity.train on the embedded 455,401 rows) vs the
old pipeline's equivalent: GridSearchCV (3 folds, F1, n_jobs=2) over scikit-learn
LogisticRegression (saga, elastic net, balanced), RandomForestClassifier (balanced) and
XGBoost (scale_pos_weight = neg/pos) with the same grids, on the same split and features,
then refit, validation metrics at 0.5 (the old rule).

    python benchmarks/bench_train.py                       # old pipeline on all rows (slow)
    python benchmarks/bench_train.py --old-subsample 0.1   # old pipeline on 10 % of the
                                                           # training split (its time is then
                                                           # NOT comparable; said in the output)
Each side runs once in a fresh process (peak RSS measured there), 2 threads each.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, run_isolated, save_results, versions  # noqa: E402


def ours(n_jobs):
    from propensity.training.pipeline import run_training
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_training(output_dir=os.path.join(d, "ml_outputs"), n_jobs=n_jobs)
        secs = time.perf_counter() - t0
    return {"seconds": secs, "best_model": res.best_model, "timings": res.timings,
            "metrics": {k: {m: v[m] for m in ("f1", "precision", "recall", "roc_auc", "threshold")}
                        for k, v in res.metrics.items()}}


def old(n_jobs, subsample):
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from xgboost import XGBClassifier

    from propensity.datasets import make_sessions
    from propensity.learn.features import SESSION_FEATURES, InteractionFeatureTransformer
    from propensity.learn.model_selection import stratified_split

    t0 = time.perf_counter()
    df = make_sessions(455401, seed=0)
    X = InteractionFeatureTransformer().fit_transform(df[SESSION_FEATURES]).astype(np.float64)
    y = df["ordered"].to_numpy()
    tr, va = stratified_split(y, 0.2, 42)
    if subsample < 1:
        keep, _ = stratified_split(y[tr], 1 - subsample, 0)
        tr = tr[keep]
    neg, pos = np.sum(y[tr] == 0), np.sum(y[tr] == 1)
    cv = StratifiedKFold(3, shuffle=True, random_state=42)
    specs = {
        "logistic_regression": (LogisticRegression(solver="saga", class_weight="balanced",
                                                   max_iter=1000),
                                {"C": [0.1, 1, 10], "l1_ratio": [0.1, 0.5, 0.9]}),
        "random_forest": (RandomForestClassifier(class_weight="balanced", random_state=42),
                          {"n_estimators": [100, 200], "max_depth": [10, 20, None],
                           "min_samples_split": [2, 5]}),
        "gradient_boosting": (XGBClassifier(scale_pos_weight=neg / pos, random_state=42,
                                            tree_method="hist", n_jobs=1),
                              {"n_estimators": [100, 200], "max_depth": [6, 10],
                               "learning_rate": [0.1, 0.01]}),
    }
    out = {}
    for name, (est, grid) in specs.items():
        t1 = time.perf_counter()
        gs = GridSearchCV(est, grid, scoring="f1", cv=cv, n_jobs=n_jobs).fit(X[tr], y[tr])
        p = gs.best_estimator_.predict_proba(X[va])[:, 1]
        pred = (p >= 0.5).astype(int)
        out[name] = {"f1": f1_score(y[va], pred), "precision": precision_score(y[va], pred),
                     "recall": recall_score(y[va], pred), "roc_auc": roc_auc_score(y[va], p),
                     "threshold": 0.5, "seconds": time.perf_counter() - t1,
                     "best_params": {k: v for k, v in gs.best_params_.items()}}
    return {"seconds": time.perf_counter() - t0, "metrics": out, "n_train": int(len(tr))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-subsample", type=float, default=1.0,
                    help="fraction of the training split the old pipeline gets (default 1)")
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()
    mine, mine_secs, mine_mb = run_isolated(ours, args.n_jobs)
    payload = {"ours": {**mine, "process_seconds": mine_secs, "peak_rss_mb": mine_mb},
               "versions": versions("numpy", "sklearn", "xgboost"), "n_jobs": args.n_jobs}
    rows = [{"side": "propensity", "model": k, **v} for k, v in mine["metrics"].items()]
    if not args.skip_old:
        theirs, th_secs, th_mb = run_isolated(old, args.n_jobs, args.old_subsample)
        payload["old"] = {**theirs, "process_seconds": th_secs, "peak_rss_mb": th_mb,
                          "subsample": args.old_subsample}
        rows += [{"side": f"old ({args.old_subsample:g} of train)", "model": k,
                  **{m: v[m] for m in ("f1", "precision", "recall", "roc_auc", "threshold")}}
                 for k, v in theirs["metrics"].items()]
        if args.old_subsample == 1.0:
            payload["speedup"] = theirs["seconds"] / mine["seconds"]
        else:
            payload["note"] = ("old pipeline ran on a subsample of the training split: its "
                               "time is a lower bound, the speed-up is not measured")
    print_table(rows, ["side", "model", "f1", "precision", "recall", "roc_auc", "threshold"])
    print(f"propensity: {mine['seconds']:.2f}s whole run, peak RSS {mine_mb:.0f} MB")
    if "old" in payload:
        o = payload["old"]
        print(f"old pipeline: {o['seconds']:.1f}s on {o['n_train']} training rows "
              f"(subsample {o['subsample']:g}), peak RSS {o['peak_rss_mb']:.0f} MB")
        if "speedup" in payload:
            print(f"speed-up: {payload['speedup']:.0f}x")
    print("saved", save_results("train", payload))


if __name__ == "__main__":
    main()
