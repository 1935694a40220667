"""Batch inference: a testing-style CSV -> predictions CSV, end to end, against peers.

    python benchmarks/bench_predict.py [--rows 10000000] [--old-rows 1000000]
                                       [--train-rows 200000] [--repeat 3]
                                       [--peer-reader read_csv|open_csv] [--skip-old]
                                       [--model-dir DIR] [--workdir /tmp/propensity_bench]
                                       [--no-save]

Two input files of ``--rows`` rows, scored CSV -> CSV by every side:

- session: the testing-style stand-in sessions (propensity.datasets.make_sessions,
  testing=True), UserID + 23 binary columns + ordered, written in 1M-row chunks;
- mixed: the same rows (same chunks and seeds) with three columns added before
  ``ordered``: ``basket_value`` (gamma, shape 2, scale 25, 2 decimals),
  ``days_since_last_visit`` (integer, geometric with p 0.15 minus 1) and
  ``traffic_source`` (text, 8 values: web, app, email, search, social, affiliate,
  display, direct). A ``--train-rows`` training file (make_sessions seed 42) gets the same
  columns, and its target is moved by them: with a shift s = source effect (email +0.8
  ... display -0.6) + 0.8 log1p(basket_value / 50) - 0.55 - 0.04 min(days, 30), an
  order is dropped with probability sigmoid(-1.5 - s) and a non-order after checkout
  becomes one with probability sigmoid(-2 + s) (orders stay after checkout only).

Sides, each timed in a fresh process (run_isolated: imports included, peak RSS of the
child), 2 threads, best of ``--repeat`` runs for every side alike (peak RSS: the largest
of the runs):

- ours: ``python -m propensity.predict`` (its main()) on the whole file; on the session
  file with the manifest's best model (trained on the embedded stand-in, all families,
  default grids) and with a gradient boosting model of the small grid (n_estimators
  [100], max_depth [6], learning_rate [0.1], embedded stand-in); on the mixed file with
  ``python -m propensity.train --train-file mixed_train.csv --models gradient_boosting
  --grid small.toml``;
- peer ("what an expert would write"): pyarrow.csv.read_csv (multithreaded, typed
  columns: uint8 binaries, float64/int32 numerics, string text; ``ordered`` not read)
  -> LightGBM ``Booster.predict`` on the Arrow table (zero copy; traffic_source as its
  index in the fixed category list, via pyarrow.compute.index_in, declared categorical at
  training) -> pyarrow.csv.write_csv of UserID, predicted_ordered (p >= 0.5),
  purchase_probability (rounded to 6 digits like ours) and prediction_timestamp. The
  default reader is read_csv on the whole file: it is multithreaded (1M mixed rows:
  0.20 s against 0.30 s for open_csv on 2 threads) and 10M rows fit in memory (under
  1 GB of Arrow data for either file; peak RSS about 2 GB, extrapolated from 0.3M and 1M
  rows); ``--peer-reader open_csv`` streams 16 MB batches instead (bounded memory, but
  pyarrow's streaming reader is single-threaded). The LightGBM models are trained
  once beforehand with our gradient boosting configuration: 100 rounds, num_leaves 63,
  max_depth 6, learning_rate 0.1, lambda_l2 1, min_sum_hessian_in_leaf 1, 255 bins, on
  the same training rows (the embedded stand-in for the session file, mixed_train.csv
  for the mixed one), raw input columns (trees need no interaction features);
- floor: pyarrow.csv.read_csv of the file alone, with the peer's options;
- the old approach (model_inference.py): pandas read_csv + a pickled scikit-learn random
  forest (class_weight='balanced', the old grid's largest forest) + to_csv, on the first
  ``--old-rows`` rows of the session file (it is too slow for the whole file);
- in memory: ``predictor.predict`` on a 10,000-row pandas chunk, median latency (best
  model on the session file, gradient boosting on the mixed file).

Every output's row count is checked against the input after its run (not timed).
Results: benchmarks/results/predict.json (not with --no-save).
"""
import argparse
import datetime
import json
import os
import pickle
import statistics
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import _common  # noqa: E402
from _common import print_table, run_isolated, save_results, versions  # noqa: E402

