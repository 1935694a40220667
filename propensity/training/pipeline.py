"""The training pipeline as a library: ``run_training(...) -> TrainingResults``.

Steps (SPEC.md "Training"): load and validate the data; stratified 80/20 split (seed
42); interaction features; for each model family a stratified k-fold grid search scored
by F1 with class balancing; probability calibration fitted on the out-of-fold scores;
the decision threshold of the targeting policy on the calibrated out-of-fold scores
(:mod:`propensity.training.campaign`; by default best F1); refit on the training split;
validation metrics, lift and gains, the policy's outcome; feature importance; outputs
(models, manifest, metrics, plots, report.html, test predictions), written into a temporary folder that replaces the output folder
only when everything succeeded.

Model selection (grids, folds on weighted distinct rows, grid search, calibration and
threshold) lives in :mod:`propensity.tuning`; the output folder's temporary-and-swap in
:mod:`propensity._fileio`.
"""
from __future__ import annotations

import contextlib
import copyreg
import datetime
import errno
import json
import logging
import os
import pickle
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from .._core_loader import _core
from .._typing import PathLike

import numpy as np
import pandas as pd

from ..io import manifest as _manifest
from ..learn import metrics as M
from ..learn.estimators import FAMILIES, estimator_class
from ..io.fileio import output_error, prepare_output_folder, refuse_same_files, swap_in_folder
from ..io.data import DataError, TrainingData
from ..io.table import TrainingTable, read_training_file, table_from_encoded, table_from_frame
from ..datasets import make_sessions
from ..errors import OutputError, TrainingError
from ..scoring.model import PropensityModel, build_profile
from . import campaign
from .tuning import (DEFAULT_GRIDS, TableFeatures, TableFolds,  # noqa: F401  (DEFAULT_GRIDS: interface)
                     base_params, check_parts, count_fits, evenly_spaced, grid_search,
                     load_grid_file,
                     merge_grids, tune_on_oof)

logger = logging.getLogger(__name__)

EMBEDDED_ROWS = 455401
EMBEDDED_TEST_ROWS = 151655
EMBEDDED_SEED = 0

# every file the pipeline can write (files of an old output folder not in this set are
# the user's and are carried over into the new folder)
def _output_names():
    names = {"manifest.json", "model_evaluation_results.json", "test_predictions.csv",
             "model_comparison.png", "roc_curves.png", "precision_recall_curves.png",
             "calibration.png", "detailed_evaluation_results.pkl", "ml_pipeline.log",
             "logistic_regression_coefficients.csv", "shap_summary.png", "lift_table.csv",
             "cumulative_gains.png", "lift_curve.png", "profit_curve.png", "report.html"}
    for fam in FAMILIES:
        names |= {f"{fam}_model.pkl", f"{fam}_model.propmodel",
                  f"{fam}_feature_importance.csv", f"{fam}_shap_importance.csv"}
    return names


OUTPUT_NAMES = _output_names()




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
# outputs
# ---------------------------------------------------------------------------------------
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
    with _output(folder, name, "w") as out:
        df.to_csv(out, index=False)
    return name


SHAP_WORK = 7.5e7         # TreeSHAP work (trees._shap_work_per_row units) a model's SHAP
                          # importance may take: about 0.25 s of one core (0.12 s on two);
                          # rows beyond it are sampled
SHAP_MIN_ROWS = 25        # a sample takes at least this many draws, if they fit SHAP_WORK_MAX:
                          # measured on the 10M file's forest (200 trees of depth 20), 25
                          # draws give the same top five features as 400 draws and put the
                          # mean |SHAP| of the top ten within 6 % of theirs
SHAP_WORK_MAX = 4e8       # the most work SHAP_MIN_ROWS draws may take (about 1.3 s of one
                          # core); a model dearer than that gets no SHAP importance
SHAP_MAX_DRAWS = 2000     # a sample takes at most this many draws


def _systematic_sample(w, draws):
    """(stored rows, times drawn) of a systematic sample of ``draws`` draws by weight w
    (deterministic, each row drawn in proportion to the rows it stands for)."""
    c = np.cumsum(w)
    at = np.searchsorted(c, (np.arange(draws) + 0.5) * (c[-1] / draws), side="right")
    return np.unique(np.minimum(at, w.shape[0] - 1), return_counts=True)


