"""Row compression: propensity compress_rows vs numpy.unique(axis=0) vs pandas groupby.

Data: 455,401 x 33 binned rows, the 23 binary session features plus the 10 interaction
features of SPEC.md (5 products, engagement_score, intent_score, 3 device_returning),
from propensity.datasets.make_sessions when available, else a correlated-binary
stand-in defined here (the JSON says which). Every method runs on the same matrix with
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

from _common import best_of, print_table, save_results, versions  # noqa: E402

from propensity._binning import BinMapper  # noqa: E402
from propensity._compress import compress_rows  # noqa: E402

FEATURES = [
    "basket_icon_click", "basket_add_list", "basket_add_detail", "sort_by", "image_picker",
    "account_page_click", "promo_banner_click", "detail_wishlist_add", "list_size_dropdown",
    "closed_minibasket_click", "checked_delivery_detail", "checked_returns_detail", "sign_in",
    "saw_checkout", "saw_sizecharts", "saw_delivery", "saw_account_upgrade", "saw_homepage",
    "device_mobile", "device_computer", "device_tablet", "returning_user", "loc_uk"]
# engagement rates of the real file (shared/reference/binary_summary.csv)
RATES = {
    "loc_uk": 0.9332, "device_mobile": 0.6807, "returning_user": 0.5349, "saw_homepage": 0.2900,
    "list_size_dropdown": 0.2304, "device_computer": 0.1942, "device_tablet": 0.1284,
    "basket_add_detail": 0.1129, "basket_icon_click": 0.0991, "sign_in": 0.0888,
    "saw_checkout": 0.0801, "basket_add_list": 0.0745, "checked_delivery_detail": 0.0629,
    "sort_by": 0.0368, "image_picker": 0.0267, "closed_minibasket_click": 0.0173,
    "promo_banner_click": 0.0162, "checked_returns_detail": 0.0092, "saw_delivery": 0.0055,
    "account_page_click": 0.0036, "detail_wishlist_add": 0.0035, "saw_account_upgrade": 0.0011,
    "saw_sizecharts": 0.0004}
FUNNEL = {"basket_icon_click", "basket_add_list", "basket_add_detail", "sign_in", "saw_checkout",
          "checked_delivery_detail", "checked_returns_detail", "saw_delivery", "sort_by",
          "image_picker", "closed_minibasket_click"}


def fallback_sessions(n, seed):
    """Correlated binary columns: a shared latent 'intent' drives the funnel columns."""
    from statistics import NormalDist
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    cols = {}
    for name in FEATURES:
        load = 0.8 if name in FUNNEL else 0.2
        latent = load * z + np.sqrt(1 - load ** 2) * rng.standard_normal(n)
        cols[name] = (latent > NormalDist().inv_cdf(1 - RATES[name])).astype(np.uint8)
    dev = rng.choice(3, size=n, p=[0.68, 0.19, 0.13])
    for k, name in enumerate(["device_mobile", "device_computer", "device_tablet"]):
        cols[name] = (dev == k).astype(np.uint8)
    p_order = 1 / (1 + np.exp(-(-4.2 + 2.0 * cols["saw_checkout"] + 1.0 * z)))
    cols["ordered"] = (rng.random(n) < p_order).astype(np.uint8)
    return pd.DataFrame(cols)


def load_sessions(n, seed):
    try:
        from propensity.datasets import make_sessions
    except ImportError:
        return fallback_sessions(n, seed), "fallback correlated-binary generator (bench_compress.py)"
    return make_sessions(n, seed), "propensity.datasets.make_sessions"


def interactions(df):
    """The 33 columns: 23 binary + the 10 interaction features of SPEC.md."""
    X = df[FEATURES].astype(np.uint8).copy()
    for a, b in [("sign_in", "saw_checkout"), ("basket_icon_click", "basket_add_detail"),
                 ("basket_add_list", "basket_add_detail"), ("checked_delivery_detail", "sign_in"),
                 ("account_page_click", "sign_in")]:
        X[f"{a}_x_{b}"] = X[a] * X[b]
    X["engagement_score"] = X[["basket_icon_click", "basket_add_list", "basket_add_detail",
                               "account_page_click", "detail_wishlist_add", "sort_by"]].sum(axis=1)
    X["intent_score"] = X[["saw_checkout", "checked_delivery_detail", "checked_returns_detail",
                           "sign_in", "saw_delivery"]].sum(axis=1)
    for d in ["device_mobile", "device_computer", "device_tablet"]:
        X[f"{d}_returning"] = X[d] * X["returning_user"]
    return np.ascontiguousarray(X.to_numpy(dtype=np.uint8))


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

    df, source = load_sessions(args.rows, args.seed)
    y = df["ordered"].to_numpy().astype(np.uint8)
    X = interactions(df)
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
