"""Scale-out on Dask (``pip install 'propensity[dask]'``): distributed scoring and training.

:func:`predict_dask` scores a ``dask.dataframe.DataFrame`` partition by partition
(``map_partitions``) with the same output columns and validation as
:meth:`CustomerPropensityPredictor.predict`; the model travels once per worker as its
model document bytes (one graph key) and is loaded once per worker process.

:func:`fit_dask` trains an estimator on a Dask DataFrame without bringing the rows to the
driver:

1. a scan of every partition checks its columns, rows and target values and collects,
   per column, the distinct values (while there are at most ``max_bins`` of them);
2. the bin edges are agreed on the driver: a column with at most ``max_bins`` distinct
   values gets exactly the edges of a local fit (binary columns: one edge at 0.5);
   other columns get quantile edges from a seeded sample drawn from every partition;
3. each partition is binned and reduced to its weighted unique-row table
   (:func:`propensity._compress.compress_rows`: distinct binned rows with per-label
   counts and summed sample weights);
4. the tables are combined in a tree reduction (concatenate, compress again, sum the
   counts and weights), and the estimator trains on the final table through the same
   ``fit_table`` entry point its ``fit`` ends in.

The unique-row table is sorted lexicographically and its counts are integers, so the
driver sees exactly the table a local fit builds: same data and seed give the same
model (bit-identical for binary/low-cardinality data without sample weights; sample
weights are summed in another order, within rounding). Logistic regression on uint8
input compresses the raw rows the same way; on float input it gathers the rows in
partition order (no reduction is possible for continuous data).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ._typing import DaskDataFrame, PathLike

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .learn.base import BaseEstimator
    from .scoring.model import PropensityModel
    from .scoring.predictor import CustomerPropensityPredictor
_Est = TypeVar("_Est", bound="BaseEstimator")

__all__ = ["predict_dask", "fit_dask", "PartitionError", "get_client"]

_FAN_IN = 8          # tables combined per reduction task
_SAMPLE_ROWS = 200_000


from .errors import PartitionError  # noqa: E402,F401


def _require_dask():
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "propensity.dask needs Dask: install the extra with "
            "pip install 'propensity[dask]' (dask[dataframe] and distributed)") from exc
    import dask
    return dask


def get_client(address):
    """A ``distributed.Client`` for a scheduler address ('tcp://host:8786'), or for a new
    in-process LocalCluster when ``address`` is 'local'."""
    _require_dask()
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError("--scheduler needs dask.distributed: pip install "
                          "'propensity[dask]'") from exc
    if address == "local":  # the client owns (and closes) its LocalCluster
        return Client(processes=True, dashboard_address=None, host="127.0.0.1")
    return Client(address)


def _check_columns(part, expected, i):
    cols = [str(c) for c in part.columns]
    missing = [c for c in expected if c not in cols]
    extra = [c for c in cols if c not in set(expected)]
    if missing or extra:
        what = []
        if missing:
            what.append(f"lacks column(s) {missing}")
        if extra:
            what.append(f"has unexpected column(s) {extra}")
        raise PartitionError(i, " and ".join(what) + f"; every partition needs the columns "
                                                     f"{list(expected)}")


def _part_number(partition_info, default):
    if partition_info and "number" in partition_info:
        return int(partition_info["number"])
    return default


# =========================================================================== scoring
_MODEL_CACHE: dict = {}
_MODEL_LOCK = threading.Lock()


def _cached_model(token, doc):
    """The model of document ``doc`` (bytes), loaded once per worker process."""
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(token)
        if model is None:
            from .learn.base import BaseEstimator
            model = BaseEstimator.from_bytes(bytes(doc))
            if len(_MODEL_CACHE) >= 4:
                _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
            _MODEL_CACHE[token] = model
        return model


def _resolve_model(obj):
    """A fitted PropensityModel from what a user has: a predictor, a model folder, a
    PropensityModel or a fitted estimator (what :func:`fit_dask` returns)."""
    from .errors import NotFittedError
    from .learn.base import BaseEstimator
    from .scoring.model import PropensityModel
    from .scoring.predictor import CustomerPropensityPredictor
    if isinstance(obj, CustomerPropensityPredictor):
        return obj.require_model()
    if isinstance(obj, str) or hasattr(obj, "__fspath__"):
        return CustomerPropensityPredictor(obj).load_best_model()
    if isinstance(obj, PropensityModel):
        if not obj._is_fitted():
            raise NotFittedError("the PropensityModel given to predict_dask is not fitted yet")
        return obj
    if isinstance(obj, BaseEstimator) and hasattr(obj, "predict_proba"):
        if not obj._is_fitted():
            raise NotFittedError(f"the {type(obj).__name__} given to predict_dask is not "
                                 f"fitted yet; fit it (e.g. with fit_dask) first")
        return PropensityModel.from_estimator(obj)  # TypeError when fitted without names
    raise TypeError(f"model_or_predictor must be a fitted PropensityModel, a fitted "
                    f"estimator, a loaded CustomerPropensityPredictor or a model folder; "
                    f"got {type(obj).__name__}")


def _score_partition(part, doc, token, spec, partition_info=None):
    from .scoring.predictor import CustomerPropensityPredictor, PredictorError
    i = _part_number(partition_info, -1)
    _check_columns(part, spec["columns"], i)
    if len(part) == 0 and not spec["allow_empty"]:
        raise PartitionError(i, "has no rows (pass allow_empty_partitions=True to accept "
                                "empty partitions)")
    scorer = CustomerPropensityPredictor.from_model(_cached_model(token, doc))
    try:
        with warnings.catch_warnings():  # missing columns were reported once on the client
            warnings.simplefilter("ignore", UserWarning)
            out = scorer.predict(part, spec["threshold"], spec["segments"],
                                 coerce=spec["coerce"], fill_missing=spec["fill_missing"],
                                 timestamp=spec["timestamp"])
    except (PredictorError, ValueError, TypeError) as exc:
        if isinstance(exc, PartitionError):
            raise
        raise PartitionError(i, str(exc).replace("input DataFrame, ", "", 1)) from None
    out.index = part.index
    return out


def _segment_spec(segments):
    from .scoring.predictor import segment_spec
    return segment_spec(segments)


def predict_dask(model_or_predictor: PropensityModel | BaseEstimator | CustomerPropensityPredictor
                 | PathLike, ddf: DaskDataFrame, *, threshold: float | None = None,
                 segments: bool = False, coerce: bool = False, fill_missing: int | None = None,
                 allow_empty_partitions: bool = False) -> DaskDataFrame:
    """Score the sessions of a Dask DataFrame; returns a lazy Dask DataFrame with the
    columns of :meth:`CustomerPropensityPredictor.predict` (``UserID, predicted_ordered,
    purchase_probability, prediction_timestamp`` + ``segment``), one output partition per
    input partition, index kept.

    ``model_or_predictor``: a fitted PropensityModel, a fitted estimator (as
    :func:`fit_dask` returns: scored with threshold 0.5 and no calibration), a loaded
    CustomerPropensityPredictor, or a model folder (its best model). Every partition must
    have the columns of ``ddf`` (a partition with missing or extra columns, or with no
    rows unless ``allow_empty_partitions``, raises :class:`PartitionError` naming it).
    Missing model input columns are reported (and filled as the schema says) as by the
    predictor.
    """
    dask = _require_dask()
    from .scoring.predictor import CustomerPropensityPredictor, _now_iso

    if not hasattr(ddf, "map_partitions") or not hasattr(ddf, "npartitions"):
        raise TypeError(f"ddf must be a dask.dataframe.DataFrame, got {type(ddf).__name__}")
    model = _resolve_model(model_or_predictor)
    scorer = CustomerPropensityPredictor.from_model(model)
    thr = scorer.decision_threshold(threshold)
    if fill_missing is not None and fill_missing not in (0, 1):
        raise ValueError(f"fill_missing must be None, 0 or 1, got {fill_missing!r}")
    columns = [str(c) for c in ddf.columns]
    # the column check (and its warning for missing inputs) once, on the client
    _, missing = model.schema_.locate(columns, "the Dask DataFrame")
    model.schema_.warn_missing(missing, "the Dask DataFrame")
    spec = {"columns": columns, "threshold": thr, "segments": _segment_spec(segments),
            "coerce": bool(coerce), "fill_missing": fill_missing, "timestamp": _now_iso(),
            "allow_empty": bool(allow_empty_partitions)}
    doc = model.to_bytes()
    token = hashlib.sha256(doc).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        meta = scorer.predict(ddf._meta.iloc[:0], thr, spec["segments"],
                              timestamp=spec["timestamp"])
    meta.index = ddf._meta.index[:0]
    doc_key = dask.delayed(np.frombuffer(doc, dtype=np.uint8), pure=True,
                           name=f"propensity-model-{token}")
    return ddf.map_partitions(_score_partition, doc_key, token, spec, meta=meta,
                              enforce_metadata=False, align_dataframes=False)


# =========================================================================== training
def _scan_partition(part, i, spec):
    """Checks one partition; returns its rows, target values and per-column distinct values."""
    from .learn.validation import check_X
    _check_columns(part, spec["columns"], i)
    n = len(part)
    if n == 0:
        raise PartitionError(i, "has no rows")
    y = part[spec["target"]].to_numpy()
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise PartitionError(i, f"target column {spec['target']!r} is missing (NaN) at row "
                                f"{int(np.flatnonzero(np.isnan(y))[0])} of the partition")
    if y.dtype == object and pd_isna(y).any():
        raise PartitionError(i, f"target column {spec['target']!r} is missing at row "
                                f"{int(np.flatnonzero(pd_isna(y))[0])} of the partition")
    classes = np.unique(y)
    if classes.shape[0] > 2:
        raise PartitionError(i, f"target column {spec['target']!r} is not binary: "
                                f"{classes.shape[0]} distinct values {classes[:10].tolist()}")
    try:
        X, _ = check_X(part[spec["features"]])
    except (ValueError, TypeError) as exc:
        raise PartitionError(i, str(exc)) from None
    if spec["reject_nan"] and X.dtype.kind == "f" and np.isnan(X).any():
        r, j = np.argwhere(np.isnan(X))[0]
        raise PartitionError(i, f"column {spec['features'][j]!r} has a missing value (NaN) at "
                                f"row {r} of the partition; LogisticRegression needs complete "
                                f"data")
    _check_weights(part, spec, i)
    distinct = []
    limit = spec["max_bins"]
    for j in range(X.shape[1]):
        col = X[:, j]
        if X.dtype == np.uint8:
            vals = np.flatnonzero(np.bincount(col, minlength=256)).astype(np.float64)
        else:
            vals = np.unique(col[~np.isnan(col)]).astype(np.float64)
        distinct.append(vals if vals.shape[0] <= limit else None)
    return {"n": n, "classes": classes, "distinct": distinct, "dtype": X.dtype.str}


def pd_isna(a):
    import pandas as pd
    return pd.isna(a)


def _check_weights(part, spec, i):
    col = spec.get("sample_weight")
    if col is None:
        return None
    w = np.asarray(part[col].to_numpy(), dtype=np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise PartitionError(i, f"sample weight column {col!r} has the value {w[r]} at row {r} "
                                f"of the partition; weights must be finite and >= 0")
    return np.ascontiguousarray(w)


def _sample_partition(part, i, n_total, spec, seed):
    """A seeded sample of this partition's rows, in proportion to its size."""
    from .learn.validation import check_X
    X, _ = check_X(part[spec["features"]])
    k = min(X.shape[0], int(np.ceil(_SAMPLE_ROWS * X.shape[0] / max(n_total, 1))))
    idx = np.sort(np.random.default_rng([seed, i]).choice(X.shape[0], k, replace=False))
    return np.ascontiguousarray(X[idx], dtype=np.float64)


