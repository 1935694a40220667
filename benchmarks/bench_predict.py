"""Batch inference: a testing-style CSV -> predictions CSV, end to end.

    python benchmarks/bench_predict.py [--rows 10000000] [--old-rows 1000000]
                                       [--model-dir DIR] [--workdir /tmp/propensity_bench]

- ours: ``propensity.predict`` on the whole file with the manifest's best model
  (rows/s and peak RSS in a fresh process, start-up included);
- the old approach (model_inference.py): pandas read_csv + a pickled scikit-learn random
  forest (class_weight='balanced', the old grid's largest forest) + to_csv, on the first
  ``--old-rows`` rows of the same file (it is too slow for the whole file);
- in memory: ``predictor.predict`` on a 10,000-row pandas chunk, median latency.
Both use 2 threads. Results: benchmarks/results/predict.json.
"""
import argparse
import os
import pickle
import statistics
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import print_table, run_isolated, save_results, versions  # noqa: E402

FEATURES = ["basket_icon_click", "basket_add_list", "basket_add_detail", "sort_by",
            "image_picker", "account_page_click", "promo_banner_click", "detail_wishlist_add",
            "list_size_dropdown", "closed_minibasket_click", "checked_delivery_detail",
            "checked_returns_detail", "sign_in", "saw_checkout", "saw_sizecharts",
            "saw_delivery", "saw_account_upgrade", "saw_homepage", "device_mobile",
            "device_computer", "device_tablet", "returning_user", "loc_uk"]
CHUNK = 1_000_000


def _sessions(n, seed, testing):
    from propensity import datasets
    return datasets.make_sessions(n, seed=seed, testing=testing)


def make_input(path, rows):
    """Write a testing-style CSV of ``rows`` sessions in 1M-row chunks (cached)."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path + ".rows") as f:
            if int(f.read()) == rows:
                return path
    tmp = path + ".part"
    done = 0
    with open(tmp, "w", newline="") as f:
        k = 0
        while done < rows:
            n = min(CHUNK, rows - done)
            frame = _sessions(n, seed=1000 + k, testing=True)
            frame.to_csv(f, header=(k == 0), index=False)
            done += n
            k += 1
    os.replace(tmp, path)
    with open(path + ".rows", "w") as f:
        f.write(str(rows))
    return path


def train_models(model_dir):
    from propensity import train
    train.main(["--output-dir", model_dir, "--quiet"])


def run_ours(input_path, output_path, model_dir):
    from propensity import CustomerPropensityPredictor
    p = CustomerPropensityPredictor(model_dir)
    p.load_best_model()
    t0 = time.perf_counter()
    s = p.predict_from_file(input_path, output_path)
    return {"rows": s["rows"], "seconds_in_call": time.perf_counter() - t0,
            "distinct_rows_scored": s.get("distinct_rows_scored"), "model": p.model_name}


def fit_old_forest(pickle_path):
    """The old pipeline's forest: scikit-learn RandomForestClassifier, balanced."""
    from sklearn.ensemble import RandomForestClassifier
    train = _sessions(455_401, seed=42, testing=False)
    X, y = train[FEATURES], train["ordered"]
    rf = RandomForestClassifier(n_estimators=200, max_depth=20, min_samples_split=5,
                                class_weight="balanced", n_jobs=2, random_state=42)
    rf.fit(X, y)
    with open(pickle_path, "wb") as f:
        pickle.dump(rf, f)


def run_old(input_path, output_path, pickle_path, nrows):
    """model_inference.py: read_csv, clip, predict_proba with the pickled forest, to_csv."""
    import datetime

    import pandas as pd
    with open(pickle_path, "rb") as f:
        rf = pickle.load(f)
    df = pd.read_csv(input_path, nrows=nrows)
    X = df[FEATURES].fillna(0).clip(0, 1)
    proba = rf.predict_proba(X)[:, 1]
    out = pd.DataFrame({"UserID": df["UserID"], "predicted_ordered": (proba >= 0.5).astype(int),
                        "purchase_probability": proba,
                        "prediction_timestamp": datetime.datetime.now().isoformat()})
    out.to_csv(output_path, index=False)
    return {"rows": len(df)}


