"""Random forest classifier on the C histogram tree learner.

Trains on binned, compressed rows: identical rows merge into one row with per-label
counts and weights, and the bootstrap draws each unique row's per-label multiplicity
from Poisson(count). Each node's feature subset comes from a seed derived from the
tree seed and the node's path, so a shallower forest (``max_depth``), a forest with a
larger ``min_samples_split`` and the first k trees are all exact sub-forests of the
big one: :meth:`RandomForestClassifier.predict_proba_prefix` and
:meth:`RandomForestClassifier.truncate` give the grid search those models without refitting.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .base import register_estimator
from .._typing import ArrayLike, FloatArray
from .._core_loader import _core
from .trees import (TreeEnsemble, check_float, check_int, label_totals, prune_trees,
                     resolve_seed, table_class_weight)
from .validation import check_n_jobs, resolve_class_weight

__all__ = ["RandomForestClassifier"]

_CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1}


def _resolve_max_features(max_features, p):
    if max_features is None:
        return p
    if isinstance(max_features, str):
        if max_features == "sqrt":
            return max(1, int(math.sqrt(p)))
        if max_features == "log2":
            return max(1, int(math.log2(p)))
        raise ValueError(f"max_features must be 'sqrt', 'log2', an int, a float or None, "
                         f"got {max_features!r}")
    if isinstance(max_features, bool):
        raise TypeError(f"max_features must not be a bool, got {max_features!r}")
    if isinstance(max_features, numbers.Integral):
        if not 1 <= max_features <= p:
            raise ValueError(f"max_features must be in [1, {p}] (the number of features), "
                             f"got {max_features}")
        return int(max_features)
    if isinstance(max_features, numbers.Real):
        if not 0.0 < max_features <= 1.0:
            raise ValueError(f"max_features as a float must be in (0, 1], got {max_features}")
        return max(1, int(max_features * p))
    raise TypeError(f"max_features must be 'sqrt', 'log2', an int, a float or None, "
                    f"got {max_features!r}")


def _resolve_count(value, name, n, low):
    """An int >= low, or a float fraction of the rows (like scikit-learn)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_int(value, name, low=low)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = check_float(value, name, 0.0, 1.0, low_open=True)
        return max(low, int(math.ceil(v * n)))
    raise TypeError(f"{name} must be an int or a float, got {value!r}")