def _reduce_partition(part, i, spec, mapper):
    """One partition -> (rows, counts (u, 2) int64, weights (u, 2) float64)."""
    from .learn.compress import compress_rows
    from .learn.validation import check_X
    X, _ = check_X(part[spec["features"]])
    y = part[spec["target"]].to_numpy()
    classes = spec["classes"]
    known = np.isin(y, classes)
    if not known.all():
        r = int(np.flatnonzero(~known)[0])
        raise PartitionError(i, f"target value {y[r]!r} at row {r} is not one of the classes "
                                f"{classes.tolist()}")
    y01 = (y == classes[1]).astype(np.uint8)
    sw = _check_weights(part, spec, i)
    if mapper is not None:
        B = mapper.transform(X, n_jobs=spec["n_jobs"])
    elif X.dtype == np.uint8:
        B = X
    else:  # logistic regression on continuous input: every row, in order
        Xf = np.ascontiguousarray(X, dtype=np.float64)
        n = Xf.shape[0]
        counts = np.zeros((n, 2), dtype=np.int64)
        counts[np.arange(n), y01] = 1
        weights = np.zeros((n, 2))
        weights[np.arange(n), y01] = 1.0 if sw is None else sw
        return Xf, counts, weights
    cr = compress_rows(B, y01, sw, n_jobs=spec["n_jobs"])
    return (np.ascontiguousarray(cr.rows), np.ascontiguousarray(cr.counts, np.int64),
            np.ascontiguousarray(cr.weights, np.float64))