def in_memory_latency(model_dir, input_path, repeat=30):
    import pandas as pd
    from propensity import CustomerPropensityPredictor
    p = CustomerPropensityPredictor(model_dir)
    p.load_best_model()
    chunk = pd.read_csv(input_path, nrows=10_000, dtype={"UserID": str})
    p.predict(chunk)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        p.predict(chunk)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"rows": len(chunk), "median_seconds": med, "rows_per_s": len(chunk) / med}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--old-rows", type=int, default=1_000_000)
    ap.add_argument("--model-dir", default=None, help="trained ml_outputs (default: train one)")
    ap.add_argument("--workdir", default="/tmp/propensity_bench")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    os.makedirs(args.workdir, exist_ok=True)
    model_dir = args.model_dir or os.path.join(args.workdir, "ml_outputs")
    if not os.path.exists(os.path.join(model_dir, "manifest.json")):
        print(f"training models into {model_dir} ...", flush=True)
        train_models(model_dir)
    data = os.path.join(args.workdir, f"testing_{args.rows}.csv")
    print(f"input {data} ...", flush=True)
    make_input(data, args.rows)
    size_mb = os.path.getsize(data) / 2**20

    ours, secs, peak = run_isolated(run_ours, data, os.path.join(args.workdir, "pred_ours.csv"),
                                    model_dir)
    rows = [{"approach": "propensity.predict (C CSV path, best model)", "rows": ours["rows"],
             "seconds": secs, "rows_per_s": ours["rows"] / secs, "peak_rss_mb": peak}]
    pkl = os.path.join(args.workdir, "old_forest.pkl")
    if not os.path.exists(pkl):
        print("fitting the old scikit-learn forest ...", flush=True)
        fit_old_forest(pkl)
    old, osecs, opeak = run_isolated(run_old, data, os.path.join(args.workdir, "pred_old.csv"),
                                     pkl, args.old_rows)
    rows.append({"approach": f"old: pandas + pickled sklearn RF + to_csv (first {old['rows']} rows)",
                 "rows": old["rows"], "seconds": osecs, "rows_per_s": old["rows"] / osecs,
                 "peak_rss_mb": opeak})
    mem = in_memory_latency(model_dir, data)
    print_table(rows, ["approach", "rows", "seconds", "rows_per_s", "peak_rss_mb"])
    speedup = rows[0]["rows_per_s"] / rows[1]["rows_per_s"]
    print(f"speed-up (rows/s): {speedup:.1f}x; file {size_mb:.0f} MB; distinct rows scored: "
          f"{ours['distinct_rows_scored']}")
    print(f"in memory predict(10,000-row DataFrame): median {mem['median_seconds'] * 1e3:.2f} ms, "
          f"{mem['rows_per_s']:.3g} rows/s")
    import json
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    best = manifest["best_model"]
    path = save_results("predict", {
        "input": {"rows": args.rows, "megabytes": size_mb, "kind": "testing-style sessions"},
        "threads": 2, "end_to_end": rows, "speedup_rows_per_s": speedup,
        "ours_model": {"name": best, "validation_f1": manifest["models"][best].get("f1"),
                       "roc_auc": manifest["models"][best].get("roc_auc")},
        "old_model": "sklearn RandomForestClassifier(n_estimators=200, max_depth=20, "
                     "min_samples_split=5, class_weight='balanced'), threshold 0.5",
        "distinct_rows_scored": ours["distinct_rows_scored"],
        "in_memory_10k": mem,
        "versions": versions("numpy", "pandas", "sklearn"),
    })
    print(f"saved {path}")


if __name__ == "__main__":
    main()