def _draws_within(w, rows):
    """The most draws (up to 64 x rows) of a systematic sample by weight w that fall on at
    most ``rows`` distinct stored rows (a heavy row drawn many times is explained once)."""
    lo, hi = rows, 64 * rows
    if _systematic_sample(w, hi)[0].shape[0] <= rows:
        return hi
    while hi - lo > 1:  # lo fits, hi does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _systematic_sample(w, mid)[0].shape[0] <= rows else (lo, mid)
    return lo


def shap_importance(folds, est, part, name=None):
    """Mean |SHAP value| of each of the estimator's features over the rows of ``part``
    (the validation split), each stored row weighted by the rows it stands for, its values
    exact (:meth:`shap_values`), chunk by chunk. Where explaining every stored row would
    exceed SHAP_WORK, a systematic sample of the rows by weight (:func:`_systematic_sample`)
    with as many draws as fall on the distinct rows that fit it, at most SHAP_MAX_DRAWS;
    where that sample has fewer than SHAP_MIN_ROWS draws (a forest of 200 trees of depth
    20 takes about 40 ms a row), SHAP_MIN_ROWS draws if they take at most SHAP_WORK_MAX,
    else None, logged under ``name``. Returns (values, rows explained, of rows) or None."""
    index = part.index
    w = part.row_weights()
    work = est._shap_work_per_row() if hasattr(est, "_shap_work_per_row") else 0.0
    affordable = int(SHAP_WORK // work) if work > 0 else index.shape[0]
    if affordable < index.shape[0]:
        draws = min(_draws_within(w, affordable), SHAP_MAX_DRAWS) if affordable > 0 else 0
        if draws < min(SHAP_MIN_ROWS, index.shape[0]):
            if work * SHAP_MIN_ROWS > SHAP_WORK_MAX:
                logger.info("%s: no SHAP importance: exact TreeSHAP of its trees takes about "
                            "%.2g work units a row and %d rows may take %.2g; model.explain() "
                            "still explains any customer", name or type(est).__name__, work,
                            SHAP_MIN_ROWS, SHAP_WORK_MAX)
                return None
            draws = SHAP_MIN_ROWS
        pick, times = _systematic_sample(w, draws)
        index, w = index[pick], times.astype(np.float64)
    total = None
    step = folds.features.chunk
    for a in range(0, index.shape[0], step):
        phi = est.shap_values(folds.features.Z(index[a:a + step]))[:, :-1]
        part_sum = w[a:a + step] @ np.abs(phi)
        total = part_sum if total is None else total + part_sum
    return total / max(float(w.sum()), 1e-300), int(index.shape[0]), int(part.index.shape[0])


def _write_shap_importance(folder, family, model, values):
    df = pd.DataFrame({"feature": model.feature_names_out_, "mean_abs_shap": values})
    df = df.sort_values("mean_abs_shap", ascending=False, kind="mergesort")
    name = f"{family}_shap_importance.csv"
    with _output(folder, name, "w") as out:
        df.to_csv(out, index=False)
    return name


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _progress_bar(enabled, total, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="fit")


@dataclass
class TrainingConfig:
    """What a training run is asked to do (the arguments of :func:`run_training`)."""
    train_file: object = None           # path, TrainingTable, TrainingData, or None: the stand-in
    test_file: object = None
    output_dir: PathLike = "ml_outputs"
    target: str = "ordered"
    id_column: str = "UserID"
    models: tuple = FAMILIES
    cv_folds: int = 3
    seed: int = 42
    n_jobs: int | None = None
    grid: object = None                 # {family: {param: [values]}} or a grid file
    calibration: str = "isotonic"
    progress: bool = False
    sep: str = ","                      # delimiter of the training and test files
    encoding: str = "utf-8"             # their text encoding (read as UTF-8)
    embedded_rows: int = EMBEDDED_ROWS
    embedded_test_rows: int = EMBEDDED_TEST_ROWS
    policy: object = None               # campaign.TargetPolicy, a dict of its fields, or None (f1)
    categorical: str = "auto"           # text columns: "auto" native categories, "onehot"
    category_columns: tuple = ()        # columns read as categories even when numeric

    def checked(self):
        """The models in the documented order and the merged grids; ValueError /
        DataError for unknown models, a bad grid file, a missing train or test file (before
        any work: a missing test file used to fail only after training) or an id column
        that is the target."""
        models = list(self.models)
        unknown = [m for m in models if m not in FAMILIES]
        if unknown or not models:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(FAMILIES)}")
        if self.id_column is not None and self.id_column == self.target:
            raise DataError(f"--id-column and --target both name {self.target!r}: the id "
                            f"column cannot be the target")
        for label, path in (("--train-file", self.train_file), ("--test-file", self.test_file)):
            if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
                raise DataError(f"{label} {os.fspath(path)!r} is a folder, not a file")
            if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
                raise DataError(f"{label} {os.fspath(path)!r} not found")
        try:
            self.policy = campaign.as_policy(self.policy)
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc)) from None
        from ..schema import CATEGORICAL_MODES
        if self.categorical not in CATEGORICAL_MODES:
            raise DataError(f"categorical must be one of {', '.join(CATEGORICAL_MODES)}, got "
                            f"{self.categorical!r}")
        if isinstance(self.category_columns, str):
            raise DataError("category_columns must be a list of column names, not a string")
        self.category_columns = tuple(str(c) for c in self.category_columns)
        for c in self.category_columns:
            if c in (self.target, self.id_column):
                raise DataError(f"--categorical-columns names {c!r}, the "
                                f"{'target' if c == self.target else 'id'} column")
        grid = load_grid_file(self.grid) if isinstance(self.grid, (str, os.PathLike)) \
            else self.grid
        return [m for m in FAMILIES if m in models], merge_grids(grid)


