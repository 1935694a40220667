"""Model selection on a training table: grids, folds, grid search, and the calibration
and threshold tuned on out-of-fold scores.

The training rows arrive as a :class:`propensity.io.table.TrainingTable` (distinct rows
with their counts per label and part), so every fold trains on weighted distinct rows
and scores each distinct row once (:class:`TableFolds`). Inside a grid, one fit of the
largest forest / the longest boosting run per fold scores every smaller configuration
through ``predict_proba_prefix``. The training run (:mod:`propensity.training.pipeline`)
and :meth:`PropensityModel.fit` both use the one recipe here (:func:`fit_with_oof`,
:func:`tune_on_oof`).
"""
import inspect
import itertools
import json
import logging
import os
import sys
import time
import warnings

import numpy as np

from .._core_loader import _core
from ..learn import metrics as M
from ..learn.compress import compress_rows
from ..learn.estimators import FAMILIES, prefix_params
from ..learn.calibration import make_calibrator
from ..errors import DataError
from ..schema import MAX_NATIVE

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


def _toml():
    """The TOML reader: the standard library's from Python 3.11, tomli (a dependency
    there) before."""
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    import tomli
    return tomli


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
            grid = _toml().loads(raw.decode("utf-8"))
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
# folds on a training table
# ---------------------------------------------------------------------------------------
SCORE_CELLS = 1 << 22        # values featurised and scored at once (32 MB of float64)
MAPPER_ROWS = 200_000        # stored rows the trees' bin edges are fitted on
LINEAR_MAX_ROWS = 1_000_000  # rows mode: rows logistic regression trains on (a sample)
CLASSES = np.array([0, 1], dtype=np.uint8)


def evenly_spaced(n, k):
    """Positions of at most ``k`` of ``n`` rows, evenly spaced (all of them when n <= k)."""
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).astype(np.int64)