def combine_tables(*tables, compress=True):
    """Concatenate weighted unique-row tables and merge identical rows (counts and
    weights summed); the rows come out sorted, as from ``compress_rows``."""
    from .learn.compress import compress_rows
    rows = np.concatenate([t[0] for t in tables])
    counts = np.concatenate([t[1] for t in tables])
    weights = np.concatenate([t[2] for t in tables])
    if not compress:
        return rows, counts, weights
    cr = compress_rows(np.ascontiguousarray(rows))
    u = cr.rows.shape[0]
    inv = cr.inverse
    out_c = np.empty((u, 2), dtype=np.int64)
    out_w = np.empty((u, 2), dtype=np.float64)
    for k in range(2):
        out_c[:, k] = np.bincount(inv, weights=counts[:, k], minlength=u).astype(np.int64)
        out_w[:, k] = np.bincount(inv, weights=weights[:, k], minlength=u)
    return np.ascontiguousarray(cr.rows), out_c, out_w


def _agree_edges(scans, features, max_bins, sample):
    """The BinMapper a local fit would build: exact edges for columns with at most
    max_bins distinct values (from the union of the partitions' values), sample quantile
    edges for the others."""
    from .learn.binning import BinMapper
    p = len(features)
    exact_cols, values = [], []
    for j in range(p):
        parts = [s["distinct"][j] for s in scans]
        if any(v is None for v in parts):
            values.append(None)
            continue
        v = np.unique(np.concatenate(parts)) if parts else np.zeros(0)
        values.append(v if v.shape[0] <= max_bins else None)
    m = max([1] + [v.shape[0] for v in values if v is not None])
    grid = np.full((m, p), np.nan)
    for j, v in enumerate(values):
        if v is not None and v.shape[0]:
            grid[:v.shape[0], j] = v
            grid[v.shape[0]:, j] = v[0]
        elif v is None:
            grid[:, j] = 0.0
    mapper = BinMapper(max_bins=max_bins, subsample=None, random_state=0).fit(grid)
    if any(v is None for v in values):
        approx = BinMapper(max_bins=max_bins, subsample=None, random_state=0).fit(sample)
        for j, v in enumerate(values):
            if v is None:
                mapper.edges_[j] = approx.edges_[j]
                mapper.n_edges_[j] = approx.n_edges_[j]
        mapper.n_bins_ = (mapper.n_edges_ + 1).astype(np.int32)
    # the parameters a local fit records (bin_and_compress)
    mapper.subsample = 200_000
    mapper.max_bins = max_bins
    exact_cols = [features[j] for j, v in enumerate(values) if v is not None]
    return mapper, exact_cols