@dataclass
class _Prepared:
    """The data of a run once read into its table and featurised."""
    table: TrainingTable
    fingerprint: str
    features: TableFeatures
    folds: TableFolds


@dataclass
class _Fitted:
    """One model family's outcome: the model, its evaluation record and details."""
    model: PropensityModel
    record: dict
    details: dict
    search: dict


def run_training(train_file: PathLike | TrainingTable | TrainingData | None = None,
                 test_file: PathLike | TrainingTable | TrainingData | None = None,
                 output_dir: PathLike = "ml_outputs", **options: Any) -> TrainingResults:
    """Run the whole training pipeline; returns :class:`TrainingResults`.

    Options are the fields of :class:`TrainingConfig` (target, id_column, models,
    cv_folds, seed, n_jobs, grid, calibration, progress, sep, encoding, embedded_rows,
    embedded_test_rows, policy: a :class:`~propensity.training.campaign.TargetPolicy` or a
    dict of its fields, categorical: "auto" (text columns become native category
    features of every model, the default) or "onehot" (one-hot columns, at most 1,000
    values), category_columns: columns read as categories even when they hold numbers). ``grid`` overrides the default grids: ``{family: {param:
    [values]}}`` or a path to a TOML/JSON grid file. Raises :class:`DataError` for
    unusable data, :class:`SameFileError` when an input file lies inside ``output_dir``
    (the folder the run replaces), :class:`TrainingError` when the outputs cannot be
    written; in every case the previous output folder is left untouched.
    """
    cfg = TrainingConfig(train_file=train_file, test_file=test_file, output_dir=output_dir,
                         **options)
    t_start = time.perf_counter()
    models, grids = cfg.checked()
    refuse_same_files([], _input_paths(cfg), [("--output-dir", cfg.output_dir)])
    output_dir, tmp = prepare_output_folder(cfg.output_dir)
    pkg_logger = logging.getLogger("propensity")
    log_handler = None
    try:   # from the moment the temporary folder exists: a signal or error removes it
        log_handler = _RunLog(os.path.join(tmp, "ml_pipeline.log"), encoding="utf-8")
        log_handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log_handler.setLevel(logging.INFO)
        # the log file records what the propensity logger lets through: the CLI sets it
        # to INFO; a library user chooses (the library never changes logger levels)
        pkg_logger.addHandler(log_handler)
        try:
            with _preloading_plots(), _numpy_blas_single_threaded():
                results = _run(cfg, models, grids, output_dir, tmp, t_start)
            logger.info("outputs written to %s (%.2fs in all)", output_dir,
                        time.perf_counter() - t_start)
            pkg_logger.removeHandler(log_handler)
            log_handler.close()
            if log_handler.error is not None:
                raise log_handler.error
            swap_in_folder(tmp, output_dir, OUTPUT_NAMES)
        except OSError as exc:
            if not _is_write_failure(exc):
                raise
            raise TrainingError(f"cannot write the outputs to {output_dir}: "
                                f"{_write_failure(exc, tmp, output_dir)}; the previous "
                                f"outputs are unchanged") from None
        return results
    except BaseException:
        if log_handler is not None:
            pkg_logger.removeHandler(log_handler)
            log_handler.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _RunLog(logging.FileHandler):
    """The run's log file. A failed write (disk full, file-size limit) is kept in
    ``error`` and fails the run with a message, instead of logging's traceback on
    stderr for every record."""

    error = None

    def handleError(self, record):
        exc = sys.exc_info()[1]
        if self.error is None and isinstance(exc, OSError):
            self.error = exc