FEATURES = ["basket_icon_click", "basket_add_list", "basket_add_detail", "sort_by",
            "image_picker", "account_page_click", "promo_banner_click", "detail_wishlist_add",
            "list_size_dropdown", "closed_minibasket_click", "checked_delivery_detail",
            "checked_returns_detail", "sign_in", "saw_checkout", "saw_sizecharts",
            "saw_delivery", "saw_account_upgrade", "saw_homepage", "device_mobile",
            "device_computer", "device_tablet", "returning_user", "loc_uk"]
NUMERIC = ["basket_value", "days_since_last_visit"]
TEXT = "traffic_source"
SOURCES = ["web", "app", "email", "search", "social", "affiliate", "display", "direct"]
SOURCE_P = [0.30, 0.20, 0.10, 0.15, 0.08, 0.05, 0.04, 0.08]
SOURCE_SHIFT = [0.0, 0.5, 0.8, 0.3, -0.4, 0.2, -0.6, 0.1]
OUTPUT_COLUMNS = ["UserID", "predicted_ordered", "purchase_probability", "prediction_timestamp"]
CHUNK = 1_000_000
THREADS = 2
SMALL_GRID = ("[gradient_boosting]\nn_estimators = [100]\nmax_depth = [6]\n"
              "learning_rate = [0.1]\n")
LGBM_PARAMS = {"objective": "binary", "num_leaves": 63, "max_depth": 6, "learning_rate": 0.1,
               "lambda_l2": 1.0, "min_sum_hessian_in_leaf": 1.0, "max_bin": 255,
               "num_threads": THREADS, "seed": 42, "verbose": -1}
LGBM_ROUNDS = 100
OPEN_CSV_BLOCK = 16 << 20


# ---------------------------------------------------------------------------- data
def _sessions(n, seed, testing):
    from propensity import datasets
    return datasets.make_sessions(n, seed=seed, testing=testing)


def add_mixed_columns(frame, seed, shift_target):
    """Insert basket_value, days_since_last_visit and traffic_source before ``ordered``;
    with ``shift_target``, move ``ordered`` by them (see the module docstring)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    n = len(frame)
    basket = np.round(rng.gamma(2.0, 25.0, n), 2)
    days = (rng.geometric(0.15, n) - 1).astype(np.int32)
    src = rng.choice(len(SOURCES), size=n, p=SOURCE_P)
    frame = frame.copy()
    at = frame.columns.get_loc("ordered")
    frame.insert(at, TEXT, np.asarray(SOURCES, dtype=object)[src])
    frame.insert(at, "days_since_last_visit", days)
    frame.insert(at, "basket_value", basket)
    if shift_target:
        s = (np.asarray(SOURCE_SHIFT)[src] + 0.8 * np.log1p(basket / 50.0) - 0.55
             - 0.04 * np.minimum(days, 30))
        y = frame["ordered"].to_numpy().astype(np.uint8)
        u = rng.random(n)
        drop = (y == 1) & (u < 1.0 / (1.0 + np.exp(1.5 + s)))
        checkout = frame["saw_checkout"].to_numpy() == 1
        add = (y == 0) & checkout & (u < 1.0 / (1.0 + np.exp(2.0 - s)))
        y[drop] = 0
        y[add] = 1
        frame["ordered"] = y
    return frame


def _cached(path, rows):
    if os.path.exists(path) and os.path.getsize(path) > 0 and os.path.exists(path + ".rows"):
        with open(path + ".rows") as f:
            return int(f.read()) == rows
    return False


def _write_chunks(path, rows, frames):
    tmp = path + ".part"
    with open(tmp, "w", newline="") as f:
        for k, frame in enumerate(frames):
            frame.to_csv(f, header=(k == 0), index=False, float_format="%.2f")
    os.replace(tmp, path)
    with open(path + ".rows", "w") as f:
        f.write(str(rows))
    return path


def make_input(path, rows, mixed=False):
    """Write a testing-style CSV of ``rows`` sessions in 1M-row chunks (cached); ``mixed``
    adds the numeric and text columns to the same rows."""
    if _cached(path, rows):
        return path

    def frames():
        done, k = 0, 0
        while done < rows:
            n = min(CHUNK, rows - done)
            frame = _sessions(n, seed=1000 + k, testing=True)
            yield add_mixed_columns(frame, 5000 + k, shift_target=False) if mixed else frame
            done += n
            k += 1
    return _write_chunks(path, rows, frames())


def make_mixed_train(path, rows):
    """The mixed training CSV: make_sessions(rows, seed=42) + the added columns, target moved."""
    if _cached(path, rows):
        return path
    frame = add_mixed_columns(_sessions(rows, seed=42, testing=False), 7, shift_target=True)
    return _write_chunks(path, rows, [frame])


def count_rows(path):
    """Data rows of a CSV written by a side (no embedded line ends in these files)."""
    n = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 24)
            if not block:
                break
            n += block.count(b"\n")
    return n - 1


# ---------------------------------------------------------------------------- training
def train_models(model_dir, extra=()):
    from propensity import train
    rc = train.main(["--output-dir", model_dir, "--quiet", *extra])
    if rc != 0:
        raise RuntimeError(f"propensity.train exited with {rc} for {model_dir}")


def ensure_model(model_dir, extra=()):
    if not os.path.exists(os.path.join(model_dir, "manifest.json")):
        print(f"training models into {model_dir} ...", flush=True)
        train_models(model_dir, extra)
    with open(os.path.join(model_dir, "manifest.json")) as f:
        return json.load(f)


def _arrow_options(mixed):
    """The peer's typed CSV conversion: the columns it needs, ``ordered`` not read."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    types = {"UserID": pa.string(), **{c: pa.uint8() for c in FEATURES}}
    if mixed:
        types.update({"basket_value": pa.float64(), "days_since_last_visit": pa.int32(),
                      TEXT: pa.string()})
    return pacsv.ConvertOptions(column_types=types, include_columns=list(types))


