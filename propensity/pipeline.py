"""The training pipeline as a library: ``run_training(...) -> TrainingResults``.

Steps (SPEC.md "Training"): load and validate the data; stratified 80/20 split (seed
42); interaction features; for each model family a stratified k-fold grid search scored
by F1 with class balancing; the decision threshold that maximises out-of-fold F1;
probability calibration fitted on the out-of-fold scores; refit on the training split;
validation metrics; feature importance; outputs (models, manifest, metrics, plots,
test predictions), written into a temporary folder that replaces the output folder
only when everything succeeded.

Speed: binary session data has few distinct rows (thousands among 455k), so the rows
are compressed once into distinct patterns; every fold trains on (pattern, class)
rows weighted by their counts and scores each pattern once. Inside a grid, one fit of
the largest forest / the longest boosting run per fold scores every smaller
configuration through ``predict_proba_prefix``.
"""
import datetime
import itertools
import json
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import metrics as M
from ._fileio import file_sha256
from ._estimators import FAMILIES, estimator_class, prefix_params
from .datasets import make_sessions
from .calibration import make_calibrator
from .data import DataError, TrainingData, from_frame, load_test_csv, load_training_csv
from .features import InteractionFeatureTransformer
from .model import PropensityModel, build_profile, compress_rows
from .model_selection import stratified_kfold, stratified_split

logger = logging.getLogger(__name__)

EMBEDDED_ROWS = 455401
EMBEDDED_TEST_ROWS = 151655
EMBEDDED_SEED = 0

DEFAULT_GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0, 10.0], "l1_ratio": [0.1, 0.5, 0.9]},
    "random_forest": {"n_estimators": [100, 200], "max_depth": [10, 20, None],
                      "min_samples_split": [2, 5]},
    "gradient_boosting": {"n_estimators": [100, 200], "max_depth": [6, 10],
                          "learning_rate": [0.1, 0.01]},
}

# every file the pipeline can write (files of an old output folder not in this set are
# the user's and are carried over into the new folder)
def _output_names():
    names = {"manifest.json", "model_evaluation_results.json", "test_predictions.csv",
             "model_comparison.png", "roc_curves.png", "precision_recall_curves.png",
             "calibration.png", "detailed_evaluation_results.pkl", "ml_pipeline.log",
             "logistic_regression_coefficients.csv"}
    for fam in FAMILIES:
        names |= {f"{fam}_model.pkl", f"{fam}_model.propmodel",
                  f"{fam}_feature_importance.csv"}
    return names


OUTPUT_NAMES = _output_names()


class TrainingError(RuntimeError):
    """The run failed for a reason other than bad input data (e.g. output folder)."""


@dataclass
class TrainingResults:
    output_dir: str
    best_model: str
    metrics: dict
    models: dict
    best_params: dict
    timings: dict
    manifest: dict
    cv_results: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------------------
def _none(v):
    if isinstance(v, str) and v.strip().lower() in ("none", "null"):
        return None
    return v


