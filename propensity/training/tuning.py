"""Model selection on weighted distinct rows: grids, folds, grid search, and the
calibration and threshold tuned on out-of-fold scores.

Binary session data has few distinct rows (thousands among 455k), so the rows are
compressed once into distinct patterns; every fold trains on (pattern, class) rows
weighted by their counts and scores each pattern once. Inside a grid, one fit of the
largest forest / the longest boosting run per fold scores every smaller configuration
through ``predict_proba_prefix``. The training run (:mod:`propensity.pipeline`) and
:meth:`PropensityModel.fit` both use the one recipe here (:func:`fit_with_oof`,
:func:`tune_on_oof`).
"""
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from ..learn import metrics as M
from ..learn.compress import distinct_rows
from ..learn.estimators import FAMILIES, prefix_params
from ..learn.calibration import make_calibrator
from ..errors import DataError
from ..learn.model_selection import stratified_kfold

logger = logging.getLogger(__name__)

DEFAULT_GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0, 10.0], "l1_ratio": [0.1, 0.5, 0.9]},
    "random_forest": {"n_estimators": [100, 200], "max_depth": [10, 20, None],
                      "min_samples_split": [2, 5]},
    "gradient_boosting": {"n_estimators": [100, 200], "max_depth": [6, 10],
                          "learning_rate": [0.1, 0.01]},
}


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
    comp = distinct_rows(X_raw)
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


def base_params(family, cls, y, w, seed, n_jobs, n_distinct=None):
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


def tune_on_oof(oof, y, w, calibration):
    """The calibration fitted on out-of-fold scores and the threshold of best out-of-fold
    F1 on the calibrated scores: ``(calibrator or None, threshold, f1, calibrated oof)``."""
    calibrator, oof_cal = None, oof
    if calibration is not None:
        calibrator = make_calibrator(calibration).fit(oof, y, w)
        oof_cal = np.clip(calibrator.transform(oof), 0.0, 1.0)
    threshold, f1 = M.best_f1_threshold(y, oof_cal, w)
    return calibrator, threshold, f1, oof_cal


def fit_with_oof(estimator, X_raw, transformer, y, cv, seed, calibration):
    """The recipe of one model: out-of-fold scores over ``cv`` stratified folds, the
    calibration and threshold tuned on them, the refit on all rows. Returns
    ``(fitted estimator, calibrator, threshold)``."""
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    patterns = make_patterns(X_raw, transformer)
    rows = np.arange(y.shape[0])
    gs = grid_search(cls, make_folds(patterns, rows, y, cv, seed), {}, params)
    calibrator, threshold, _, _ = tune_on_oof(*gs["oof"], calibration)
    Zt, yt, wt = training_rows(patterns, rows, y)
    return cls(**params).fit(Zt, yt, sample_weight=wt), calibrator, threshold


def count_fits(estimator_cls, grid, n_folds):
    prefix = [p for p in prefix_params(estimator_cls) if p in grid and len(grid[p]) > 1]
    rest = [len(v) for k, v in grid.items() if k not in prefix]
    return int(np.prod(rest, dtype=np.int64)) * n_folds
