"""Shared machinery of the tree ensembles (random forest, gradient boosting).

Fitting: validate X/y -> bin with a :class:`BinMapper` -> merge identical binned rows
(:func:`compress_rows`, when a sample shows it pays) -> the C learner trains on the
weighted unique rows and returns flat node arrays, which are kept here as NumPy
arrays. Scoring bins new rows with the training edges and walks the node arrays in
C (validated on every call). Persistence stores the bin edges and node arrays.

Categorical features (``categorical_features``; columns of pandas ``category`` dtype
always are) are binned to category codes (:class:`BinMapper`) and split by sets of
categories (csrc/include/propensity/tree.h): a categorical node keeps its set in the
optional node array ``cat_bits`` (4 uint64 per node; models without categorical
features have none, and documents written before it load as they are).
"""
from __future__ import annotations

import logging
import numbers
from typing import TYPE_CHECKING

import numpy as np

from .base import BaseEstimator, ClassifierMixin, set_fitted_names
from .._typing import ArrayLike, FloatArray
from .binning import BinMapper
from .compress import compress_rows, distinct_rows
from .._core_loader import _core
from .validation import (check_fitted_X, check_float, check_int, check_n_jobs,
                          check_sample_weight, check_X, check_y, resolve_class_weight)

if TYPE_CHECKING:
    from .plan import FeaturePlan

logger = logging.getLogger(__name__)

NODE_FIELDS = ("tree_start", "feature", "threshold", "left", "right", "value", "count", "gain")
NODE_DTYPES = {"tree_start": np.int64, "feature": np.int32, "threshold": np.uint8,
               "left": np.int32, "right": np.int32, "value": np.float64,
               "count": np.float64, "gain": np.float64}

CAT_BITS = "cat_bits"  # optional node array: the category sets (4 uint64 per node)
CAT_SPLIT = 255  # threshold of a categorical node (PROP_CAT_SPLIT)

# Compress when a sample of rows has at most this fraction of distinct rows.
_COMPRESS_SAMPLE = 20_000
_COMPRESS_MAX_RATIO = 0.5