def load_grid_file(path):
    """Read a TOML (tomllib) or JSON grid file: ``{family: {param: [values]}}``.
    The string "none" stands for None (TOML has no null)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the grid file ({exc.strerror or exc})") from None
    try:
        if path.lower().endswith(".json"):
            grid = json.loads(raw.decode("utf-8"))
        else:
            import tomllib
            grid = tomllib.loads(raw.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise DataError(f"{path}: not a valid grid file ({exc})") from None
    if not isinstance(grid, dict):
        raise DataError(f"{path}: a grid file maps model names to parameter grids")
    out = {}
    for fam, params in grid.items():
        if fam not in FAMILIES:
            raise DataError(f"{path}: unknown model {fam!r} (known: {', '.join(FAMILIES)})")
        if not isinstance(params, dict):
            raise DataError(f"{path}: grid of {fam!r} must map parameter names to lists")
        out[fam] = {k: [_none(x) for x in (v if isinstance(v, list) else [v])]
                    for k, v in params.items()}
        for k, v in out[fam].items():
            if not v:
                raise DataError(f"{path}: grid of {fam!r} has no value for {k!r}")
    return out


def merge_grids(overrides=None):
    grids = {fam: {k: list(v) for k, v in g.items()} for fam, g in DEFAULT_GRIDS.items()}
    for fam, g in (overrides or {}).items():
        grids[fam].update(g)
    return grids


def expand_grid(grid):
    keys = sorted(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


# ---------------------------------------------------------------------------------------
# compressed folds
# ---------------------------------------------------------------------------------------
@dataclass
class Patterns:
    """Rows of the (feature-engineered) matrix as distinct patterns."""
    Z: np.ndarray          # distinct rows (or all rows when not compressible)
    inv: np.ndarray        # row -> pattern

    def weighted(self, rows, y):
        """(pattern, class) rows of ``rows`` with their counts: (Z, y, w, pattern_ids)."""
        n_pat = self.Z.shape[0]
        key = self.inv[rows] * 2 + y[rows]
        counts = np.bincount(key, minlength=2 * n_pat)
        nz = np.flatnonzero(counts)
        pat = nz // 2
        return self.Z[pat], (nz % 2).astype(np.uint8), counts[nz].astype(np.float64), pat


def make_patterns(X_raw, transformer):
    comp = compress_rows(X_raw)
    if comp is None:
        Z = transformer.transform(X_raw)
        return Patterns(Z, np.arange(Z.shape[0], dtype=np.int64))
    uniq, inv = comp
    return Patterns(transformer.transform(uniq), inv)


@dataclass
class Fold:
    Z_train: np.ndarray
    y_train: np.ndarray
    w_train: np.ndarray
    Z_val: np.ndarray
    y_val: np.ndarray
    w_val: np.ndarray


def make_folds(patterns, rows, y, n_splits, seed):
    """Stratified k folds of ``rows`` (indices into y). Validation parts are weighted
    patterns (each distinct row scored once); training parts are the plain rows (our
    estimators compress internally and keep the per-row counts the random forest's
    bootstrap needs)."""
    folds = []
    for tr, va in stratified_kfold(y[rows], n_splits, seed):
        Zt, yt, wt = training_rows(patterns, rows[tr], y)
        Zv, yv, wv, _ = patterns.weighted(rows[va], y)
        folds.append(Fold(Zt, yt, wt, Zv, yv, wv))
    return folds


def training_rows(patterns, rows, y):
    return np.ascontiguousarray(patterns.Z[patterns.inv[rows]]), y[rows], None


# ---------------------------------------------------------------------------------------
# grid search (one function for every family)
# ---------------------------------------------------------------------------------------
def _largest(param, values):
    if param == "n_estimators":
        return max(values)
    if param == "max_depth":
        return None if None in values else max(values)
    if param == "min_samples_split":
        return min(values)
    raise ValueError(param)


def _base_params(family, cls, y, w, seed, n_jobs, n_distinct=None):
    names = set(cls._get_param_names())
    if w is None:
        w = np.ones(y.shape[0])
    params = {}
    if family == "gradient_boosting":
        pos = float(w[y == 1].sum())
        params["scale_pos_weight"] = float(w[y == 0].sum()) / pos
    else:
        params["class_weight"] = "balanced"
    if family == "logistic_regression":
        params.update(max_iter=1000, tol=1e-4)
    if "random_state" in names:
        params["random_state"] = seed
    if "n_jobs" in names:
        params["n_jobs"] = n_jobs
        if family == "logistic_regression" and n_distinct is not None and n_distinct < 50_000:
            # a few thousand distinct rows: threads cost more than they save (measured
            # 0.04s with 1 thread vs 0.65s with 2 on 6.7k x 33 rows)
            params["n_jobs"] = 1
    return {k: v for k, v in params.items() if k in names}


def grid_search(estimator_cls, folds, grid, base_params, *, family="model", progress=None):
    """Stratified k-fold grid search scored by F1 over weighted (compressed) folds.

    Configurations that differ only in prefix parameters (``prefix_params(cls)``, e.g.
    n_estimators, max_depth) share one fit per fold of the largest of them and are scored
    with ``predict_proba_prefix``. Returns a dict with ``best_params``, ``cv_results``
    (per configuration: mean F1 at 0.5 over the folds, out-of-fold F1 at the best
    threshold) and ``oof`` (best configuration's out-of-fold scores, labels, weights).
    """
    valid = set(estimator_cls._get_param_names())
    for k in grid:
        if k not in valid:
            raise DataError(f"grid of {family}: {estimator_cls.__name__} has no parameter "
                            f"{k!r} (valid: {sorted(valid)})")
    configs = expand_grid(grid)
    prefix = [p for p in prefix_params(estimator_cls) if p in grid and len(grid[p]) > 1]
    groups = {}
    for ci, cfg in enumerate(configs):
        key = tuple((k, repr(v)) for k, v in sorted(cfg.items()) if k not in prefix)
        groups.setdefault(key, []).append(ci)
    scores = [[None] * len(folds) for _ in configs]
    for fi, fold in enumerate(folds):
        for members in groups.values():
            fit_params = dict(configs[members[0]])
            for p in prefix:
                fit_params[p] = _largest(p, [configs[ci][p] for ci in members])
            t0 = time.perf_counter()
            est = estimator_cls(**base_params, **fit_params)
            est.fit(fold.Z_train, fold.y_train, sample_weight=fold.w_train)
            for ci in members:
                if prefix:
                    kw = {p: configs[ci][p] for p in prefix}
                    proba = est.predict_proba_prefix(fold.Z_val, **kw)
                else:
                    proba = est.predict_proba(fold.Z_val)
                scores[ci][fi] = np.asarray(proba)[:, 1]
            logger.debug("%s fold %d: fit %s in %.2fs, scored %d configuration(s)",
                         family, fi, fit_params, time.perf_counter() - t0, len(members))
            if progress is not None:
                progress.update(1)
    y_oof = np.concatenate([f.y_val for f in folds])
    w_oof = np.concatenate([f.w_val for f in folds])
    results = []
    for ci, cfg in enumerate(configs):
        f1_05 = [M.f1_score(f.y_val, s >= 0.5, f.w_val) for f, s in zip(folds, scores[ci])]
        oof = np.concatenate(scores[ci])
        thr, f1_best = M.best_f1_threshold(y_oof, oof, w_oof)
        results.append({"params": cfg, "mean_f1_at_0.5": float(np.mean(f1_05)),
                        "fold_f1_at_0.5": [float(v) for v in f1_05],
                        "oof_f1_best_threshold": f1_best, "oof_raw_threshold": thr})
    # select by the F1 of the deployed rule (tuned threshold); ties -> F1 at 0.5, then order
    best = max(range(len(configs)),
               key=lambda ci: (round(results[ci]["oof_f1_best_threshold"], 10),
                               round(results[ci]["mean_f1_at_0.5"], 10), -ci))
    for ci, r in enumerate(results):
        r["rank"] = 1 + sum(
            (results[o]["oof_f1_best_threshold"], results[o]["mean_f1_at_0.5"])
            > (r["oof_f1_best_threshold"], r["mean_f1_at_0.5"]) for o in range(len(configs)))
    return {"best_params": configs[best], "best_index": best, "cv_results": results,
            "oof": (np.concatenate(scores[best]), y_oof, w_oof)}


def count_fits(estimator_cls, grid, n_folds):
    prefix = [p for p in prefix_params(estimator_cls) if p in grid and len(grid[p]) > 1]
    rest = [len(v) for k, v in grid.items() if k not in prefix]
    return int(np.prod(rest, dtype=np.int64)) * n_folds


# ---------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------
def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _clean_stale(output_dir):
    """Remove the temporary folders of runs that died (their PID is in the name). A run
    killed between its two renames left the previous outputs only in its ``.old-`` folder:
    that folder is renamed back instead."""
    parent, base = os.path.split(output_dir)
    pattern = re.compile(rf"^\.{re.escape(base)}\.(tmp|old)-(\d+)-")
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m is None or _pid_alive(int(m.group(2))):
            continue
        path = os.path.join(parent, name)
        if m.group(1) == "old" and not os.path.exists(output_dir):
            os.rename(path, output_dir)
            logger.warning("restored %s from the folder of an interrupted run", output_dir)
        else:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, left by an interrupted run", path)


def _prepare_tmp(output_dir):
    output_dir = os.path.abspath(os.fspath(output_dir))
    parent = os.path.dirname(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise TrainingError(f"output folder {output_dir} exists and is not a folder")
    try:
        os.makedirs(parent, exist_ok=True)
        _clean_stale(output_dir)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-{os.getpid()}-",
                               dir=parent)
    except OSError as exc:
        raise TrainingError(f"cannot write the output folder {output_dir}: "
                            f"{exc.strerror or exc}") from None
    if os.path.isdir(output_dir) and not os.access(output_dir, os.W_OK | os.X_OK):
        shutil.rmtree(tmp, ignore_errors=True)
        raise TrainingError(f"cannot write the output folder {output_dir}: permission denied")
    return output_dir, tmp


def _swap_in(tmp, output_dir):
    """Replace ``output_dir`` by ``tmp``; the user's own files in the old folder are kept."""
    old = None
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            src = os.path.join(output_dir, name)
            if name not in OUTPUT_NAMES and not name.startswith(".") \
                    and not os.path.exists(os.path.join(tmp, name)):
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(tmp, name))
                else:
                    shutil.copy2(src, os.path.join(tmp, name))
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-{os.getpid()}-",
                               dir=os.path.dirname(output_dir))
        os.rmdir(old)
        os.rename(output_dir, old)
    try:
        os.rename(tmp, output_dir)
    except BaseException:
        if old is not None:
            os.rename(old, output_dir)
        raise
    os.chmod(output_dir, 0o755 & ~_umask())
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def _write_importances(folder, family, model):
    names = model.feature_names_out_
    est = model.estimator_
    if family == "logistic_regression":
        coef = np.asarray(est.coef_, dtype=np.float64).ravel()
        df = pd.DataFrame({"feature": names, "coefficient": coef, "abs_coefficient": np.abs(coef)})
        df = df.sort_values("abs_coefficient", ascending=False, kind="mergesort")
        name = "logistic_regression_coefficients.csv"
    else:
        imp = np.asarray(est.feature_importances_, dtype=np.float64).ravel()
        df = pd.DataFrame({"feature": names, "importance": imp})
        df = df.sort_values("importance", ascending=False, kind="mergesort")
        name = f"{family}_feature_importance.csv"
    df.to_csv(os.path.join(folder, name), index=False)
    return name


