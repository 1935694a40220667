"""Dask scale-out: distributed training (fit_dask) and scoring (predict_dask) throughput,
peak memory per worker, 1 vs 2 workers, on a LocalCluster.

The stand-in is generated partition by partition on the workers (``dd.from_map``), never
on the driver: each partition resamples rows of a 1,000,000-row ``make_sessions`` frame
that every worker builds once (seeded by the partition number), with integer UserIDs.
Both passes of fit_dask (scan, reduce) and the scoring pass regenerate the partitions,
so the timings include generating the data (measured alone as well).

    python benchmarks/bench_dask.py                 # 50,000,000 rows (the saved result)
    python benchmarks/bench_dask.py --rows 5000000  # quicker
"""
import argparse
import functools
import os
import resource
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine, print_table, save_results, versions  # noqa: E402

BASE_ROWS = 1_000_000


@functools.lru_cache(maxsize=1)
def _base():
    from propensity.datasets import make_sessions
    df = make_sessions(BASE_ROWS, seed=0).drop(columns=["UserID"])
    return {c: np.ascontiguousarray(df[c].to_numpy()) for c in df.columns}


def make_partition(i, rows):
    """Partition i: `rows` rows resampled from the per-worker base frame."""
    import pandas as pd
    base = _base()
    idx = np.random.default_rng([7, i]).integers(0, BASE_ROWS, rows)
    out = {"UserID": np.arange(i * rows, (i + 1) * rows, dtype=np.int64)}
    out.update({c: v[idx] for c, v in base.items()})
    return pd.DataFrame(out)


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frame(n_rows, part_rows):
    import dask.dataframe as dd
    n_parts = max(1, -(-n_rows // part_rows))
    meta = make_partition(0, 1).iloc[:0]
    return dd.from_map(make_partition, list(range(n_parts)), rows=part_rows, meta=meta,
                       enforce_metadata=False), n_parts * part_rows


def _model_dir(folder):
    from propensity.training.pipeline import run_training
    run_training(None, None, folder, models=["random_forest"], cv_folds=2,
                 grid={"random_forest": {"n_estimators": [100], "max_depth": [None],
                                         "min_samples_split": [2]}},
                 embedded_rows=100_000, embedded_test_rows=1000, n_jobs=2)
    return folder


def run(n_workers, n_rows, part_rows, model_dir, holdout):
    from distributed import Client, LocalCluster

    from propensity import dask as pdask
    from propensity.learn.forest import RandomForestClassifier
    from propensity.learn.gbdt import GradientBoostingClassifier
    from propensity.learn.linear import LogisticRegression
    from propensity.learn.metrics import roc_auc_score

    res = {"workers": n_workers}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None, silence_logs=40,
                      memory_limit=0) as cluster, Client(cluster) as client:
        ddf, n = _frame(n_rows, part_rows)
        res["rows"] = n
        res["partitions"] = ddf.npartitions
        client.run(_base)  # build the base frame on each worker before timing
        t0 = time.perf_counter()
        total = int(ddf.map_partitions(len).sum().compute())
        assert total == n
        res["generate_s"] = time.perf_counter() - t0
        Xh, yh = holdout
        for name, est in (("random_forest", RandomForestClassifier(
                              n_estimators=100, random_state=0, n_jobs=2)),
                          ("gradient_boosting", GradientBoostingClassifier(
                              n_estimators=100, max_depth=6, random_state=0, n_jobs=2)),
                          ("logistic_regression", LogisticRegression(C=1.0, n_jobs=1))):
            t0 = time.perf_counter()
            pdask.fit_dask(est, ddf, "ordered")
            secs = time.perf_counter() - t0
            res[f"fit_{name}_s"] = secs
            res[f"fit_{name}_rows_per_s"] = n / secs
            res[f"fit_{name}_auc_holdout"] = float(roc_auc_score(yh, est.predict_proba(Xh)[:, 1]))
        res["peak_worker_mb_after_fit"] = max(client.run(_peak_mb).values())
        t0 = time.perf_counter()
        out = pdask.predict_dask(model_dir, ddf)
        stats = out.map_partitions(
            lambda d: d.assign(one=1)[["one", "predicted_ordered", "purchase_probability"]]
        ).sum().compute()
        secs = time.perf_counter() - t0
        assert int(stats["one"]) == n
        res["score_s"] = secs
        res["score_rows_per_s"] = n / secs
        res["mean_probability"] = float(stats["purchase_probability"]) / n
        res["peak_worker_mb"] = max(client.run(_peak_mb).values())
    return res


def local_reference(n_rows, holdout):
    """One process, no Dask: the same estimators on n_rows rows in memory."""
    import pandas as pd

    from propensity.learn.forest import RandomForestClassifier
    from propensity.learn.metrics import roc_auc_score
    parts = [make_partition(i, 1_000_000) for i in range(max(1, n_rows // 1_000_000))]
    df = pd.concat(parts, ignore_index=True)
    feats = [c for c in df.columns if c not in ("UserID", "ordered")]
    t0 = time.perf_counter()
    est = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2).fit(
        df[feats], df["ordered"])
    secs = time.perf_counter() - t0
    Xh, yh = holdout
    return {"rows": len(df), "fit_random_forest_s": secs,
            "fit_random_forest_rows_per_s": len(df) / secs,
            "fit_random_forest_auc_holdout": float(roc_auc_score(yh, est.predict_proba(Xh)[:, 1])),
            "peak_mb": _peak_mb()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--partition-rows", type=int, default=1_000_000)
    ap.add_argument("--local-rows", type=int, default=5_000_000,
                    help="rows of the one-process reference fit (0: skip)")
    args = ap.parse_args(argv)
    from propensity.datasets import make_sessions
    hold = make_sessions(200_000, seed=99)
    feats = [c for c in hold.columns if c not in ("UserID", "ordered")]
    holdout = (hold[feats], hold["ordered"].to_numpy())
    results = {"config": {"rows": args.rows, "partition_rows": args.partition_rows,
                          "threads_per_worker": 1, "estimator_threads_on_driver": 2},
               "versions": versions("numpy", "pandas", "dask", "distributed"),
               "machine": machine(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _model_dir(os.path.join(tmp, "model"))
        for w in (1, 2):
            r = run(w, args.rows, args.partition_rows, model_dir, holdout)
            results["runs"].append(r)
            print(r, flush=True)
    one, two = results["runs"]
    results["speedup_2_vs_1_workers"] = {
        k: one[k] / two[k] for k in one if k.endswith("_s") and not k.endswith("per_s") and two.get(k)}
    if args.local_rows:
        results["local_reference"] = local_reference(args.local_rows, holdout)
    cols = ["workers", "rows", "generate_s", "fit_random_forest_s", "fit_gradient_boosting_s",
            "fit_logistic_regression_s", "score_s", "score_rows_per_s", "peak_worker_mb",
            "fit_random_forest_auc_holdout"]
    print_table(results["runs"], cols)
    print("2 vs 1 workers:", {k: round(v, 2) for k, v in results["speedup_2_vs_1_workers"].items()})
    if "local_reference" in results:
        print("local reference:", results["local_reference"])
    print("saved", save_results("dask", results))


if __name__ == "__main__":
    main()