def resolve_seed(random_state):
    """A 63-bit seed from None (fresh entropy), an int, or a numpy Generator/RandomState."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be None, an int or a numpy random generator, "
                        f"got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}")
    return int(random_state) & ((1 << 63) - 1)


def bin_and_compress(X, y01, sample_weight, max_bins, n_jobs, categorical=None,
                     max_cat=254, cat_smooth=10.0):
    """Bin X and return (mapper, codes, counts (u,2) int64, weights (u,2) float64).

    ``categorical``: indices of the categorical columns (BinMapper; the labels group
    their rare categories, smoothed by ``cat_smooth``). Identical binned
    rows are merged when a random sample suggests it pays; the
    learners give the model of the plain rows either way (plain rows carry one-hot
    counts; see GradientBoostingClassifier for boosting's one proviso)."""
    mapper = BinMapper(max_bins=max_bins, random_state=0, categorical=categorical,
                       max_cat=max_cat, cat_smooth=cat_smooth)
    mapper.fit(X, y01, sample_weight) if categorical else mapper.fit(X)
    B = mapper.transform(X, n_jobs=n_jobs)
    n = B.shape[0]
    compress = True
    if n > 2 * _COMPRESS_SAMPLE:
        idx = np.random.default_rng(0).choice(n, _COMPRESS_SAMPLE, replace=False)
        sample = compress_rows(np.ascontiguousarray(B[idx]))
        compress = sample.rows.shape[0] <= _COMPRESS_MAX_RATIO * _COMPRESS_SAMPLE
    if compress:
        cr = compress_rows(B, y01, sample_weight, n_jobs=n_jobs)
        logger.debug("compressed %d rows to %d unique rows", n, cr.rows.shape[0])
        return mapper, np.ascontiguousarray(cr.rows), np.ascontiguousarray(cr.counts, np.int64), \
            np.ascontiguousarray(cr.weights, np.float64)
    counts = np.zeros((n, 2), dtype=np.int64)
    counts[np.arange(n), y01] = 1
    sw = np.ones(n) if sample_weight is None else sample_weight
    weights = np.zeros((n, 2))
    weights[np.arange(n), y01] = sw
    return mapper, B, counts, weights


def label_totals(counts):
    """(2,) int64 rows per label of a table's ``counts``: (u, 2) rows per label, or (n,)
    0/1 labels (rows kept row by row, one row each)."""
    counts = np.asarray(counts)
    if counts.ndim == 1:
        return np.bincount(counts, minlength=2).astype(np.int64)
    return counts.sum(axis=0)


def table_class_weight(class_weight, classes, weights):
    """Class weights from a compressed table's per-label weight sums ((u, 2) ``weights``):
    the same as :func:`resolve_class_weight` on the rows the table came from."""
    return resolve_class_weight(class_weight, classes, np.array([0, 1], dtype=np.uint8),
                                np.asarray(weights, dtype=np.float64).sum(axis=0))


def node_depths(trees):
    """The depth of every node of flat tree arrays (a root is at 0), level by level."""
    ts, left, right = trees["tree_start"], trees["left"], trees["right"]
    n_trees = ts.shape[0] - 1
    base = np.repeat(ts[:-1], np.diff(ts))
    depth = np.zeros(int(ts[-1]), dtype=np.int64)
    frontier, d = ts[:-1].astype(np.int64), 0
    while frontier.size:
        depth[frontier] = d
        f = frontier[left[frontier] >= 0]
        frontier = np.concatenate([base[f] + left[f], base[f] + right[f]])
        d += 1
    return depth


def prune_trees(trees, n_trees, max_depth, min_samples_split):
    """Node arrays of the first n_trees trees with every node deeper than max_depth or
    with count < min_samples_split turned into a leaf and its subtree dropped."""
    ts = trees["tree_start"]
    end = int(ts[n_trees])
    feat, thr = trees["feature"][:end], trees["threshold"][:end]
    left, right = trees["left"][:end], trees["right"][:end]
    value, count, gain = trees["value"][:end], trees["count"][:end], trees["gain"][:end]
    tree_of = np.repeat(np.arange(n_trees), np.diff(ts[:n_trees + 1]))
    base = ts[:n_trees][tree_of]
    keep = np.zeros(end, dtype=bool)
    split = np.zeros(end, dtype=bool)  # kept and still internal
    frontier = ts[:n_trees].astype(np.int64)
    depth = 0
    while frontier.size:
        keep[frontier] = True
        internal = left[frontier] >= 0
        if max_depth is not None:
            internal &= depth < max_depth
        if min_samples_split is not None:
            internal &= count[frontier] >= min_samples_split
        f = frontier[internal]
        split[f] = True
        frontier = np.concatenate([base[f] + left[f], base[f] + right[f]])
        frontier.sort()
        depth += 1
    new_index = np.cumsum(keep) - 1
    kept = np.flatnonzero(keep)
    new_start = np.zeros(n_trees + 1, dtype=np.int64)
    np.cumsum(np.bincount(tree_of[kept], minlength=n_trees), out=new_start[1:])
    kb = base[kept]
    ksplit = split[kept]
    nl = np.where(ksplit, new_index[np.where(ksplit, kb + left[kept], 0)] -
                  new_start[tree_of[kept]], -1).astype(np.int32)
    nr = np.where(ksplit, new_index[np.where(ksplit, kb + right[kept], 0)] -
                  new_start[tree_of[kept]], -1).astype(np.int32)
    out = {"tree_start": new_start,
           "feature": np.where(ksplit, feat[kept], -1).astype(np.int32),
           "threshold": np.where(ksplit, thr[kept], 0).astype(np.uint8),
           "left": nl, "right": nr,
           "value": value[kept].copy(), "count": count[kept].copy(),
           "gain": np.where(ksplit, gain[kept], 0.0)}
    if CAT_BITS in trees:
        bits = trees[CAT_BITS][:4 * end].reshape(-1, 4)[kept]
        out[CAT_BITS] = np.where(ksplit[:, None], bits, 0).astype(np.uint64).ravel()
    return out


def _category_frame(X, levels):
    """X with its pandas ``category`` columns replaced by float codes: the position of
    the value in ``levels[name]`` (the categories seen in fit), NaN for a missing value
    and len(levels) for a category fit did not see (it is binned as "other").
    ``levels`` None: fit, the levels are taken from the dtypes. Returns (X, levels)."""
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        if levels:
            raise ValueError(f"X is not a DataFrame, but the model was fitted with the pandas "
                             f"category columns {sorted(levels)}")
        return X, levels if levels is not None else {}
    import pandas as pd

    fitting = levels is None
    if fitting:
        levels = {str(c): list(X[c].cat.categories) for c in X.columns
                  if isinstance(X[c].dtype, pd.CategoricalDtype)}
    if not levels:
        return X, levels
    X = X.copy(deep=False)
    for name, lv in levels.items():
        if name not in [str(c) for c in X.columns]:
            continue  # the feature-name check reports it
        col = X[[c for c in X.columns if str(c) == name][0]]
        known = pd.Index(lv).get_indexer(col.astype(object)).astype(np.float64)
        missing = col.isna().to_numpy()
        known[(known < 0) & ~missing] = len(lv)
        known[missing] = np.nan
        X[col.name] = known
    return X, levels


def _jsonable_level(v):
    """A category of a pandas column as a JSON value (numbers and strings as they are)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    raise ValueError(f"category {v!r} cannot be saved in a model document (categories must "
                     f"be strings or numbers)")


def resolve_categorical(spec, names, p, dtype_cols):
    """Indices of the categorical features: ``spec`` (None, names, indices or a boolean
    mask of length p) plus the columns of pandas category dtype (``dtype_cols``)."""
    cols = set()
    if spec is not None:
        items = list(np.asarray(spec).tolist()) if not isinstance(spec, (list, tuple)) else list(spec)
        if items and all(isinstance(v, (bool, np.bool_)) for v in items):
            if len(items) != p:
                raise ValueError(f"categorical_features as a boolean mask must have {p} "
                                 f"entries (the features), got {len(items)}")
            cols = {j for j, v in enumerate(items) if v}
        else:
            for v in items:
                if isinstance(v, str):
                    if names is None:
                        raise ValueError(f"categorical_features names the column {v!r}, but X "
                                         f"has no column names (pass a DataFrame or indices)")
                    if v not in names:
                        raise ValueError(f"categorical_features names the column {v!r}, "
                                         f"which X does not have")
                    cols.add(names.index(v))
                elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
                    if not -p <= int(v) < p:
                        raise ValueError(f"categorical_features index {v} is out of range "
                                         f"for {p} features")
                    cols.add(int(v) % p)
                else:
                    raise TypeError(f"categorical_features must hold column names, indices "
                                    f"or booleans, got {v!r}")
    cols |= {names.index(c) for c in dtype_cols}
    return sorted(cols)


class TreeEnsemble(ClassifierMixin, BaseEstimator):
    """Base of the two ensembles: fitted state, scoring, importances, persistence."""

    _average = True  # forest: mean of tree values; boosting: base + sum, then sigmoid

    # ---- fit helpers -------------------------------------------------------
    def _validate_data(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None
                       ) -> tuple[np.ndarray, list[str] | None, np.ndarray, np.ndarray,
                                  np.ndarray | None]:
        X, levels = _category_frame(X, None)
        X, names = check_X(X)
        self._cat_levels = levels
        y01, classes = check_y(y, X.shape[0])
        sw = check_sample_weight(sample_weight, X.shape[0])
        return X, names, y01, classes, sw

    def _categorical_args(self, mapper):
        """The C learner's categorical arguments for a table binned by ``mapper``."""
        if self.categorical_features is not None and mapper.categorical is None:
            raise ValueError("categorical_features needs the rows binned with categories "
                             "(fit); this table's bins are numeric")
        mask = mapper.categorical_mask_
        return dict(categorical=mask if mask.any() else None,
                    cat_smooth=check_float(self.cat_smooth, "cat_smooth", 0.0),
                    min_data_per_group=check_float(self.min_data_per_group,
                                                   "min_data_per_group", 0.0),
                    max_cat_threshold=check_int(self.max_cat_threshold, "max_cat_threshold",
                                                low=1, high=254))

    def _check_cat_params(self):
        check_int(self.max_cat, "max_cat", low=1, high=254)
        check_float(self.cat_smooth, "cat_smooth", 0.0)
        check_float(self.min_data_per_group, "min_data_per_group", 0.0)
        check_int(self.max_cat_threshold, "max_cat_threshold", low=1, high=254)

    def _bin(self, X, names, y01, sw, max_bins):
        """bin_and_compress with this estimator's categorical features."""
        cat = resolve_categorical(self.categorical_features, names, X.shape[1],
                                  list(self._cat_levels))
        return bin_and_compress(X, y01, sw, max_bins, self.n_jobs, categorical=cat,
                                max_cat=int(self.max_cat), cat_smooth=float(self.cat_smooth))

    def _set_fitted(self, mapper, trees, classes, names, n_features, seed, extra=None):
        self._bin_mapper = mapper
        self._trees = {k: np.ascontiguousarray(trees[k], dtype=NODE_DTYPES[k])
                       for k in NODE_FIELDS}
        if trees.get(CAT_BITS) is not None:
            self._trees[CAT_BITS] = np.ascontiguousarray(trees[CAT_BITS], dtype=np.uint64)
        self._seed = int(seed)
        self.classes_ = classes
        set_fitted_names(self, names, n_features)
        for k, v in (extra or {}).items():
            setattr(self, k, v)

    @property
    def n_trees_(self) -> int:
        self._check_fitted()
        return int(self._trees["tree_start"].shape[0] - 1)

    def _tree_tuple(self):
        return tuple(self._trees[k] for k in NODE_FIELDS) + (self._trees.get(CAT_BITS),)

    # ---- scoring -------------------------------------------------------------
    def _checked_X(self, X):
        self._check_fitted()
        X, _ = _category_frame(X, getattr(self, "_cat_levels", None) or {})
        return check_fitted_X(self, X)[0]

    def _binned(self, X):
        X = self._checked_X(X)  # first: an unfitted model has no _bin_mapper
        return self._bin_mapper.transform(X, n_jobs=self.n_jobs)

    def _distinct_codes(self, X):
        """(bin codes of X's distinct rows, inverse) when repeated rows (typical of binary
        session data) are found on the raw input by the C core, else (codes of X, None)."""
        X = self._checked_X(X)
        found = distinct_rows(X, max_fraction=0.25, n_jobs=self.n_jobs)
        if found is None:
            return self._bin_mapper.transform(X, n_jobs=self.n_jobs), None
        return self._bin_mapper.transform(found[0], n_jobs=self.n_jobs), found[1]

    def _proba(self, X, n_trees=0, max_depth=0, min_samples_split=0.0):
        """(n, 2) probabilities; each distinct row scored once and scattered back by the
        core (see _distinct_codes)."""
        B, inverse = self._distinct_codes(X)
        return _core.trees_proba(codes=B, trees=self._tree_tuple(), n_trees=int(n_trees),
                                 max_depth=int(max_depth),
                                 min_samples_split=float(min_samples_split),
                                 average=self._average,
                                 base=float(getattr(self, "base_score_", 0.0)),
                                 n_threads=check_n_jobs(self.n_jobs),
                                 inverse=inverse)

    def predict_proba_prefixes(self, X, prefixes):
        """Probabilities of classes_[1] under several sub-models at once, shape
        (len(prefixes), n): ``prefixes[i]`` holds the keyword arguments of
        ``predict_proba_prefix``. Each row walks each tree once for all of them (the grid
        search scores the configurations of one fit so); row i of the result equals
        ``predict_proba_prefix(X, **prefixes[i])[:, 1]`` bit for bit."""
        cuts = [self._prefix_cut(**kw) for kw in prefixes]
        if not cuts:
            raise ValueError("predict_proba_prefixes needs at least one prefix")
        B, inverse = self._distinct_codes(X)
        out = _core.trees_score_cuts(
            codes=B, trees=self._tree_tuple(),
            cut_trees=np.array([c[0] for c in cuts], dtype=np.int64),
            cut_depth=np.array([c[1] for c in cuts], dtype=np.int32),
            cut_mss=np.array([c[2] for c in cuts], dtype=np.float64),
            average=self._average, base=float(getattr(self, "base_score_", 0.0)),
            n_threads=check_n_jobs(self.n_jobs), positive_proba=True)
        return out if inverse is None else out[:, inverse]

    def _raw_scores(self, B, n_trees=0, max_depth=0, min_samples_split=0.0, reference=False):
        return _core.trees_score(codes=B, trees=self._tree_tuple(), n_trees=int(n_trees),
                                 max_depth=int(max_depth),
                                 min_samples_split=float(min_samples_split),
                                 average=self._average,
                                 base=float(getattr(self, "base_score_", 0.0)),
                                 n_threads=check_n_jobs(self.n_jobs),
                                 reference=bool(reference))

    def _proba_from_raw(self, raw):
        p1 = raw if self._average else 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - p1, p1])

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Class probabilities, shape (n, 2): column 1 is the probability of classes_[1]."""
        return self._proba(X)

    def proba_from_inputs(self, E: np.ndarray, plan: FeaturePlan) -> FloatArray:
        """Probability of classes_[1], shape (n,), of encoded inputs E whose features are
        made by the feature plan ``plan`` (:mod:`propensity.learn.plan`): the same values
        as ``predict_proba(features)[:, 1]``, computed by the C core from E straight to the
        bin codes of the trees, without a matrix of features or codes."""
        self._check_fitted()
        if self._bin_mapper.categorical_mask_.any():
            raise ValueError(f"{type(self).__name__} has categorical features: score it with "
                             f"predict_proba (the feature plan bins numerically)")
        if plan.n_features != self.n_features_in_:
            raise ValueError(f"the feature plan makes {plan.n_features} features, but "
                             f"{type(self).__name__} was fitted with {self.n_features_in_}")
        m = self._bin_mapper
        return _core.trees_score_inputs(plan.check_inputs(E), plan.arrays, m.edges_, m.n_edges_,
                                        self._tree_tuple(),
                                        0, 0, 0.0, self._average,
                                        float(getattr(self, "base_score_", 0.0)),
                                        check_n_jobs(self.n_jobs), positive_proba=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(np.intp)]

    def _gains(self, n_trees=0, max_depth=0, min_samples_split=0.0):
        return _core.trees_gains(trees=self._tree_tuple(), n_features=int(self.n_features_in_),
                                 n_trees=int(n_trees), max_depth=int(max_depth),
                                 min_samples_split=float(min_samples_split))

    # ---- explanations ---------------------------------------------------------------
    def shap_values(self, X):
        """Exact SHAP values (path-dependent TreeSHAP, in C), float64 (n, n_features + 1):
        one column per feature and, last, the expected value (bias). Each row sums to the
        raw score: the class-1 probability averaged over trees for a random forest, the
        log-odds (initial score included in the bias) for gradient boosting. The
        expectation weighs each split's children by the training rows that reached them
        (``trees_to_dataframe()['count']``). Identical binned rows are explained once."""
        return self._shap_from_codes(self._binned(X))

    def _shap_work_per_row(self):
        """A measure of the exact TreeSHAP work of one row, in the units of
        ``pipeline.SHAP_WORK`` (about 3.3 ns a unit on one core of the machine of
        benchmarks/), by the C core in one pass over the nodes (``prop_forest_shap_work``:
        each tree by its shape, following the kernel csrc/shap.c picks for it; nothing is
        compiled for a model too dear to explain). 200 trees of depth 20 with 13,742 nodes
        each: 1.3e7 units, about 40 ms a row (the recursion: 6e8)."""
        self._check_fitted()
        if self._trees["tree_start"].shape[0] <= 1:
            return 0.0
        return _core.trees_shap_work(self._tree_tuple(), int(self.n_features_in_))

    def _shap_from_codes(self, B, distinct=True):
        """SHAP values of binned rows B; distinct=True explains each distinct row once
        (through :func:`distinct_rows`) and scatters the result back."""
        found = distinct_rows(B, max_fraction=0.5, n_jobs=self.n_jobs) if distinct else None
        vals = _core.trees_shap(codes=B if found is None else found[0],
                                trees=self._tree_tuple(), average=self._average,
                                base=float(getattr(self, "base_score_", 0.0)),
                                n_threads=check_n_jobs(self.n_jobs), model=self._shap_model())
        return vals if found is None else vals[found[1]]

    def _shap_model(self):
        """The trees compiled once for explanations (their leaf tables, csrc/shap.c),
        kept with the fitted state (made again after a refit: the C core checks that it
        matches the trees it is used with)."""
        model = self.__dict__.get("_shap_compiled")
        if model is None or model[0] is not self._trees:
            model = (self._trees, _core.trees_shap_model(self._tree_tuple(),
                                                         int(self.n_features_in_)))
            self._shap_compiled = model
        return model[1]

    def _feature_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def trees_to_dataframe(self):
        """The nodes of every tree as a pandas DataFrame, one row per node in storage order:
        ``tree_index``, ``node_index`` (within the tree), ``depth``, ``left_child`` and
        ``right_child`` (node indices within the tree, -1 at a leaf), ``split_feature``
        (name; missing at a leaf), ``threshold`` (raw units: ``x <= threshold`` goes left; inf
        when every non-missing value goes left; NaN at a leaf), ``missing_direction``
        (``right``: missing values always go right; missing at a leaf), ``value`` (the node's
        output: class-1 fraction for a forest, leaf value in log-odds for boosting, before
        any averaging over trees), ``count`` (training rows reaching the node: bootstrap
        multiplicities for a forest) and ``gain`` (the split's gain, 0 at a leaf). A model
        with categorical features adds ``categories_left``: at a categorical split the list
        of the categories that go left (every other category, rare, unseen and missing
        values go right; its ``threshold`` is NaN), None elsewhere."""
        import pandas as pd

        self._check_fitted()
        t = self._trees
        ts = t["tree_start"]
        n_nodes = int(ts[-1])
        tree_of = np.repeat(np.arange(ts.shape[0] - 1), np.diff(ts))
        local = np.arange(n_nodes) - ts[tree_of]
        internal = t["left"] >= 0
        depth = node_depths(t)
        feat = np.where(internal, t["feature"], 0)
        thr = t["threshold"].astype(np.int64)
        m = self._bin_mapper
        # code c holds the values in (edges[c-1], edges[c]]: code <= c <=> x <= edges[c]
        raw = np.where(thr < m.n_edges_[feat], m.edges_[feat, np.minimum(thr, 254)], np.inf)
        is_cat = internal & (thr == CAT_SPLIT) & (CAT_BITS in t)
        raw = np.where(is_cat, np.nan, raw)
        names = np.array(self._feature_names(), dtype=object)
        cats_left = np.full(n_nodes, None, dtype=object)
        if is_cat.any():
            bits = t[CAT_BITS].reshape(-1, 4)
            levels = getattr(self, "_cat_levels", None) or {}
            for k in np.flatnonzero(is_cat):
                j = int(feat[k])
                words = bits[k]
                codes = [c for c in range(254) if int(words[c >> 6]) >> (c & 63) & 1]
                vals = m.cat_values_[j][np.isin(m.cat_codes_[j], codes)].tolist()
                lv = levels.get(str(names[j]))
                cats_left[k] = [lv[int(v)] for v in vals] if lv is not None else vals
        frame = pd.DataFrame({
            "tree_index": tree_of,
            "node_index": local,
            "depth": depth,
            "left_child": t["left"].astype(np.int64),
            "right_child": t["right"].astype(np.int64),
            "split_feature": np.where(internal, names[feat], None),
            "threshold": np.where(internal, raw, np.nan),
            "missing_direction": np.where(internal, "right", None),
            "value": t["value"].copy(),
            "count": t["count"].copy(),
            "gain": t["gain"].copy(),
        })
        if m.categorical_mask_.any():
            frame["categories_left"] = cats_left
        return frame

    # ---- persistence -----------------------------------------------------------
    def _extra_meta(self):
        return {}

    def _to_document(self):
        meta = {"classes": self.classes_.tolist(), "n_features_in": int(self.n_features_in_),
                "feature_names_in": (self.feature_names_in_.tolist()
                                     if hasattr(self, "feature_names_in_") else None),
                "seed": self._seed, **self._extra_meta()}
        levels = getattr(self, "_cat_levels", None)
        if levels:  # pandas category columns: their categories, in code order
            meta["category_levels"] = {k: [_jsonable_level(v) for v in lv]
                                       for k, lv in levels.items()}
        arrays = dict(self._bin_mapper.to_arrays())
        for k in NODE_FIELDS:
            arrays[f"tree_{k}"] = self._trees[k]
        if CAT_BITS in self._trees:
            arrays[f"tree_{CAT_BITS}"] = self._trees[CAT_BITS]
        return meta, arrays

    @classmethod
    def _from_document(cls, params, meta, arrays):
        est = cls(**{k: v for k, v in params.items() if k in cls._get_param_names()})
        try:  # scoring uses n_jobs: a hostile value must fail here, as a ValueError
            check_n_jobs(est.n_jobs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model document: bad n_jobs parameter ({exc})") from None
        try:
            classes = np.asarray(meta["classes"])
            p = int(meta["n_features_in"])
            seed = int(meta["seed"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"model document: bad or missing metadata ({exc})") from None
        if classes.shape != (2,) or p < 1:
            raise ValueError("model document: classes must hold 2 labels and n_features_in >= 1")
        mapper = BinMapper.from_arrays(arrays)
        if mapper.n_features_in_ != p:
            raise ValueError(f"model document: bin edges describe {mapper.n_features_in_} "
                             f"features, the model {p}")
        trees = {}
        for k in NODE_FIELDS:
            a = arrays.get(f"tree_{k}")
            if a is None:
                raise ValueError(f"model document lacks the node array tree_{k}")
            if a.ndim != 1 or a.dtype != NODE_DTYPES[k]:
                raise ValueError(f"model document: node array tree_{k} must be 1-D "
                                 f"{np.dtype(NODE_DTYPES[k])}, got {a.dtype} {a.shape}")
            trees[k] = np.ascontiguousarray(a)
        bits = arrays.get(f"tree_{CAT_BITS}")  # absent in documents without categories
        if bits is not None:
            if bits.ndim != 1 or bits.dtype != np.uint64:
                raise ValueError(f"model document: node array tree_{CAT_BITS} must be 1-D "
                                 f"uint64, got {bits.dtype} {bits.shape}")
            trees[CAT_BITS] = np.ascontiguousarray(bits)
        if trees["tree_start"].shape[0] < 2:
            raise ValueError("model document holds no trees")
        # every index, size and value is checked in C
        _core.trees_validate(trees=tuple(trees[k] for k in NODE_FIELDS) +
                             (trees.get(CAT_BITS),), n_features=p)
        cat_nodes = (trees["left"] >= 0) & (trees["threshold"] == CAT_SPLIT)
        mask = mapper.categorical_mask_
        if cat_nodes.any() and not mask[trees["feature"][cat_nodes]].all():
            raise ValueError("model document: a categorical split is on a feature the bins "
                             "do not say is categorical")
        levels = meta.get("category_levels") or {}
        if not isinstance(levels, dict) or not all(
                isinstance(v, list) for v in levels.values()):
            raise ValueError("model document: category_levels must map names to lists")
        names = meta.get("feature_names_in")
        if names is not None and (not isinstance(names, list) or len(names) != p):
            raise ValueError("model document: feature_names_in does not match n_features_in")
        est._set_fitted(mapper, trees, classes, names, p, seed,
                        est._extra_from_meta(meta, trees))
        est._cat_levels = dict(levels)
        return est

    def _extra_from_meta(self, meta, trees):
        return {}

    def _copy_fitted(self, trees, **params):
        """A new fitted estimator with these params and node arrays (same binning)."""
        new = type(self)(**{**self.get_params(deep=False), **params})
        names = self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
        new._set_fitted(self._bin_mapper, trees, self.classes_.copy(), names,
                        self.n_features_in_, self._seed, self._extra_copy())
        new._cat_levels = dict(getattr(self, "_cat_levels", None) or {})
        return new

    def _extra_copy(self):
        return {}