def _write_predictions(path, ids, proba, threshold, timestamp):
    n = proba.shape[0]
    if ids is None:
        ids = np.arange(n)
    pred = (proba >= threshold).astype(np.int64)
    df = pd.DataFrame({"UserID": ids, "predicted_ordered": pred,
                       "purchase_probability": np.round(proba, 6),
                       "prediction_timestamp": timestamp})
    df.to_csv(path, index=False)


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _progress_bar(enabled, total, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="fit")


def run_training(train_file=None, test_file=None, output_dir="ml_outputs", *,
                 target="ordered", id_column="UserID", models=FAMILIES, cv_folds=3, seed=42,
                 n_jobs=None, grid=None, calibration="isotonic", progress=False,
                 embedded_rows=EMBEDDED_ROWS, embedded_test_rows=EMBEDDED_TEST_ROWS):
    """Run the whole training pipeline; returns :class:`TrainingResults`.

    ``grid`` overrides the default grids: ``{family: {param: [values]}}`` or a path to a
    TOML/JSON grid file. Raises :class:`DataError` for unusable data and
    :class:`TrainingError` when the outputs cannot be written; in both cases the
    previous output folder is left untouched.
    """
    t_start = time.perf_counter()
    timings = {}
    models = list(models)
    unknown = [m for m in models if m not in FAMILIES]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(FAMILIES)}")
    models = [m for m in FAMILIES if m in models]
    if isinstance(grid, (str, os.PathLike)):
        grid = load_grid_file(grid)
    grids = merge_grids(grid)
    output_dir, tmp = _prepare_tmp(output_dir)
    log_handler = logging.FileHandler(os.path.join(tmp, "ml_pipeline.log"), encoding="utf-8")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log_handler.setLevel(logging.INFO)
    pkg_logger = logging.getLogger("propensity")
    old_level = pkg_logger.level
    pkg_logger.addHandler(log_handler)
    if pkg_logger.getEffectiveLevel() > logging.INFO:
        pkg_logger.setLevel(logging.INFO)
    try:
        results = _run(train_file, test_file, output_dir, tmp, target, id_column, models,
                       cv_folds, seed, n_jobs, grids, calibration, progress, embedded_rows,
                       embedded_test_rows, timings, t_start)
        logger.info("outputs written to %s (%.2fs in all)", output_dir,
                    time.perf_counter() - t_start)
        pkg_logger.removeHandler(log_handler)
        log_handler.close()
        _swap_in(tmp, output_dir)
        return results
    except BaseException:
        pkg_logger.removeHandler(log_handler)
        log_handler.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        pkg_logger.setLevel(old_level)


