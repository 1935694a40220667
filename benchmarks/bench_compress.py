"""Row compression: propensity compress_rows vs numpy.unique(axis=0) vs pandas groupby.

Data: 455,401 x 33 binned rows, the 23 binary session features plus the 10 interaction
features of SPEC.md (5 products, engagement_score, intent_score, 3 device_returning),
from propensity.datasets.make_sessions. Every method runs on the same matrix with
2 threads where it can use them; each result is checked against numpy.unique.

    python benchmarks/bench_compress.py [--rows 455401] [--repeat 3]
"""
import argparse
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import best_of, print_table, save_results, session_matrix, versions  # noqa: E402

from propensity.learn.binning import BinMapper  # noqa: E402
from propensity.learn.compress import compress_rows  # noqa: E402

def run_numpy(B):
    return np.unique(B, axis=0, return_inverse=True, return_counts=True)


def run_pandas(B, y):
    df = pd.DataFrame(B)
    df["y"] = y
    g = df.groupby(list(range(B.shape[1])), sort=True)
    agg = g["y"].agg(["size", "sum"])
    return agg.index.to_frame().to_numpy(dtype=np.uint8), g.ngroup().to_numpy(), agg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=455_401)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    X, y, _ = session_matrix(args.rows, args.seed)
    y = y.astype(np.uint8)
    source = "propensity.datasets.make_sessions + InteractionFeatureTransformer"
    t_bin, B = best_of(lambda: BinMapper().fit_transform(X, n_jobs=2), args.repeat)
    print(f"data: {source}; X {X.shape}, binned in {t_bin * 1e3:.1f} ms")

    t_ours, res = best_of(lambda: compress_rows(B, y, n_jobs=2), args.repeat)
    t_ours1, _ = best_of(lambda: compress_rows(B, y, n_jobs=1), args.repeat)
    t_np, (u_rows, u_inv, u_cnt) = best_of(lambda: run_numpy(B), args.repeat)
    t_pd, (p_rows, p_inv, p_agg) = best_of(lambda: run_pandas(B, y), args.repeat)

    same_np = (np.array_equal(res.rows, u_rows) and np.array_equal(res.inverse, u_inv.ravel())
               and np.array_equal(res.counts.sum(axis=1), u_cnt))
    same_pd = (np.array_equal(res.rows, p_rows) and np.array_equal(res.inverse, p_inv)
               and np.array_equal(res.counts[:, 1], p_agg["sum"].to_numpy()))
    u = res.n_unique
    rows = [
        {"method": "propensity compress_rows (2 threads)", "seconds": t_ours,
         "ratio_vs_numpy_unique": t_np / t_ours, "n_unique": u, "equals_numpy": same_np},
        {"method": "propensity compress_rows (1 thread)", "seconds": t_ours1,
         "ratio_vs_numpy_unique": t_np / t_ours1, "n_unique": u, "equals_numpy": same_np},
        {"method": "numpy.unique(axis=0)", "seconds": t_np, "ratio_vs_numpy_unique": 1.0,
         "n_unique": int(u_rows.shape[0]), "equals_numpy": True},
        {"method": "pandas groupby", "seconds": t_pd, "ratio_vs_numpy_unique": t_np / t_pd,
         "n_unique": int(p_rows.shape[0]), "equals_numpy": same_pd},
    ]
    print_table(rows, ["method", "seconds", "ratio_vs_numpy_unique", "n_unique", "equals_numpy"])
    print(f"{u} unique rows of {B.shape[0]} ({B.shape[0] / u:.1f}x fewer); "
          f"compress_rows is {t_np / t_ours:.1f}x faster than numpy.unique, "
          f"{t_pd / t_ours:.1f}x faster than pandas groupby")
    path = save_results("compress", {
        "data": source, "n_rows": int(B.shape[0]), "n_cols": int(B.shape[1]), "n_unique": int(u),
        "positives": int(y.sum()), "threads": 2, "repeat": args.repeat,
        "bin_fit_transform_seconds": t_bin, "results": rows,
        "speedup_vs_numpy_unique": t_np / t_ours, "speedup_vs_pandas_groupby": t_pd / t_ours,
        "versions": versions("numpy", "pandas")})
    print(f"saved {path}")
    return 0 if (same_np and same_pd) else 1


if __name__ == "__main__":
    sys.exit(main())