def _feature_table(table, names):
    """The Booster's input as an Arrow table: its columns in training order, the text
    column replaced by its index in SOURCES (null for an unseen value: missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    cols = []
    for name in names:
        col = table[name]
        if name == TEXT:
            col = pc.index_in(col, value_set=pa.array(SOURCES))
        cols.append(col)
    return pa.table(cols, names=names)


def fit_lightgbm(model_path, mixed, train_csv=None):
    """Train the peer's LightGBM model once (not timed) on the rows ours trains on."""
    import lightgbm as lgb
    import numpy as np
    t0 = time.perf_counter()
    if mixed:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        types = dict(_arrow_options(True).column_types, ordered=pa.uint8())
        conv = pacsv.ConvertOptions(column_types=types, include_columns=list(types))
        table = pacsv.read_csv(train_csv, convert_options=conv)
        names = FEATURES + NUMERIC + [TEXT]
        ft = _feature_table(table, names)
        X = np.column_stack([ft[c].to_numpy(zero_copy_only=False).astype(np.float64)
                             for c in names])
        y = table["ordered"].to_numpy()
        cat = [TEXT]
    else:
        from propensity.training.pipeline import EMBEDDED_ROWS, EMBEDDED_SEED
        frame = _sessions(EMBEDDED_ROWS, seed=EMBEDDED_SEED, testing=False)
        names = list(FEATURES)
        X, y, cat = frame[names].to_numpy(np.float64), frame["ordered"].to_numpy(), []
    ds = lgb.Dataset(X, y, feature_name=names, categorical_feature=cat or "auto")
    booster = lgb.train(LGBM_PARAMS, ds, num_boost_round=LGBM_ROUNDS)
    booster.save_model(model_path)
    return {"rows": len(y), "seconds": time.perf_counter() - t0, "positive_rate": float(y.mean())}


def ensure_lightgbm(model_path, mixed, train_csv=None):
    if not os.path.exists(model_path):
        print(f"training the LightGBM peer model {model_path} ...", flush=True)
        info, _, _ = run_isolated(fit_lightgbm, model_path + ".part", mixed, train_csv)
        os.replace(model_path + ".part", model_path)
        print(f"  {info['rows']} rows, {info['seconds']:.1f}s", flush=True)


def fit_old_forest(pickle_path):
    """The old pipeline's forest: scikit-learn RandomForestClassifier, balanced."""
    from sklearn.ensemble import RandomForestClassifier
    train = _sessions(455_401, seed=42, testing=False)
    X, y = train[FEATURES], train["ordered"]
    rf = RandomForestClassifier(n_estimators=200, max_depth=20, min_samples_split=5,
                                class_weight="balanced", n_jobs=THREADS, random_state=42)
    rf.fit(X, y)
    with open(pickle_path, "wb") as f:
        pickle.dump(rf, f)