def _run(train_file, test_file, output_dir, tmp, target, id_column, models, cv_folds, seed,
         n_jobs, grids, calibration, progress, embedded_rows, embedded_test_rows, timings,
         t_start):
    t0 = time.perf_counter()
    # ---- data ------------------------------------------------------------------------
    if isinstance(train_file, TrainingData):  # already loaded (e.g. on a Dask cluster)
        data = train_file
    elif train_file is None:
        frame = make_sessions(embedded_rows, seed=EMBEDDED_SEED)
        data = from_frame(frame, target=target, id_column=id_column,
                          source="embedded stand-in")
        del frame
        logger.info("training on the embedded stand-in: %d sessions (seed %d), %.2f%% positive",
                    data.n_rows, EMBEDDED_SEED, 100 * data.y.mean())
    else:
        data = load_training_csv(train_file, target=target, id_column=id_column)
    fingerprint = data.fingerprint()
    timings["load"] = time.perf_counter() - t0

    # ---- split + features --------------------------------------------------------------
    t0 = time.perf_counter()
    y = data.y
    train_rows, val_rows = stratified_split(y, 0.2, seed)
    if min(y[train_rows].sum(), (1 - y[train_rows]).sum()) < cv_folds:
        raise DataError(f"{data.source}: the training split has {int(y[train_rows].sum())} "
                        f"positive row(s); every one of the {cv_folds} folds needs positives "
                        f"and negatives")
    X_raw, _ = _as_matrix(data.X)
    with warnings.catch_warnings():  # skipped features are logged by the transformer
        warnings.simplefilter("ignore", UserWarning)
        transformer = InteractionFeatureTransformer().fit(data.X)
    patterns = make_patterns(X_raw, transformer)
    feature_names = [str(c) for c in transformer.get_feature_names_out()]
    logger.info("split: %d training rows, %d validation rows; %d features; %d distinct rows",
                len(train_rows), len(val_rows), len(feature_names), patterns.Z.shape[0])
    timings["prepare"] = time.perf_counter() - t0

    # ---- per family: grid search, calibration, threshold, refit, evaluation -------------
    total_fits = sum(count_fits(estimator_class(f), grids[f], cv_folds) + 1 for f in models)
    bar = _progress_bar(progress, total_fits, "training")
    fitted, evaluation, detailed, cv_all, best_params = {}, {}, {}, {}, {}
    folds = make_folds(patterns, train_rows, y, cv_folds, seed)
    Zt, yt, wt = training_rows(patterns, train_rows, y)
    try:
        for fam in models:
            t0 = time.perf_counter()
            cls = estimator_class(fam)
            if bar is not None:
                bar.set_description(fam.replace("_", " "))
            base = _base_params(fam, cls, yt, wt, seed, n_jobs, patterns.Z.shape[0])
            gs = grid_search(cls, folds, grids[fam], base, family=fam, progress=bar)
            oof, y_oof, w_oof = gs["oof"]
            calibrator = None
            oof_cal = oof
            if calibration is not None:
                calibrator = make_calibrator(calibration).fit(oof, y_oof, w_oof)
                oof_cal = np.clip(calibrator.transform(oof), 0.0, 1.0)
            threshold, oof_f1 = M.best_f1_threshold(y_oof, oof_cal, w_oof)
            est = cls(**base, **gs["best_params"]).fit(Zt, yt, sample_weight=wt)
            if bar is not None:
                bar.update(1)
            # score every pattern once: training profile + validation
            raw_pat = np.asarray(est.predict_proba(patterns.Z))[:, 1]
            cal_pat = raw_pat if calibrator is None else np.clip(calibrator.transform(raw_pat), 0, 1)
            train_scores = cal_pat[patterns.inv[train_rows]]
            profile = build_profile(data.X.iloc[train_rows], data.binary_columns,
                                    data.input_columns, train_scores)
            model = PropensityModel.from_parts(
                input_columns=data.input_columns, binary_columns=data.binary_columns,
                encoding=data.encoding, transformer=transformer, estimator=est,
                calibrator=calibrator, threshold=threshold, training_profile=profile,
                calibration=calibration, cv=cv_folds, random_state=seed, classes=data.classes)
            raw_val = raw_pat[patterns.inv[val_rows]]
            proba_val = cal_pat[patterns.inv[val_rows]]
            y_val = y[val_rows]
            rec = M.binary_metrics(y_val, proba_val, threshold)
            rec["brier_uncalibrated"] = M.brier_score_loss(y_val, raw_val)
            raw05 = (raw_val >= 0.5)
            rec["f1_uncalibrated_at_0.5"] = M.f1_score(y_val, raw05)
            rec["oof_f1"] = oof_f1
            rec["best_params"] = {k: v for k, v in gs["best_params"].items()}
            rec["n_configurations"] = len(gs["cv_results"])
            rec["seconds"] = time.perf_counter() - t0
            evaluation[fam] = rec
            pred_val = (proba_val >= threshold).astype(np.uint8)
            detailed[fam] = {
                "metrics": rec, "predictions": pred_val, "probabilities": proba_val,
                "raw_scores": raw_val, "y_true": y_val, "validation_index": val_rows,
                "classification_report": M.classification_report(
                    y_val, pred_val, target_names=("not ordered", "ordered")),
                "cv_results": gs["cv_results"], "best_params": gs["best_params"],
                "oof_scores": oof, "oof_calibrated": oof_cal, "oof_labels": y_oof,
                "oof_weights": w_oof,
            }
            fitted[fam] = model
            cv_all[fam] = gs["cv_results"]
            best_params[fam] = gs["best_params"]
            timings[fam] = rec["seconds"]
            logger.info("%s: best %s; validation F1 %.4f (precision %.4f, recall %.4f), "
                        "ROC-AUC %.4f, threshold %.3f, Brier %.4f -> %.4f calibrated (%.2fs)",
                        fam, gs["best_params"], rec["f1"], rec["precision"], rec["recall"],
                        rec["roc_auc"], threshold, rec["brier_uncalibrated"], rec["brier"],
                        rec["seconds"])
    finally:
        if bar is not None:
            bar.close()
    best = max(models, key=lambda m: (evaluation[m]["f1"], evaluation[m]["roc_auc"]))
    logger.info("best model by validation F1: %s (%.4f)", best, evaluation[best]["f1"])

    # ---- outputs ------------------------------------------------------------------------
    t0 = time.perf_counter()
    now = datetime.datetime.now(datetime.timezone.utc)
    for fam, model in fitted.items():
        doc = model.to_bytes()
        with open(os.path.join(tmp, f"{fam}_model.propmodel"), "wb") as f:
            f.write(doc)
        with open(os.path.join(tmp, f"{fam}_model.pkl"), "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        _write_importances(tmp, fam, model)
    with open(os.path.join(tmp, "model_evaluation_results.json"), "w") as f:
        json.dump(_jsonable(evaluation), f, indent=2)
        f.write("\n")
    with open(os.path.join(tmp, "detailed_evaluation_results.pkl"), "wb") as f:
        pickle.dump(detailed, f, protocol=pickle.HIGHEST_PROTOCOL)
    timings["save"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _predict_test(fitted[best], test_file, tmp, id_column, embedded_test_rows, now)
    timings["predict_test"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from ._plots import write_plots
    write_plots(tmp, detailed, evaluation)
    timings["plots"] = time.perf_counter() - t0

    from . import __version__
    manifest = {
        "format": "propensity-manifest", "format_version": 1, "package_version": __version__,
        "created": now.isoformat(timespec="seconds"), "best_model": best,
        "models": {fam: {"model_file": f"{fam}_model.propmodel", "pickle_file": f"{fam}_model.pkl",
                         "f1": evaluation[fam]["f1"], "roc_auc": evaluation[fam]["roc_auc"],
                         "threshold": evaluation[fam]["threshold"]} for fam in models},
        "files": {name: file_sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))
                  if name not in ("manifest.json", "ml_pipeline.log")},
        "training_data": {"source": data.source, "n_rows": data.n_rows,
                          "fingerprint": fingerprint, "target": target,
                          "id_column": id_column},
    }
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    timings["total"] = time.perf_counter() - t_start
    logger.info("timings: %s", {k: round(v, 3) for k, v in timings.items()})
    return TrainingResults(output_dir=output_dir, best_model=best, metrics=evaluation,
                           models=fitted, best_params=best_params, timings=timings,
                           manifest=manifest, cv_results=cv_all)


def _as_matrix(X):
    from ._validation import check_X
    return check_X(X)


def _predict_test(model, test_file, folder, id_column, embedded_test_rows, now):
    if test_file is None:
        frame = make_sessions(embedded_test_rows, seed=EMBEDDED_SEED, testing=True)
        missing = [c for c in model.input_columns_ if c not in frame.columns]
        if missing:  # a generic training file without a test file: nothing to score
            logger.warning("no --test-file given and the embedded test data lacks %s; "
                           "test_predictions.csv holds no rows", missing)
            pd.DataFrame(columns=["UserID", "predicted_ordered", "purchase_probability",
                                  "prediction_timestamp"]).to_csv(
                os.path.join(folder, "test_predictions.csv"), index=False)
            return
        ids = frame[id_column].to_numpy() if id_column in frame.columns else None
        X = frame[model.input_columns_]
        source = "embedded testing-style data"
    else:
        X, ids = load_test_csv(test_file, model.input_columns_, model.encoding_, id_column)
        source = test_file
    try:
        proba = model.predict_proba(X)[:, 1]
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None
    _write_predictions(os.path.join(folder, "test_predictions.csv"), ids, proba,
                       model.threshold_, now.isoformat(timespec="seconds"))
    logger.info("predicted %d rows of %s with %s: %d predicted to order", len(proba), source,
                model.model_name_, int((proba >= model.threshold_).sum()))


def _jsonable(v):
    from ._modelio import jsonable
    return jsonable(v)