# errno values that mean "the outputs cannot be written", wherever they arise in a run
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, getattr(errno, "EDQUOT", -1)}


def _is_write_failure(exc):
    return isinstance(exc, OutputError) or exc.errno in _WRITE_ERRNOS


def _write_failure(exc, tmp, output_dir):
    """The reason of a failed write, naming the output file (not the temporary folder)."""
    if isinstance(exc, OutputError):
        return str(exc).replace(tmp, output_dir)
    name = os.fspath(exc.filename) if exc.filename is not None else None
    if name is not None:
        name = name.replace(tmp, output_dir)
    return f"{name}: {exc.strerror}" if name else exc.strerror or str(exc)


def _input_paths(cfg):
    """The files a run reads, as ``(label, path)`` pairs (paths only: frames, tables and
    grids given as dicts are not files)."""
    def path(v):
        return v if isinstance(v, (str, os.PathLike)) else None
    return [("--train-file", path(cfg.train_file)), ("--test-file", path(cfg.test_file)),
            ("--grid", path(cfg.grid))]


def _numpy_blas_single_threaded():
    """numpy's BLAS held to one thread for the run (restored after it). The run's
    parallelism is the C core's threads; numpy's products here are small (a weighted sum
    over the validation rows, scores of the distinct rows), and after each one OpenBLAS's
    threads spin, taking a core from ours: on the 10M-row file the logistic regression
    grid took 1.0 s with them, 0.77 s without."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, user_api="blas")


@contextlib.contextmanager
def _preloading_plots():
    """matplotlib imported in a thread while the run reads and fits (joined at the end)."""
    def preload():
        from .plots import preload
        try:
            preload()
        except Exception:   # the plots step reports any real failure
            logger.debug("preloading matplotlib failed", exc_info=True)

    thread = threading.Thread(target=preload, name="propensity-plots-preload", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _run(cfg, models, grids, output_dir, tmp, t_start):
    """The steps of a run, each timed: load, prepare, one fit per family, outputs."""
    timings = {}

    def timed(name, step, *args):
        t0 = time.perf_counter()
        out = step(*args)
        # the step's freed heap pages back to the system (_core.trim_heap): on the
        # 100M-row session file the run peaked at 996 MB with it, 1,250 MB without (the
        # reader's freed blocks), and no slower on the 10M file (4 paired runs: 1.01x)
        _core.trim_heap()
        timings[name] = time.perf_counter() - t0
        logger.debug("step %s: %.2fs, peak memory so far %s MB", name, timings[name],
                     _peak_rss_mb())
        return out

    table = timed("load", _load, cfg)
    if cfg.policy.kind == "budget" and cfg.policy.budget_sessions is None:
        try:   # before any fit: a budget above the training rows
            campaign.check_budget(cfg.policy.budget, table.n_rows)
        except ValueError as exc:
            raise DataError(f"{exc} (the {table.n_rows} rows of the training data; "
                            f"--budget-sessions sets another number)") from None
    prep = timed("prepare", _prepare, cfg, table)
    total_fits = sum(count_fits(estimator_class(f), grids[f], cfg.cv_folds) + 1 for f in models)
    bar = _progress_bar(cfg.progress, total_fits, "training")
    fitted = {}
    parked = _Parked(tmp) if not table.distinct else None
    try:
        for i, fam in enumerate(models):
            fitted[fam] = timed(fam, _fit_family, cfg, prep, fam, grids[fam], bar)
            if parked is not None and i < len(models) - 1:
                parked.park(fam, fitted[fam].details)
    finally:
        if bar is not None:
            bar.close()
    evaluation = {fam: f.record for fam, f in fitted.items()}
    best = max(models, key=lambda m: (evaluation[m]["f1"], evaluation[m]["roc_auc"]))
    logger.info("best model by validation F1: %s (%.4f)", best, evaluation[best]["f1"])
    now = datetime.datetime.now(datetime.timezone.utc)
    # the figures (matplotlib: Python, one thread) are drawn beside the model files and
    # the test predictions (file writes and the C scorer, mostly outside the GIL); the
    # model files are hashed for the manifest as soon as they are complete and the test
    # predictions by their writer: on the 10M-row file that hides most of the figures' 1 s
    # and the hashing's 0.5 s; the report embeds the figures, so it waits for them
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2, thread_name_prefix="propensity-outputs") as pool:
        plots = pool.submit(timed, "plots", _write_plots, tmp, fitted)
        digests = _manifest.hash_early(pool, tmp, timed("save", _write_models, tmp, fitted))
        if parked is not None:
            parked.close()          # before the manifest lists the folder
        digests.update(timed("predict_test", _predict_test, fitted[best].model, best,
                             cfg.test_file, tmp, cfg.embedded_test_rows, cfg.sep, cfg.encoding))
        plots.result()                              # a plot's error is raised here
        timed("report", _write_report, tmp, fitted, best, prep, cfg, now)
        manifest = _manifest.build(
            tmp, best_model=best, models=evaluation, created=now, digests=digests,
            training_data={"source": prep.table.source, "n_rows": prep.table.n_rows,
                           "fingerprint": prep.fingerprint, "target": cfg.target,
                           "id_column": cfg.id_column})
    _manifest.write(tmp, manifest)
    timings["total"] = time.perf_counter() - t_start
    logger.info("timings: %s", {k: round(v, 3) for k, v in timings.items()})
    peak = _peak_rss_mb()
    if peak is not None:
        logger.info("peak memory (resident): %d MB", peak)
    return TrainingResults(output_dir=output_dir, best_model=best, metrics=evaluation,
                           models={fam: f.model for fam, f in fitted.items()},
                           best_params={fam: f.search["best_params"] for fam, f in fitted.items()},
                           timings=timings, manifest=manifest,
                           cv_results={fam: f.search["cv_results"] for fam, f in fitted.items()})


def _load(cfg):
    """The training table: given, from rows already loaded (e.g. on a Dask cluster), the
    embedded stand-in, or a CSV file read once in blocks."""
    kw = dict(n_folds=cfg.cv_folds, seed=cfg.seed, n_jobs=cfg.n_jobs)
    cats = dict(categorical=cfg.categorical, category_columns=cfg.category_columns)
    if isinstance(cfg.train_file, TrainingTable):
        return cfg.train_file
    if isinstance(cfg.train_file, TrainingData):
        d = cfg.train_file
        return table_from_encoded(d.schema, d.E, d.y, d.classes, source=d.source,
                                  target=cfg.target, **kw)
    if cfg.train_file is None:
        frame = make_sessions(cfg.embedded_rows, seed=EMBEDDED_SEED)
        table = table_from_frame(frame, target=cfg.target, id_column=cfg.id_column,
                                 source="embedded stand-in", **kw, **cats)
        logger.info("training on the embedded stand-in: %d sessions (seed %d)",
                    table.n_rows, EMBEDDED_SEED)
        return table
    progress = _read_progress(cfg.train_file) if cfg.progress else None
    try:
        return read_training_file(cfg.train_file, target=cfg.target, id_column=cfg.id_column,
                                  progress=progress, sep=cfg.sep, encoding=cfg.encoding, **kw,
                                  **cats)
    finally:
        if progress is not None:
            progress.close()


def _peak_rss_mb():
    """The process's peak resident memory in MB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