@register_estimator
class RandomForestClassifier(TreeEnsemble):
    """Random forest of histogram trees (binary classification).

    Parameters follow scikit-learn's RandomForestClassifier; ``max_bins`` sets the
    value bins per feature (binary features always get 2). ``min_samples_split`` and
    ``min_samples_leaf`` count rows (bootstrap multiplicities). ``max_samples`` (None, an
    int >= 1 or a float in (0, 1], a fraction of the training rows; bootstrap only) sets the
    rows each tree draws, as in scikit-learn: on large files of rows that do not repeat, a
    few hundred thousand draws per tree grow trees of bounded size at a fraction of the cost.

    Categorical features: ``categorical_features`` (column names, indices or a boolean
    mask; columns of pandas ``category`` dtype always are categorical) are split by sets
    of categories: a column gets ``max_cat`` codes (a column with more values keeps its
    most frequent ones and groups the rare ones by their smoothed positive rate in
    training, see :class:`BinMapper`; values unseen in fit get an "other" code, NaN is
    missing), a node sorts
    its categories with at least ``min_data_per_group`` rows by their smoothed positive share
    (class-1 weight / (weight + cat_smooth)) and tries every
    prefix and suffix of that order of at most ``max_cat_threshold`` categories as the
    left set; "other", missing and the categories left out go right.
    """

    _average = True
    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data":
            "the bootstrap draws each row's multiplicity from its count, not from its "
            "sample weight (as in scikit-learn's forests), so a weight of 2 is not two "
            "copies of the row",
    }

    def _extra_from_meta(self, meta, trees):
        # a forest averages per-tree probabilities: values outside [0, 1] would give
        # probabilities outside [0, 1] (the C validator only checks they are finite)
        v = trees["value"]
        if v.size and not ((v >= 0.0) & (v <= 1.0)).all():
            raise ValueError("model document: random-forest node values must lie in [0, 1]")
        return super()._extra_from_meta(meta, trees)

    def __init__(self, *, n_estimators=100, criterion="gini", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, max_features="sqrt",
                 bootstrap=True, class_weight=None, random_state=None, n_jobs=None,
                 max_bins=255, categorical_features=None, max_cat=254, cat_smooth=10.0,
                 min_data_per_group=20.0, max_cat_threshold=32, max_samples=None):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.max_samples = max_samples
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.max_cat = max_cat
        self.cat_smooth = cat_smooth
        self.min_data_per_group = min_data_per_group
        self.max_cat_threshold = max_cat_threshold

    def _check_params(self, n, p):
        n_est = check_int(self.n_estimators, "n_estimators", low=1)
        if self.criterion not in _CRITERIA:
            raise ValueError(f"criterion must be 'gini' or 'entropy', got {self.criterion!r}")
        depth = check_int(self.max_depth, "max_depth", low=1, allow_none=True)
        mss = _resolve_count(self.min_samples_split, "min_samples_split", n, 2)
        msl = _resolve_count(self.min_samples_leaf, "min_samples_leaf", n, 1)
        mf = _resolve_max_features(self.max_features, p)
        if not isinstance(self.bootstrap, (bool, np.bool_)):
            raise TypeError(f"bootstrap must be a bool, got {self.bootstrap!r}")
        draws = self._resolve_max_samples(n)
        check_int(self.max_bins, "max_bins", low=2, high=255)
        self._check_cat_params()
        n_jobs = check_n_jobs(self.n_jobs)
        return n_est, depth, mss, msl, mf, n_jobs, draws

    def _resolve_max_samples(self, n):
        """Bootstrap draws per tree (0: as many as the n training rows)."""
        if self.max_samples is None:
            return 0
        if not self.bootstrap:
            raise ValueError(f"max_samples={self.max_samples!r} needs bootstrap=True (without "
                             f"the bootstrap every tree sees every row)")
        m = _resolve_count(self.max_samples, "max_samples", n, 1)
        if m > n:
            raise ValueError(f"max_samples={self.max_samples!r} exceeds the {n} training rows")
        return m

    def fit(self, X: ArrayLike, y: ArrayLike,
            sample_weight: ArrayLike | None = None) -> RandomForestClassifier:
        """Fit the forest; ``sample_weight`` multiplies the class weights per row."""
        X, names, y01, classes, sw = self._validate_data(X, y, sample_weight)
        n, p = X.shape
        self._check_params(n, p)
        resolve_class_weight(self.class_weight, classes, y01, sw)  # fail before binning
        mapper, codes, counts, weights = self._bin(X, names, y01, sw, self.max_bins)
        return self.fit_table(mapper, codes, counts, weights, classes, names)

    def fit_table(self, mapper, codes: np.ndarray, counts: np.ndarray,
                  weights: np.ndarray | None, classes: np.ndarray,
                  names: list[str] | None) -> RandomForestClassifier:
        """Fit on a binned, compressed table (see ``_trees.table_class_weight``); ``fit``
        and ``propensity.dask.fit_dask`` both end here, so equal tables give equal models.
        ``counts``: (u, 2) rows per label, or (n,) uint8 labels of rows kept row by row
        (one row each). ``weights`` None: the counts themselves (rows without sample
        weights)."""
        totals = label_totals(counts)   # counts (u, 2), or labels (n,) of rows kept row by row
        n, p = int(totals.sum()), codes.shape[1]
        n_est, depth, mss, msl, mf, n_jobs, draws = self._check_params(n, p)
        if 2 * msl > n or mss > n:
            what = (f"min_samples_leaf={self.min_samples_leaf!r} (a split needs "
                    f"{2 * msl} rows)" if 2 * msl > n
                    else f"min_samples_split={self.min_samples_split!r} ({mss} rows)")
            warnings.warn(f"RandomForestClassifier: {what} on {n} training rows: no node can "
                          f"be split, every tree is one leaf and the model is constant",
                          UserWarning, stacklevel=2)
        # weights None: the label totals of the counts (no float copy of them)
        cw = table_class_weight(self.class_weight, classes,
                                totals[None] if weights is None else weights)
        seed = resolve_seed(self.random_state)
        trees = _core.forest_fit(codes=codes, counts=counts, weights=weights,
                                 class_weight=(float(cw[0]), float(cw[1])), n_estimators=n_est,
                                 criterion=_CRITERIA[self.criterion], max_depth=depth or 0,
                                 min_samples_split=float(mss), min_samples_leaf=float(msl),
                                 max_features=mf, bootstrap=bool(self.bootstrap), seed=seed,
                                 n_threads=n_jobs, max_samples=float(draws),
                                 **self._categorical_args(mapper))
        self._set_fitted(mapper, trees, classes, names, p, seed)
        return self

    # ---- importances -------------------------------------------------------------
    @property
    def feature_importances_(self) -> FloatArray:
        """Impurity-decrease importances: per tree normalised, averaged, normalised."""
        self._check_fitted()
        g = self._gains()
        tot = g.sum(axis=1, keepdims=True)
        per_tree = np.divide(g, tot, out=np.zeros_like(g), where=tot > 0)
        imp = per_tree.mean(axis=0)
        s = imp.sum()
        return imp / s if s > 0 else imp

    # ---- prefix scoring for the grid search -----------------------------------------
    def _check_prefix(self, n_estimators, max_depth, min_samples_split):
        self._check_fitted()
        k = check_int(n_estimators, "n_estimators", low=1, high=self.n_trees_, allow_none=True)
        d = check_int(max_depth, "max_depth", low=1, allow_none=True)
        if d is not None and self.max_depth is not None and d > self.max_depth:
            raise ValueError(f"max_depth={d} exceeds the fitted max_depth={self.max_depth}")
        m = None
        if min_samples_split is not None:
            m = check_int(min_samples_split, "min_samples_split", low=2)
            if isinstance(self.min_samples_split, numbers.Integral) and m < self.min_samples_split:
                raise ValueError(f"min_samples_split={m} is below the fitted "
                                 f"min_samples_split={self.min_samples_split}")
        return k, d, m

    def predict_proba_prefix(self, X: ArrayLike, *, n_estimators: int | None = None,
                             max_depth: int | None = None,
                             min_samples_split: int | None = None) -> FloatArray:
        """Scores of the sub-forest: the first n_estimators trees, cut at max_depth /
        min_samples_split; equal to a fresh fit with those parameters."""
        return self._proba(X, *self._prefix_cut(n_estimators, max_depth, min_samples_split))

    def _prefix_cut(self, n_estimators=None, max_depth=None, min_samples_split=None):
        """(n_trees, max_depth, min_samples_split) of the C scorer's cut; 0: none."""
        k, d, m = self._check_prefix(n_estimators, max_depth, min_samples_split)
        return k or 0, d or 0, float(m or 0)

    def truncate(self, *, n_estimators: int | None = None, max_depth: int | None = None,
                 min_samples_split: int | None = None) -> RandomForestClassifier:
        """A new fitted forest with those limits (its params say them), without refitting."""
        k, d, m = self._check_prefix(n_estimators, max_depth, min_samples_split)
        trees = prune_trees(self._trees, k or self.n_trees_, d, m)
        params = {}
        if k is not None:
            params["n_estimators"] = k
        if d is not None:
            params["max_depth"] = d
        if m is not None:
            params["min_samples_split"] = m
        return self._copy_fitted(trees, **params)