def _tree_reduce(dask, leaves, compress):
    level = list(leaves)
    while len(level) > 1:
        level = [dask.delayed(combine_tables, pure=True)(*level[k:k + _FAN_IN],
                                                         compress=compress)
                 for k in range(0, len(level), _FAN_IN)]
    return level[0]


def fit_dask(estimator: _Est, ddf: DaskDataFrame, target: str, *,
             feature_columns: list[str] | None = None, id_column: str | None = "UserID",
             sample_weight: str | None = None, n_jobs: int | None = 1, random_state: int = 0,
             scheduler: object = None) -> _Est:
    """Fit ``estimator`` (RandomForestClassifier, GradientBoostingClassifier or
    LogisticRegression) on a Dask DataFrame; returns the fitted estimator.

    ``target``: the label column (two classes); ``feature_columns``: the features, in
    order (default: every column but the target, ``id_column`` and ``sample_weight``);
    ``sample_weight``: an optional column of row weights. ``n_jobs``: threads per task
    on the workers (results do not depend on it). ``random_state`` seeds the row sample
    used only for the quantile edges of columns with more than ``max_bins`` distinct
    values. ``scheduler`` is passed to ``dask.compute`` (default: the active
    ``distributed.Client``, else Dask's default scheduler).

    Every partition must hold the columns of ``ddf``, at least one row and at most two
    target values; otherwise a :class:`PartitionError` names the partition.
    """
    dask = _require_dask()
    from .learn.trees import TreeEnsemble
    from .learn.linear import LogisticRegression

    if not hasattr(ddf, "to_delayed") or not hasattr(ddf, "npartitions"):
        raise TypeError(f"ddf must be a dask.dataframe.DataFrame, got {type(ddf).__name__}")
    if isinstance(estimator, TreeEnsemble):
        from .learn.validation import check_int
        max_bins = check_int(estimator.max_bins, "max_bins", low=2, high=255)
        is_trees = True
    elif isinstance(estimator, LogisticRegression):
        estimator.validated_params()
        max_bins, is_trees = 255, False
    else:
        raise TypeError(f"fit_dask trains RandomForestClassifier, GradientBoostingClassifier "
                        f"or LogisticRegression, got {type(estimator).__name__}")
    columns = [str(c) for c in ddf.columns]
    if target not in columns:
        raise ValueError(f"target column {target!r} is not in the Dask DataFrame "
                         f"(columns: {columns[:30]})")
    if sample_weight is not None and sample_weight not in columns:
        raise ValueError(f"sample_weight column {sample_weight!r} is not in the Dask DataFrame")
    if feature_columns is None:
        skip = {target, id_column, sample_weight}
        features = [c for c in columns if c not in skip]
    else:
        features = [str(c) for c in feature_columns]
        absent = [c for c in features if c not in columns]
        if absent:
            raise ValueError(f"feature column(s) {absent} are not in the Dask DataFrame")
    if not features:
        raise ValueError("no feature columns besides the target")
    spec = {"columns": columns, "target": target, "features": features,
            "sample_weight": sample_weight, "max_bins": max_bins, "n_jobs": n_jobs,
            "reject_nan": not is_trees}
    compute = (lambda *a: dask.compute(*a, scheduler=scheduler)) if scheduler is not None \
        else dask.compute
    parts = ddf.to_delayed()

    # 1. scan: checks, row counts, classes, distinct values per column
    scans = compute(*[dask.delayed(_scan_partition, pure=True)(p, i, spec)
                      for i, p in enumerate(parts)])
    seen = np.zeros(0)
    for i, s in enumerate(scans):
        merged = np.unique(np.concatenate([seen, s["classes"]])) if seen.size else s["classes"]
        if merged.shape[0] > 2:
            raise PartitionError(i, f"target column {target!r} holds {s['classes'].tolist()}, "
                                    f"the partitions before it {seen.tolist()}: more than two "
                                    f"classes in all")
        seen = merged
    classes = seen
    if classes.shape[0] < 2:
        raise ValueError(f"target column {target!r} has a single class ({classes.tolist()}); "
                         f"two are required")
    n_total = sum(s["n"] for s in scans)
    all_uint8 = all(s["dtype"] == "|u1" for s in scans)
    spec["classes"] = classes

    # 2. bin edges
    mapper = None
    if is_trees:
        need_sample = any(v is None for s in scans for v in s["distinct"])
        sample = None
        if need_sample:
            samples = compute(*[dask.delayed(_sample_partition, pure=True)(
                p, i, n_total, spec, int(random_state)) for i, p in enumerate(parts)])
            sample = np.ascontiguousarray(np.concatenate(samples))
        mapper, exact = _agree_edges(scans, features, max_bins, sample)
        if len(exact) < len(features):
            logger.info("fit_dask: quantile edges from a %d-row sample for %d column(s); "
                        "the other %d columns have exact edges",
                        0 if sample is None else sample.shape[0],
                        len(features) - len(exact), len(exact))

    # 3.-4. per-partition tables, tree reduction
    compress = is_trees or all_uint8
    mkey = dask.delayed(mapper, pure=True) if mapper is not None else None
    leaves = [dask.delayed(_reduce_partition, pure=True)(p, i, spec, mkey)
              for i, p in enumerate(parts)]
    rows, counts, weights = compute(_tree_reduce(dask, leaves, compress))[0]
    logger.info("fit_dask: %d rows in %d partitions reduced to %d %s rows", n_total,
                len(parts), rows.shape[0], "unique" if compress else "")
    if not is_trees and not all_uint8:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
    return estimator.fit_table(mapper, rows, counts, weights, classes, features)