class _read_progress:
    """Progress of reading the training file on stderr: bytes read, rows, rows/s."""

    def __init__(self, path):
        from tqdm.auto import tqdm
        try:
            total = os.path.getsize(path)
        except OSError:
            total = None
        self.bar = tqdm(total=total, desc="reading", file=sys.stderr, leave=False,
                        unit="B", unit_scale=True, unit_divisor=1024)
        self.rows = 0
        self.t0 = time.perf_counter()

    def __call__(self, rows, bytes_read):
        self.rows += rows
        rate = self.rows / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{self.rows:,} rows, {rate / 1e6:.2f} M rows/s")
        self.bar.update(bytes_read - self.bar.n)

    def close(self):
        self.bar.close()


def _prepare(cfg, table):
    """The folds, the training and validation splits, the model features."""
    check_parts(table)
    features = TableFeatures(table, n_jobs=cfg.n_jobs)
    folds = TableFolds(table, features)
    plc = table.part_label_counts()
    logger.info("split: %d training rows, %d validation rows; %d features; %d %s",
                int(plc[:table.n_folds].sum()), int(plc[table.n_folds:].sum()),
                len(features.feature_names), table.n_stored,
                "distinct rows" if table.distinct else "rows")
    return _Prepared(table=table, fingerprint=table.fingerprint(), features=features,
                     folds=folds)