# ---------------------------------------------------------------------------- timed sides
def run_ours(input_path, output_path, model_dir, model=None):
    """``python -m propensity.predict --input_file ... --output_file ... --quiet``."""
    argv = ["--input_file", input_path, "--output_file", output_path, "--model_dir", model_dir,
            "--quiet"]
    if model:
        argv += ["--model", model]
    rc = _common.command_main("propensity.predict", argv)
    if rc != 0:
        raise RuntimeError(f"propensity.predict exited with {rc}")
    return {}


def run_peer(input_path, output_path, model_path, mixed, reader="read_csv"):
    """pyarrow CSV reader -> LightGBM Booster.predict -> pyarrow.csv.write_csv."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import lightgbm as lgb
    pa.set_cpu_count(THREADS)
    booster = lgb.Booster(model_file=model_path)
    names = booster.feature_name()
    ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    conv = _arrow_options(mixed)

    def score(table):
        p = booster.predict(_feature_table(table, names), num_threads=THREADS)
        return pa.table({"UserID": table["UserID"],
                         "predicted_ordered": pa.array((p >= 0.5).astype(np.uint8)),
                         "purchase_probability": pa.array(np.round(p, 6)),
                         "prediction_timestamp": pa.repeat(ts, len(p))})

    rows = 0
    if reader == "read_csv":
        table = pacsv.read_csv(input_path, convert_options=conv)
        out = score(table)
        del table
        pacsv.write_csv(out, output_path)
        rows = out.num_rows
    else:
        stream = pacsv.open_csv(input_path, convert_options=conv,
                                read_options=pacsv.ReadOptions(block_size=OPEN_CSV_BLOCK))
        writer = None
        try:
            for batch in stream:
                out = score(pa.Table.from_batches([batch]))
                if writer is None:
                    writer = pacsv.CSVWriter(output_path, out.schema)
                writer.write_table(out)
                rows += out.num_rows
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows}


def run_floor(input_path, mixed):
    """pyarrow.csv.read_csv of the file alone (the peer's read step)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    pa.set_cpu_count(THREADS)
    return {"rows": pacsv.read_csv(input_path, convert_options=_arrow_options(mixed)).num_rows}


def run_old(input_path, output_path, pickle_path, nrows):
    """model_inference.py: read_csv, clip, predict_proba with the pickled forest, to_csv."""
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


def timed(repeat, fn, *args):
    """Best of ``repeat`` isolated runs: (last result, best seconds, largest peak RSS MB)."""
    best, peak, out = float("inf"), 0.0, None
    for _ in range(repeat):
        out, secs, mb = run_isolated(fn, *args)
        best, peak = min(best, secs), max(peak, mb)
    return out, best, peak


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
    return {"rows": len(chunk), "median_seconds": med, "rows_per_s": len(chunk) / med,
            "model": p.model_name}


def _model_info(manifest, name=None):
    name = name or manifest["best_model"]
    m = manifest["models"][name]
    return {"name": name, "validation_f1": m.get("f1"), "roc_auc": m.get("roc_auc")}


# ---------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of both input files")
    ap.add_argument("--old-rows", type=int, default=1_000_000,
                    help="rows the old pandas + sklearn pipeline scores")
    ap.add_argument("--train-rows", type=int, default=200_000,
                    help="rows of the mixed training file")
    ap.add_argument("--repeat", type=int, default=3,
                    help="isolated runs per side, best time kept (same for every side)")
    ap.add_argument("--peer-reader", choices=("read_csv", "open_csv"), default="read_csv",
                    help="the peer's pyarrow reader: whole file (default) or 16 MB batches")
    ap.add_argument("--skip-old", action="store_true", help="skip the old pandas + sklearn case")
    ap.add_argument("--model-dir", default=None, help="trained ml_outputs (default: train one)")
    ap.add_argument("--workdir", default="/tmp/propensity_bench")
    ap.add_argument("--no-save", action="store_true",
                    help="print only; do not write benchmarks/results/predict.json")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    os.makedirs(args.workdir, exist_ok=True)
    wd = args.workdir

    # ---- models (not timed) -------------------------------------------------------------
    grid = os.path.join(wd, "small.toml")
    with open(grid, "w") as f:
        f.write(SMALL_GRID)
    model_dir = args.model_dir or os.path.join(wd, "ml_outputs")
    manifest = ensure_model(model_dir)
    gb_dir = os.path.join(wd, "ml_outputs_gb_small")
    gb_manifest = ensure_model(gb_dir, ["--models", "gradient_boosting", "--grid", grid])
    mixed_train = os.path.join(wd, f"mixed_train_{args.train_rows}.csv")
    print(f"mixed training file {mixed_train} ...", flush=True)
    make_mixed_train(mixed_train, args.train_rows)
    mixed_dir = os.path.join(wd, f"ml_outputs_mixed_{args.train_rows}")
    mixed_manifest = ensure_model(mixed_dir, ["--train-file", mixed_train, "--models",
                                              "gradient_boosting", "--grid", grid])
    lgb_session = os.path.join(wd, "lgbm_session.txt")
    lgb_mixed = os.path.join(wd, f"lgbm_mixed_{args.train_rows}.txt")
    ensure_lightgbm(lgb_session, False)
    ensure_lightgbm(lgb_mixed, True, mixed_train)

    # ---- inputs --------------------------------------------------------------------------
    data = os.path.join(wd, f"testing_{args.rows}.csv")
    mixed = os.path.join(wd, f"mixed_{args.rows}.csv")
    for path, is_mixed in ((data, False), (mixed, True)):
        print(f"input {path} ...", flush=True)
        make_input(path, args.rows, mixed=is_mixed)
    size_mb = os.path.getsize(data) / 2**20
    mixed_mb = os.path.getsize(mixed) / 2**20
    peer_name = f"peer: pyarrow {args.peer_reader} -> LightGBM -> write_csv"

    # ---- timed sides ---------------------------------------------------------------------
    # (file, approach, fn, args, key); every side but the floor writes fargs[1]
    best = manifest["best_model"]
    sides = [
        ("session", f"ours: propensity.predict, best model ({best})", run_ours,
         (data, os.path.join(wd, "pred_ours.csv"), model_dir), "ours_best"),
        ("session", "ours: propensity.predict, gradient_boosting (small grid)", run_ours,
         (data, os.path.join(wd, "pred_ours_gb.csv"), gb_dir, "gradient_boosting"), "ours_gb"),
        ("session", peer_name, run_peer,
         (data, os.path.join(wd, "pred_peer.csv"), lgb_session, False, args.peer_reader), "peer"),
        ("session", "floor: pyarrow read_csv alone", run_floor, (data, False), "floor"),
        ("mixed", "ours: propensity.predict, gradient_boosting (small grid)", run_ours,
         (mixed, os.path.join(wd, "pred_ours_mixed.csv"), mixed_dir, "gradient_boosting"),
         "ours_gb"),
        ("mixed", peer_name, run_peer,
         (mixed, os.path.join(wd, "pred_peer_mixed.csv"), lgb_mixed, True, args.peer_reader),
         "peer"),
        ("mixed", "floor: pyarrow read_csv alone", run_floor, (mixed, True), "floor"),
    ]
    rows = []
    for file_kind, approach, fn, fargs, key in sides:
        print(f"timing [{file_kind}] {approach} ...", flush=True)
        _, secs, peak = timed(args.repeat, fn, *fargs)
        n = args.rows
        if fn is not run_floor:
            got = count_rows(fargs[1])
            if got != n:
                raise RuntimeError(f"{approach} wrote {got} rows, expected {n}")
        rows.append({"file": file_kind, "approach": approach, "key": key, "rows": n,
                     "seconds": secs, "rows_per_s": n / secs, "peak_rss_mb": peak})
    old = None
    if not args.skip_old:
        pkl = os.path.join(wd, "old_forest.pkl")
        if not os.path.exists(pkl):
            print("fitting the old scikit-learn forest ...", flush=True)
            fit_old_forest(pkl)
        print("timing [session] old pipeline ...", flush=True)
        old_out = os.path.join(wd, "pred_old.csv")
        old, osecs, opeak = timed(args.repeat, run_old, data, old_out, pkl, args.old_rows)
        if count_rows(old_out) != old["rows"]:
            raise RuntimeError("the old pipeline wrote a wrong number of rows")
        rows.append({"file": "session", "key": "old",
                     "approach": "old: pandas + pickled sklearn RF + to_csv "
                                 f"(first {old['rows']} rows)",
                     "rows": old["rows"], "seconds": osecs, "rows_per_s": old["rows"] / osecs,
                     "peak_rss_mb": opeak})
    mem = in_memory_latency(model_dir, data)
    mem_mixed = in_memory_latency(mixed_dir, mixed)

    # ---- ratios --------------------------------------------------------------------------
    def pick(file_kind, key):
        return next(r for r in rows if r["file"] == file_kind and r["key"] == key)

    for r in rows:
        peer = pick(r["file"], "peer")
        r["speed_vs_peer"] = r["rows_per_s"] / peer["rows_per_s"]
        r["rss_vs_peer"] = r["peak_rss_mb"] / peer["peak_rss_mb"]
    ratios = {}
    for file_kind in ("session", "mixed"):
        peer, floor = pick(file_kind, "peer"), pick(file_kind, "floor")
        for r in rows:
            if r["file"] == file_kind and r["key"].startswith("ours"):
                ratios[f"{file_kind}/{r['key']}"] = {
                    "rows_per_s_ours_over_peer": r["rows_per_s"] / peer["rows_per_s"],
                    "peak_rss_ours_over_peer": r["peak_rss_mb"] / peer["peak_rss_mb"],
                    "seconds_ours_over_floor": r["seconds"] / floor["seconds"]}

    print()
    print(f"{args.rows} rows; session file {size_mb:.0f} MB, mixed file {mixed_mb:.0f} MB; "
          f"{THREADS} threads; best of {args.repeat} isolated run(s) per side")
    print_table(rows, ["file", "approach", "rows", "seconds", "rows_per_s", "peak_rss_mb",
                       "speed_vs_peer", "rss_vs_peer"])
    print("(speed_vs_peer: rows/s of the row / rows/s of the peer on the same file, > 1 is "
          "faster than the peer; rss_vs_peer: peak RSS of the row / the peer's)")
    for k, v in ratios.items():
        print(f"ours/peer {k}: rows/s x{v['rows_per_s_ours_over_peer']:.2f}, peak RSS "
              f"x{v['peak_rss_ours_over_peer']:.2f}; ours/floor seconds "
              f"x{v['seconds_ours_over_floor']:.2f}")
    speedup = None
    if old is not None:
        speedup = pick("session", "ours_best")["rows_per_s"] / pick("session", "old")["rows_per_s"]
        print(f"speed-up over the old pipeline (rows/s): {speedup:.1f}x")
    for label, m in (("session, best model", mem), ("mixed, gradient boosting", mem_mixed)):
        print(f"in memory predict(10,000-row DataFrame, {label}): median "
              f"{m['median_seconds'] * 1e3:.2f} ms, {m['rows_per_s']:.3g} rows/s")
    mixed_info = _model_info(mixed_manifest, "gradient_boosting")
    print(f"mixed model: validation ROC-AUC {mixed_info['roc_auc']:.4f}, F1 "
          f"{mixed_info['validation_f1']:.4f}")
    if args.no_save:
        return
    path = save_results("predict", {
        "input": {"rows": args.rows, "megabytes": size_mb, "kind": "testing-style sessions"},
        "mixed_input": {"rows": args.rows, "megabytes": mixed_mb,
                        "kind": "the same sessions + basket_value, days_since_last_visit, "
                                "traffic_source", "training_rows": args.train_rows},
        "threads": THREADS, "repeat": args.repeat, "end_to_end": rows, "ratios": ratios,
        "speedup_rows_per_s": speedup,
        "ours_model": _model_info(manifest), "ours_gb_session": _model_info(gb_manifest),
        "ours_gb_mixed": mixed_info,
        "peer": {"reader": args.peer_reader, "lightgbm_params": LGBM_PARAMS,
                 "rounds": LGBM_ROUNDS, "threshold": 0.5},
        "old_model": None if old is None else
        "sklearn RandomForestClassifier(n_estimators=200, max_depth=20, "
        "min_samples_split=5, class_weight='balanced'), threshold 0.5",
        "in_memory_10k": mem, "in_memory_10k_mixed": mem_mixed,
        "versions": versions("numpy", "pandas", "sklearn", "pyarrow", "lightgbm"),
    })
    print(f"saved {path}")


if __name__ == "__main__":
    main()