# =========================================================================== CLI helpers
def _compute_in_order(dask, delayed_parts, window=4):
    """Yield the results of ``delayed_parts`` in order, at most ``window`` in flight with a
    distributed client (so the driver never holds more than a few partitions)."""
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is None:
        for d in delayed_parts:
            yield dask.compute(d)[0]
        return
    pending = []
    it = iter(delayed_parts)
    for d in it:
        pending.append(client.compute(d))
        if len(pending) >= window:
            break
    while pending:
        fut = pending.pop(0)
        res = fut.result()
        fut.release()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(client.compute(nxt))
        yield res


def score_csv_dask(model_or_predictor, input_path, output_path, *, blocksize="64MB",
                   threshold=None, segments=False, coerce=False, fill_missing=None):
    """Score a CSV file on the cluster (``dask.dataframe.read_csv``: the workers must be
    able to read ``input_path``) and write the predictions CSV on the client, partition by
    partition in file order (temporary file renamed on success). Returns a summary."""
    dask = _require_dask()
    import dask.dataframe as dd
    import os

    from .io.fileio import AtomicOutput
    from .scoring.predictor import (ID_COLUMN, CustomerPropensityPredictor, InputDataError,
                                    format_predictions, header_line)
    if not os.path.isfile(input_path):
        raise InputDataError(f"input file {input_path!r} not found")
    try:
        ddf = dd.read_csv(input_path, blocksize=blocksize, dtype={ID_COLUMN: str},
                          keep_default_na=False, na_values=[""], encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise InputDataError(f"{input_path!r}: cannot read the CSV ({exc})") from None
    has_id = ID_COLUMN in ddf.columns
    model = _resolve_model(model_or_predictor)
    thr = CustomerPropensityPredictor.from_model(model).decision_threshold(threshold)
    out = predict_dask(model, ddf, threshold=threshold, segments=segments,
                       coerce=coerce, fill_missing=fill_missing, allow_empty_partitions=True)
    rows = 0
    with AtomicOutput(output_path) as sink:
        sink.write(header_line(segments))
        for part in _compute_in_order(dask, out.to_delayed()):
            if not has_id:
                part["UserID"] = np.arange(rows, rows + len(part))
            sink.write(format_predictions(part))
            rows += len(part)
    return {"rows": rows, "partitions": out.npartitions, "path": "dask", "threshold": thr}


def _training_partition(part, i, spec):
    """One partition of a training CSV -> (distinct 0/1 feature rows, row -> distinct row
    (uint32), raw target values); the features must all be 0/1. Ids stay on the worker."""
    from .learn.compress import compress_rows
    from .io.data import DataError
    from .schema import BINARY, Column, Schema
    _check_columns(part, spec["columns"], i)
    if len(part) == 0:
        raise PartitionError(i, "has no rows")
    part = part.reset_index(drop=True)
    schema = Schema([Column(c, BINARY) for c in spec["features"]])
    try:
        X, _ = schema.encode(part, where="rows", warn=False,
                             row_label=lambda r: f"line {r + 2} (data row {r + 1})")
    except DataError as exc:
        raise PartitionError(i, str(exc).split(", ", 1)[-1]) from None
    y = part[spec["target"]].to_numpy()
    cr = compress_rows(np.ascontiguousarray(X, dtype=np.uint8))
    return cr.rows, cr.inverse.astype(np.uint32), y


def load_training_dask(path, target="ordered", id_column="UserID", blocksize="64MB"):
    """Read and validate a training CSV of 0/1 feature columns on the cluster; the client
    receives the distinct feature rows, one uint32 row index and the target per row (5
    bytes a row instead of the parsed CSV) and rebuilds the uint8 matrix the pipeline
    trains on. Returns :class:`propensity.io.data.TrainingData`; the training run makes
    of it the table :func:`propensity.io.table.read_training_file` makes of the file."""
    dask = _require_dask()
    import os

    import dask.dataframe as dd
    import pandas as pd

    from .learn.compress import compress_rows
    from .io.data import DataError, TrainingData, checked_header
    from .io.table import encode_target
    from .schema import BINARY, Column, Schema
    path = os.fspath(path)
    head = checked_header(path)
    if target not in head:
        raise DataError(f"{path}: target column {target!r} not found; columns are {head[:30]}")
    id_col = id_column if id_column in head else None
    features = [c for c in head if c not in (target, id_col)]
    if not features:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    try:
        ddf = dd.read_csv(path, blocksize=blocksize, dtype={id_col: str} if id_col else None,
                          encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot parse the CSV ({exc})") from None
    if len(ddf.columns) == len(head):
        ddf = ddf.rename(columns=dict(zip(ddf.columns, head)))
    spec = {"columns": [str(c) for c in ddf.columns], "features": features, "target": target,
            "id_column": id_col}
    try:
        parts = dask.compute(*[dask.delayed(_training_partition, pure=True)(p, i, spec)
                               for i, p in enumerate(ddf.to_delayed())])
    except PartitionError as exc:
        raise DataError(f"{path}: {exc}") from None
    cr = compress_rows(np.ascontiguousarray(np.concatenate([p[0] for p in parts])))
    starts = np.cumsum([0] + [p[0].shape[0] for p in parts])
    inv = np.concatenate([cr.inverse[starts[k]:starts[k + 1]][p[1]]
                          for k, p in enumerate(parts)])
    y_raw = pd.Series(np.concatenate([p[2] for p in parts]))
    y, labels = encode_target(y_raw, path, target)
    E = cr.rows[inv]
    logger.info("loaded %s on the cluster: %d rows in %d partitions, %d distinct rows",
                path, len(y), len(parts), cr.rows.shape[0])
    # ids stay on the workers: the pipeline does not use training ids
    schema = Schema([Column(c, BINARY) for c in features], id_column=id_col)
    return TrainingData(E=E, y=y, schema=schema, source=os.path.abspath(path),
                        classes=labels)