def _fit_family(cfg, prep, fam, grid, bar):
    """Grid search, calibration and threshold on out-of-fold scores, refit, evaluation."""
    t0 = time.perf_counter()
    cls = estimator_class(fam)
    table, folds = prep.table, prep.folds
    if bar is not None:
        bar.set_description(fam.replace("_", " "))
    base = base_params(fam, cls, table.part_label_counts()[:table.n_folds].sum(axis=0),
                       cfg.seed, cfg.n_jobs, table.n_stored, prep.features.categorical)
    gs = grid_search(cls, folds, grid, base, family=fam, progress=bar, n_jobs=cfg.n_jobs)
    oof, y_oof, w_oof = gs.pop("oof")   # the details hold them (and may park them)
    calibrator, _, oof_f1, oof_cal = tune_on_oof(oof, y_oof, w_oof, cfg.calibration)
    policy = campaign.choose(cfg.policy, y_oof, oof_cal, w_oof, n_rows=table.n_rows)
    del oof_cal   # made again when the details are written (_saved_details), not held
    threshold = policy["threshold"]
    logger.info("%s: target policy %s -> threshold %.6g on the out-of-fold scores", fam,
                cfg.policy.kind, threshold)
    train = folds.training
    est = folds.fit(cls(**{**base, **gs["best_params"]}), train)  # the grid wins
    unused = folds.unused_features(est)
    if unused:
        logger.warning("%s: %d feature(s) constant in the training split, given coefficient 0 "
                       "(no effect on the scores): %s", fam, len(unused), ", ".join(unused))
    if bar is not None:
        bar.update(1)
    model = PropensityModel.from_parts(
        schema=table.schema, transformer=prep.features.transformer, estimator=est,
        calibrator=calibrator, threshold=threshold, training_profile=None,
        calibration=cfg.calibration, cv=cfg.cv_folds, random_state=cfg.seed,
        classes=table.classes)
    model.set_policy(policy)
    model.training_profile_ = _training_profile(model, folds, train)
    del train
    val = folds.validation
    raw_val = folds.scores(est, val)
    proba_val = model.calibrate(raw_val)
    y_val, w_val = folds.validation_labels(val)
    rec = M.binary_metrics(y_val, proba_val, threshold, w_val)
    rec["brier_uncalibrated"] = M.brier_score_loss(y_val, raw_val, w_val)
    rec["f1_uncalibrated_at_0.5"] = M.f1_score(y_val, raw_val >= 0.5, w_val)
    rec["oof_f1"] = oof_f1
    rec["lift_table"] = campaign.lift_table(y_val, proba_val, w_val)
    rec["policy"] = {**{k: v for k, v in policy.items() if k != "score_distribution"},
                     "validation": campaign.evaluate(policy, y_val, proba_val, w_val)}
    rec["best_params"] = dict(gs["best_params"])
    rec["n_configurations"] = len(gs["cv_results"])
    rec["seconds"] = time.perf_counter() - t0
    pred_val = (proba_val >= threshold).astype(np.uint8)
    t_shap = time.perf_counter()
    shap_imp = shap_importance(folds, est, val, fam)
    if shap_imp is not None:
        logger.info("%s: SHAP importance on %d of the validation split's %d stored rows "
                    "in %.2fs", fam, shap_imp[1], shap_imp[2], time.perf_counter() - t_shap)
    details = {
        # the validation split as (distinct row, label) pairs: sample_weight is how many
        # validation rows each pair stands for (np.repeat(x, sample_weight) gives rows)
        "metrics": rec, "predictions": pred_val, "probabilities": proba_val,
        "raw_scores": raw_val, "y_true": y_val, "sample_weight": w_val,
        "classification_report": M.classification_report(
            y_val, pred_val, target_names=("not ordered", "ordered"), sample_weight=w_val),
        "cv_results": gs["cv_results"], "best_params": gs["best_params"],
        "oof_scores": oof, "oof_calibrated": None, "oof_labels": y_oof,
        "oof_weights": w_oof,
    }
    if shap_imp is not None:
        # mean |SHAP| per model feature on the validation split (raw-score units), on the
        # stored rows explained (all, or a sample by weight: see shap_importance)
        details["shap_importance"] = {"feature": list(model.feature_names_out_),
                                      "mean_abs_shap": shap_imp[0], "rows": shap_imp[1],
                                      "of_rows": shap_imp[2]}
    logger.info("%s: best %s; validation F1 %.4f (precision %.4f, recall %.4f), "
                "ROC-AUC %.4f, threshold %.3f, Brier %.4f -> %.4f calibrated (%.2fs)",
                fam, gs["best_params"], rec["f1"], rec["precision"], rec["recall"],
                rec["roc_auc"], threshold, rec["brier_uncalibrated"], rec["brier"],
                rec["seconds"])
    return _Fitted(model=model, record=rec, details=details, search=gs)