class TableFeatures:
    """The model features of a :class:`propensity.io.table.TrainingTable`'s stored rows.

    ``transformer``: the interaction features; ``mapper``: the trees' bin edges (fitted
    on the stored rows, with every numeric input column's edges the table's own, so the
    trees see the raw values' bins, and every native category column's codes its own:
    code c of the schema is the trees' category c, OTHER their "other" code and a
    missing value their missing bin); ``codes``: every stored row's bin codes;
    ``categorical``: the positions of the native category features.
    """

    def __init__(self, table, interactions=True, n_jobs=None):
        import pandas as pd

        from ..learn.binning import BinMapper
        from ..learn.features import InteractionFeatureTransformer
        self.table = table
        self.n_jobs = n_jobs
        schema = table.schema
        first = schema.expand(table.decode(np.arange(min(1, table.n_stored))))
        with warnings.catch_warnings():  # skipped features are logged by the transformer
            warnings.simplefilter("ignore", UserWarning)
            self.transformer = InteractionFeatureTransformer(interactions=interactions).fit(
                pd.DataFrame(first, columns=schema.feature_names))
        self.feature_names = [str(c) for c in self.transformer.get_feature_names_out()]
        self.categorical = schema.native_features
        n = table.n_stored
        self.mapper = self._fit_mapper(255, evenly_spaced(n, MAPPER_ROWS))
        q = table.quantiser
        if q.numeric:
            widths = [len(c.feature_names()) for c in schema.columns]
            start = np.cumsum([0] + widths[:-1])
            for j in q.numeric:
                e = q.edges(j)
                f = int(start[j])
                self.mapper.edges_[f, :] = np.nan
                self.mapper.edges_[f, :e.size] = e
                self.mapper.n_edges_[f] = e.size
            self.mapper.n_bins_ = (self.mapper.n_edges_ + 1).astype(np.int32)
        self._mappers = {255: self.mapper}
        self.chunk = max(1024, SCORE_CELLS // max(1, len(self.feature_names)))
        self.codes = self._bin_codes(n)

    def _bin_codes(self, n):
        """Every stored row's bin codes, chunk by chunk. A table of numeric columns
        without interaction features stores exactly these codes (its quantiser's edges
        are the trees'), so while every chunk equals the stored rows the stored rows are
        used themselves, not a copy (200 MB on 10M rows x 20 numeric columns)."""
        rows = self.table.rows
        same = rows.dtype == np.uint8 and rows.shape[1] == len(self.feature_names)
        codes = None
        for a in range(0, n, self.chunk):
            b = min(n, a + self.chunk)
            c = self.mapper.transform(self.Z(np.arange(a, b)), n_jobs=self.n_jobs)
            if same and np.array_equal(c, rows[a:b]):
                continue
            if codes is None:
                codes = np.empty((n, len(self.feature_names)), dtype=np.uint8)
                if a:
                    codes[:a] = rows[:a]   # the chunks so far equal the stored rows
                same = False
            codes[a:b] = c
        return rows if codes is None else codes

    def Z(self, index):
        """Model features (interactions included) of the stored rows ``index``."""
        E = self.table.decode(index)
        return self.transformer.transform_array(self.table.schema.expand(E))

    def _fit_mapper(self, max_bins, pick):
        """A BinMapper of ``max_bins`` bins fitted on the stored rows ``pick``, its native
        category features mapped code for code (see the class docstring)."""
        from ..learn.binning import BinMapper
        mapper = BinMapper(max_bins=max_bins).fit(self.Z(pick))
        if self.categorical:
            cols = self.categorical
            k = [len(c.categories) for c in self.table.schema.columns if c.native]
            for f in cols:
                mapper.edges_[f, :] = np.nan
                mapper.n_edges_[f] = 0
            mapper.n_bins_ = (mapper.n_edges_ + 1).astype(np.int32)
            mapper._cat_from_arrays({
                "bin_cat_columns": np.array(cols, dtype=np.int64),
                "bin_cat_start": np.cumsum([0] + k).astype(np.int64),
                "bin_cat_values": np.concatenate([np.arange(m, dtype=np.float64) for m in k]),
                "bin_cat_codes": np.concatenate([np.arange(m, dtype=np.uint8) for m in k]),
                "bin_cat_params": np.array([MAX_NATIVE], dtype=np.int64)})
        return mapper

    def mapper_for(self, max_bins):
        """Bin edges for trees of ``max_bins`` bins (255: the table's own)."""
        if max_bins not in self._mappers:
            pick = evenly_spaced(self.table.n_stored, MAPPER_ROWS)
            self._mappers[max_bins] = self._fit_mapper(max_bins, pick)
        return self._mappers[max_bins]


class Part:
    """Rows of some parts of the table: to train on (``index`` (m,) stored rows with
    ``counts`` (m, 2) rows per label, or for a table kept row by row ``labels`` (m,)
    uint8, each row one row of its label: 1 byte a row instead of 16) and, as (row,
    label) pairs, to score: ``pair_row`` (position in ``index``), ``y`` and ``w`` (rows
    the pair stands for). The pairs are made when first asked for: a part that is only
    trained on (a refit) never holds them (17 bytes a row, 136 MB for the training split
    of 10M rows kept row by row)."""

    def __init__(self, index, counts=None, labels=None):
        if (counts is None) == (labels is None):
            raise ValueError("a part has counts or labels")
        self.index = index
        self.counts = counts
        self.labels = labels
        self._pairs = None

    @property
    def table_counts(self):
        """What the C core's learners take: the counts, or the labels of rows kept row
        by row."""
        return self.counts if self.counts is not None else self.labels

    def label_counts(self, pick=None):
        """(m, 2) int64 rows per label (of the rows ``pick`` of the part only)."""
        if self.counts is not None:
            return self.counts if pick is None else self.counts[pick]
        lab = self.labels if pick is None else self.labels[pick]
        c = np.zeros((lab.shape[0], 2), dtype=np.int64)
        c[np.arange(lab.shape[0]), lab] = 1
        return c

    def row_weights(self):
        """(m,) float64: the rows each stored row stands for (read-only unit weights for
        rows kept row by row, as their pairs')."""
        if self.counts is not None:
            return self.counts.sum(axis=1).astype(np.float64)
        return unit_weights(self.labels.shape[0])

    def _pair_arrays(self):
        if self._pairs is None:
            if self.counts is None:   # one pair a row, each standing for one row
                self._pairs = (np.arange(self.labels.shape[0]), self.labels,
                               unit_weights(self.labels.shape[0]))
            else:
                r, label = np.nonzero(self.counts)      # (row, label) pairs in row order
                self._pairs = (r, label.astype(np.uint8),
                               self.counts[r, label].astype(np.float64))
        return self._pairs

    @property
    def pair_row(self):
        return self._pair_arrays()[0]

    @property
    def y(self):
        return self._pair_arrays()[1]

    @property
    def w(self):
        return self._pair_arrays()[2]


def unit_weights(n):
    """(n,) float64 ones, read-only, in 8 bytes (a stride-0 view): the weights of pairs
    that stand for one row each (a table kept row by row: 64 MB of ones on 8M rows,
    held by the details of every family otherwise). Pickled, it is a plain array."""
    return np.broadcast_to(np.float64(1.0), (int(n),))


def _is_unit(w):
    return w.ndim == 1 and w.strides == (0,) and (w.shape[0] == 0 or float(w[0]) == 1.0)


def _join_weights(ws):
    """The pairs' weights of several parts, joined (unit weights stay unit weights)."""
    if all(_is_unit(w) for w in ws):
        return unit_weights(sum(w.shape[0] for w in ws))
    return np.concatenate(ws)


def _part(table, parts):
    index, counts = table.select(parts)
    return Part(index, counts) if table.distinct else Part(index, labels=counts)


def _read_only(a):
    """``a``, no longer writable: arrays shared by every family are not changed by one."""
    a.setflags(write=False)
    return a


class TableFolds:
    """The cross-validation folds, the training split and the validation split of a
    table, and the one way estimators are fitted and scored on them. Parts are made
    when asked for (a table kept row by row would hold every row several times over)."""

    def __init__(self, table, features):
        self.table = table
        self.features = features
        self.n_folds = table.n_folds
        self._oof_labels = None
        self._validation_labels = None

    def oof_labels(self, vals):
        """``(y, w, per-fold views)`` of the out-of-fold (row, label) pairs, fold after
        fold, from the (y, w) of the folds' validation parts ``vals``. Joined once and
        then the same arrays for every family, so the families' details share them (a
        table kept row by row has a pair a row: 72 MB a family on 8M training rows)."""
        sizes = [int(v[0].shape[0]) for v in vals]
        if self._oof_labels is None:
            self._oof_labels = (sizes, _read_only(np.concatenate([y for y, _ in vals])),
                                _read_only(_join_weights([w for _, w in vals])))
        known, y, w = self._oof_labels
        if sizes != known:
            raise RuntimeError(f"the folds' pairs changed between families ({sizes} pairs "
                               f"a fold, {known} before)")
        cuts = np.cumsum(sizes)[:-1]
        return y, w, list(zip(np.split(y, cuts), np.split(w, cuts)))

    def validation_labels(self, part):
        """``(y, w)`` of the validation split's pairs, ``part`` being that split: the
        same arrays for every family (as :meth:`oof_labels`)."""
        if self._validation_labels is None:
            self._validation_labels = (_read_only(part.y), _read_only(part.w))
        y, w = self._validation_labels
        if y.shape[0] != part.y.shape[0]:
            raise RuntimeError(f"the validation split's pairs changed between families "
                               f"({part.y.shape[0]} pairs, {y.shape[0]} before)")
        return y, w

    def fold(self, f):
        """(training part, validation part) of fold f."""
        k = self.n_folds
        return _part(self.table, [p for p in range(k) if p != f]), _part(self.table, [f])

    @property
    def training(self):
        """Every fold: the training split."""
        return _part(self.table, range(self.n_folds))

    @property
    def validation(self):
        """The validation split (None for a table without one)."""
        vp = self.table.validation_part
        return None if vp is None else _part(self.table, [vp])

    def fit(self, est, part):
        """Fit ``est`` on the rows of ``part``."""
        from ..learn.trees import TreeEnsemble
        feats, table = self.features, self.table
        index, counts = part.index, part.table_counts
        if isinstance(est, TreeEnsemble):
            codes = feats.codes[index] if est.max_bins == 255 else \
                feats.mapper_for(est.max_bins).transform(feats.Z(index))
            if table.distinct:     # the canonical order: the rows as compress_rows sorts them
                cr = compress_rows(codes)
                if cr.n_unique < codes.shape[0] or not np.array_equal(cr.rows, codes):
                    merged = np.stack([np.bincount(cr.inverse, weights=counts[:, c],
                                                   minlength=cr.n_unique) for c in (0, 1)], 1)
                    codes, counts = cr.rows, merged.astype(np.int64)
            # weights None: the counts themselves (no sample weights here)
            return est.fit_table(feats.mapper_for(est.max_bins), np.ascontiguousarray(codes),
                                 np.ascontiguousarray(counts), None, CLASSES, None)
        pick = None
        if not table.distinct and index.size > LINEAR_MAX_ROWS:
            pick = evenly_spaced(index.size, LINEAR_MAX_ROWS)
            logger.info("%s: trained on %d evenly spaced rows of %d (rows that do not "
                        "compress)", type(est).__name__, LINEAR_MAX_ROWS, index.size)
            index = index[pick]
        est._warn_unused = False  # constant features: reported once, by name (unused_features)
        return est.fit_table(None, np.ascontiguousarray(feats.Z(index)), None,
                             part.label_counts(pick).astype(np.float64), CLASSES, None)

    def unused_features(self, est):
        """Names of the features a fitted linear model could not use (constant in its
        training rows: coefficient 0); empty for other models."""
        scale = getattr(est, "x_scale_", None)
        if scale is None:
            return []
        return [self.features.feature_names[j] for j in np.flatnonzero(~(scale > 0))]

    def row_scores(self, est, index, Z=None, prefixes=None):
        """Positive-class scores of the stored rows ``index`` (each scored once), shape
        (n,); with ``prefixes`` (keyword sets of the estimator's ``predict_proba_prefix``)
        shape (len(prefixes), n), every sub-model scored in one walk of the trees. ``Z``:
        the rows' features when already made (see :meth:`part_features`)."""
        def score(Zc):
            if prefixes is not None:
                return est.predict_proba_prefixes(Zc, prefixes)
            return np.asarray(est.predict_proba(Zc))[:, 1]

        if Z is not None:
            return score(Z)
        n = index.shape[0]
        out = np.empty(n if prefixes is None else (len(prefixes), n))
        step = self.features.chunk
        for a in range(0, n, step):
            out[..., a:a + step] = score(self.features.Z(index[a:a + step]))
        return out

    def part_features(self, part):
        """The features of a part's stored rows, made once for every configuration a
        grid scores on it; None when they would not fit in one chunk (rows mode)."""
        if part.index.shape[0] > self.features.chunk:
            return None
        return self.features.Z(part.index)

    def scores(self, est, part, Z=None, prefixes=None):
        """Scores of the (row, label) pairs of ``part`` (per prefix: see row_scores)."""
        return self.row_scores(est, part.index, Z, prefixes)[..., part.pair_row]


MIN_POSITIVES = 30        # positive rows in the training split below which a run warns
MIN_FOLD_POSITIVES = 10   # positive rows in one fold (or the validation split) likewise


def check_parts(table):
    """DataError unless every fold's training and validation parts hold both classes; a
    warning when the positives are fewer than MIN_POSITIVES in the training split or
    MIN_FOLD_POSITIVES in a fold or the validation split (thresholds, F1 and calibration
    then rest on a handful of rows)."""
    plc = table.part_label_counts()
    k = table.n_folds
    pos = int(plc[:k, 1].sum())
    thin = [f"fold {f + 1}: {int(plc[f, 1])}" for f in range(k) if plc[f, 1] < MIN_FOLD_POSITIVES]
    if table.validation_part is not None and plc[k, 1] < MIN_FOLD_POSITIVES:
        thin.append(f"validation split: {int(plc[k, 1])}")
    if pos < MIN_POSITIVES or thin:
        logger.warning("%s: only %d positive row(s) in the training split%s (at least %d, "
                       "and %d per fold, are needed for a usable model): the threshold, F1 "
                       "and calibration rest on a handful of rows", table.source, pos,
                       f" ({'; '.join(thin)})" if thin else "", MIN_POSITIVES,
                       MIN_FOLD_POSITIVES)
    for f in range(k):
        train = plc[[p for p in range(k) if p != f]].sum(axis=0)
        if min(plc[f].min(), train.min()) < 1:
            raise DataError(f"{table.source}: the training split has "
                            f"{int(plc[:k, 1].sum())} positive and {int(plc[:k, 0].sum())} "
                            f"negative row(s); every one of the {k} folds needs positives "
                            f"and negatives")
    if table.validation_part is not None and plc[k].min() < 1:
        raise DataError(f"{table.source}: the validation split has {int(plc[k, 1])} positive "
                        f"and {int(plc[k, 0])} negative row(s); it needs both classes")


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


def base_params(family, cls, label_counts, seed, n_jobs, n_distinct=None, categorical=None):
    """The parameters every configuration of a family shares: class balancing from the
    training rows' ``label_counts`` (negatives, positives), seed, threads, and the
    features that are ``categorical`` (positions; the native category columns')."""
    names = set(cls._get_param_names())
    params = {}
    if categorical:
        params["categorical_features"] = [int(f) for f in categorical]
    if family == "gradient_boosting":
        params["scale_pos_weight"] = float(label_counts[0]) / float(label_counts[1])
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


def check_configurations(estimator_cls, configs, base_params, family, n_rows, n_features):
    """DataError naming the family and the parameter when a configuration holds a value
    its estimator refuses (a negative depth, an int beyond the C core's range, a fraction
    above 1), before anything is fitted: the estimator's own parameter checks, run on
    the shape of the training data."""
    for cfg in configs:
        est = estimator_cls(**{**base_params, **cfg})  # a grid value wins
        check = getattr(est, "validated_params", None) or est._check_params
        shape = (n_rows, n_features)[:len(inspect.signature(check).parameters)]
        try:
            check(*shape)
        except (TypeError, ValueError) as exc:
            raise DataError(f"grid of {family}: {exc}") from None


def grid_search(estimator_cls, folds, grid, base_params, *, family="model", progress=None,
                n_jobs=None):
    """Stratified k-fold grid search scored by F1 over the folds of a table
    (:class:`TableFolds`: weighted distinct rows, each scored once).

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
    check_configurations(estimator_cls, configs, base_params, family,
                         int(folds.table.n_rows), len(folds.features.feature_names))
    prefix = [p for p in prefix_params(estimator_cls) if p in grid and len(grid[p]) > 1]
    groups = {}
    for ci, cfg in enumerate(configs):
        key = tuple((k, repr(v)) for k, v in sorted(cfg.items()) if k not in prefix)
        groups.setdefault(key, []).append(ci)
    scores = [[None] * folds.n_folds for _ in configs]
    parts = [folds.fold(fi) for fi in range(folds.n_folds)] if folds.table.distinct else None
    vals = []
    tasks = []
    for fi in range(folds.n_folds):
        for members in groups.values():
            fit_params = dict(configs[members[0]])
            for p in prefix:
                fit_params[p] = _largest(p, [configs[ci][p] for ci in members])
            tasks.append((fi, members, fit_params))

    def run(task, train, val, params):
        fi, members, fit_params = task
        t0 = time.perf_counter()
        est = folds.fit(estimator_cls(**{**params, **fit_params}), train)
        Zv = folds.part_features(val)
        if prefix:    # every member is a sub-model of this fit: scored in one walk
            kws = [{p: configs[ci][p] for p in prefix} for ci in members]
            for ci, s in zip(members, folds.scores(est, val, Zv, kws)):
                scores[ci][fi] = s
        else:
            scores[members[0]][fi] = folds.scores(est, val, Zv)
        del est   # a deep forest holds hundreds of MB: free it before the next fit
        if not folds.table.distinct:   # rows kept row by row: big fits, whose freed heap
            _core.trim_heap()          # pages go back to the system (see trim_heap)
        logger.debug("%s fold %d: fit %s in %.2fs, scored %d configuration(s)",
                     family, fi, fit_params, time.perf_counter() - t0, len(members))
        if progress is not None:
            progress.update(1)

    workers = _concurrent_fits(estimator_cls, folds, n_jobs, len(tasks))
    if workers > 1:
        # small tables: fits of one thread each, side by side (a fit's own threads do
        # little on a few thousand rows); the results do not depend on the threads
        from concurrent.futures import ThreadPoolExecutor
        params = dict(base_params, n_jobs=1)
        y_oof, w_oof, vals = folds.oof_labels([(val.y, val.w) for _, val in parts])
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(run, t, *parts[t[0]], params) for t in tasks]
            try:
                for f in futures:
                    f.result()
            except BaseException:  # an error or an interrupt: start no further fit
                for f in futures:
                    f.cancel()
                raise
    results = [None] * len(configs)

    def finish(ci):
        """The figures of configuration ci, every fold scored."""
        f1_05 = [M.f1_score(y, s >= 0.5, w) for (y, w), s in zip(vals, scores[ci])]
        thr, f1_best = M.best_f1_threshold(y_oof, np.concatenate(scores[ci]), w_oof)
        results[ci] = {"params": configs[ci], "mean_f1_at_0.5": float(np.mean(f1_05)),
                       "fold_f1_at_0.5": [float(v) for v in f1_05],
                       "oof_f1_best_threshold": f1_best, "oof_raw_threshold": thr}

    def rank_key(ci):
        # the F1 of the deployed rule (tuned threshold); ties -> F1 at 0.5, then order
        return (round(results[ci]["oof_f1_best_threshold"], 10),
                round(results[ci]["mean_f1_at_0.5"], 10), -ci)

    if workers > 1:
        for ci in range(len(configs)):
            finish(ci)
    else:
        # one fit at a time, all folds of a fit group before the next group: once a group
        # is scored only the best configuration so far keeps its scores (a table kept row
        # by row has millions of out-of-fold scores a configuration: 64 MB each on 10M
        # rows, 576 MB for logistic regression's 9); a table kept row by row makes its
        # folds again for each group rather than hold them all
        keep = None
        for gi, members in enumerate(groups.values()):
            for fi in range(folds.n_folds):
                train, val = parts[fi] if parts is not None else folds.fold(fi)
                if gi == 0:
                    vals.append((val.y, val.w))
                for task in tasks:
                    if task[0] == fi and task[1] is members:
                        run(task, train, val, base_params)
                del train, val
            if gi == 0:
                y_oof, w_oof, vals = folds.oof_labels(vals)
            for ci in members:
                finish(ci)
                if keep is None or rank_key(ci) > rank_key(keep):
                    if keep is not None:
                        scores[keep] = None
                    keep = ci
                else:
                    scores[ci] = None
    best = max(range(len(configs)), key=rank_key)
    for ci, r in enumerate(results):
        r["rank"] = 1 + sum(
            (results[o]["oof_f1_best_threshold"], results[o]["mean_f1_at_0.5"])
            > (r["oof_f1_best_threshold"], r["mean_f1_at_0.5"]) for o in range(len(configs)))
    return {"best_params": configs[best], "best_index": best, "cv_results": results,
            "oof": (np.concatenate(scores[best]), y_oof, w_oof)}


CONCURRENT_MAX_ROWS = 200_000   # stored rows below which fits run side by side


def _concurrent_fits(estimator_cls, folds, n_jobs, n_tasks):
    """How many fits of a grid run at once: one per processor (or per thread of
    ``n_jobs``) for logistic regression and boosting on a table of few distinct rows,
    whose own threads do little there; one for forests (their trees already run in
    parallel, and each deep forest holds its nodes) and for tables kept row by row.
    ``grid_search`` documents the thread budget ``n_jobs`` (None: every processor)."""
    from ..learn.forest import RandomForestClassifier
    if (issubclass(estimator_cls, RandomForestClassifier) or not folds.table.distinct
            or folds.table.n_stored > CONCURRENT_MAX_ROWS or n_tasks < 2):
        return 1
    cpus = os.cpu_count() or 1
    want = cpus if n_jobs is None or n_jobs < 0 else int(n_jobs)
    return max(1, min(want, cpus, n_tasks))


def tune_on_oof(oof, y, w, calibration):
    """The calibration fitted on out-of-fold scores and the threshold of best out-of-fold
    F1 on the calibrated scores: ``(calibrator or None, threshold, f1, calibrated oof)``."""
    calibrator, oof_cal = None, oof
    if calibration is not None:
        calibrator = make_calibrator(calibration).fit(oof, y, w)
        oof_cal = np.clip(calibrator.transform(oof), 0.0, 1.0)
    threshold, f1 = M.best_f1_threshold(y, oof_cal, w)
    return calibrator, threshold, f1, oof_cal


def fit_with_oof(estimator, table, interactions=True, calibration="isotonic", n_jobs=None):
    """The recipe of one model on a table without a validation split: out-of-fold scores
    over its folds, the calibration and threshold tuned on them, the refit on all rows.
    Returns ``(fitted estimator, calibrator, threshold, features)``."""
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    features = TableFeatures(table, interactions, n_jobs)
    check_parts(table)
    folds = TableFolds(table, features)
    if features.categorical and "categorical_features" in cls._get_param_names():
        params["categorical_features"] = list(features.categorical)
    gs = grid_search(cls, folds, {}, params)
    calibrator, threshold, _, _ = tune_on_oof(*gs["oof"], calibration)
    return folds.fit(cls(**params), folds.training), calibrator, threshold, features


def count_fits(estimator_cls, grid, n_folds):
    prefix = [p for p in prefix_params(estimator_cls) if p in grid and len(grid[p]) > 1]
    rest = [len(v) for k, v in grid.items() if k not in prefix]
    return int(np.prod(rest, dtype=np.int64)) * n_folds