PROFILE_ROWS = 1_000_000   # rows mode: training rows the drift profile is drawn from


def _training_profile(model, folds, train):
    """The drift profile of the training split: its inputs and calibrated scores, each
    stored row weighted by the training rows it stands for."""
    index, w = train.index, train.row_weights()
    pick = evenly_spaced(index.size, PROFILE_ROWS)
    index, w = index[pick], w[pick]
    scores = model.calibrate(folds.row_scores(model.estimator_, index))
    return build_profile(folds.table.schema, folds.table.decode(index), scores, weights=w)


class _DocumentPickler(pickle.Pickler):
    """Pickles ``model`` from its model document already made (the bytes of the
    .propmodel file) instead of serialising it a second time: the same pickle as
    ``pickle.dump(model)`` (its state is that document), one copy of it in memory."""

    def __init__(self, file, model, doc):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._model, self._doc = model, doc

    def reducer_override(self, obj):
        if obj is self._model:
            return (copyreg.__newobj__, (type(obj),), {"__propensity_document__": self._doc})
        return NotImplemented


@contextlib.contextmanager
def _output(folder, name, mode="wb"):
    """A file of the run's temporary folder; a failed write is an OutputError naming it."""
    path = os.path.join(folder, name)
    try:
        with open(path, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as f:
            yield f
    except OSError as exc:
        raise output_error(path, exc) from None


def _write_models(folder, fitted):
    """Model documents, pickles, importances, the evaluation JSON and details pickle;
    returns the names of the model documents and pickles (the big files)."""
    names = []
    for fam, f in fitted.items():
        names += [f"{fam}_model.propmodel", f"{fam}_model.pkl"]
        doc = f.model.to_bytes()
        with _output(folder, f"{fam}_model.propmodel") as out:
            out.write(doc)
        with _output(folder, f"{fam}_model.pkl") as out:
            _DocumentPickler(out, f.model, doc).dump(f.model)
        del doc
        _write_importances(folder, fam, f.model)
        if "shap_importance" in f.details:
            _write_shap_importance(folder, fam, f.model,
                                   f.details["shap_importance"]["mean_abs_shap"])
    with _output(folder, "lift_table.csv", "w") as out:
        _lift_frame(fitted).to_csv(out, index=False)
    with _output(folder, "model_evaluation_results.json", "w") as out:
        json.dump(_jsonable({fam: f.record for fam, f in fitted.items()}), out, indent=2)
        out.write("\n")
    with _output(folder, "detailed_evaluation_results.pkl") as out:
        pickle.dump({fam: _saved_details(f) for fam, f in fitted.items()}, out,
                    protocol=pickle.HIGHEST_PROTOCOL)
    return names


class _Parked:
    """The out-of-fold scores of finished families, for a table kept row by row (a
    score a training row: 64 MB a family on 8M rows): written to a hidden folder of the
    run's temporary folder and memory-mapped back, so the next families' fits do not
    hold them; read when the details are written. The folder goes with the temporary
    folder if the run fails."""

    NAME = ".parked"

    def __init__(self, tmp):
        self.folder = os.path.join(tmp, self.NAME)
        self.details = []

    def park(self, fam, details):
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"{fam}_oof_scores.npy")
        try:
            np.save(path, details["oof_scores"], allow_pickle=False)
        except OSError as exc:
            raise output_error(path, exc) from None
        # a plain ndarray view of the map: pickled as the array it was
        details["oof_scores"] = np.asarray(np.load(path, mmap_mode="r"))
        self.details.append(details)

    def close(self):
        """The details written: the maps dropped and the folder removed."""
        for details in self.details:
            details["oof_scores"] = None
        self.details = []
        shutil.rmtree(self.folder, ignore_errors=True)


def _saved_details(f):
    """A family's details as the details pickle holds them: its calibrated out-of-fold
    scores made again from the raw ones by its model's calibration (the arrays
    :func:`tune_on_oof` made, the policy's threshold chosen on them), not kept by every
    finished family during the next one's fits (64 MB a family on the 8M training rows
    of a 10M-row file kept row by row)."""
    return {**f.details, "oof_calibrated": f.model.calibrate(f.details["oof_scores"])}


LIFT_COLUMNS = ["model", "decile", "sessions", "buyers", "response_rate", "lift",
                "cumulative_buyers_pct", "cumulative_lift"]


def _lift_frame(fitted):
    """lift_table.csv: the validation deciles of every model (campaign.lift_table)."""
    rows = [{"model": fam, **d} for fam, f in fitted.items() for d in f.record["lift_table"]]
    return pd.DataFrame(rows, columns=LIFT_COLUMNS)


def _write_plots(folder, fitted):
    from .plots import write_plots
    write_plots(folder, {fam: f.details for fam, f in fitted.items()},
                {fam: f.record for fam, f in fitted.items()})


def _write_report(folder, fitted, best, prep, cfg, created):
    from .report import write_report
    table = prep.table
    plc = table.part_label_counts()
    n_rows = int(plc.sum())
    data = {"source": table.source, "target": cfg.target, "n_rows": n_rows,
            "n_training": int(plc[:table.n_folds].sum()),
            "n_validation": int(plc[table.n_folds:].sum()),
            "n_buyers": int(plc[:, 1].sum()), "buyer_rate": float(plc[:, 1].sum()) / n_rows,
            "n_inputs": len(table.schema.names),
            "n_features": len(prep.features.feature_names)}
    write_report(folder, evaluation=_jsonable({fam: f.record for fam, f in fitted.items()}),
                 best_model=best, data=data, created=created,
                 model_dir=os.fspath(cfg.output_dir))


def _predict_test(model, name, test_file, folder, embedded_test_rows, sep=",", encoding="utf-8"):
    """test_predictions.csv through the predictor: a test file on its file path (same
    reader, value rules, id handling and writer as ``propensity.predict``), the embedded
    testing-style frame on its DataFrame path (the same value rules and writer). Returns
    {name: SHA-256} of the file where the writer kept it (a test file's)."""
    import pandas as pd

    from ..scoring.predictor import CustomerPropensityPredictor, InputDataError

    predictor = CustomerPropensityPredictor.from_model(model, name)
    out = os.path.join(folder, "test_predictions.csv")
    source = "embedded testing-style data" if test_file is None else test_file
    digest = None
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            if test_file is not None:
                summary = predictor.predict_from_file(test_file, out, sep=sep,
                                                      encoding=encoding)
                rows, digest = summary["rows"], summary["sha256"]
            else:
                frame = make_sessions(embedded_test_rows, seed=EMBEDDED_SEED, testing=True)
                if not set(model.input_columns_) & set(frame.columns):
                    # a generic training file without a test file: nothing to score
                    logger.warning("no --test-file given and the embedded test data has none "
                                   "of the model's columns; test_predictions.csv holds no rows")
                    frame = pd.DataFrame(columns=model.input_columns_)
                rows = predictor.predict_to_file(frame, out)
        for w in seen:
            logger.warning("%s: %s", source, w.message)
    except InputDataError as exc:
        msg = str(exc)
        raise DataError(msg if test_file is not None and os.fspath(test_file) in msg
                        else f"{source}: {msg}") from None
    logger.info("predicted %d rows of %s with %s", rows, source, name)
    return {} if digest is None else {"test_predictions.csv": digest}


def _jsonable(v):
    from ..io.modelio import jsonable
    return jsonable(v)
