"""Penalised logistic regression on the C core (csrc/logreg.c, OpenBLAS).

The objective is scikit-learn's ``LogisticRegression`` for the same parameters,
divided by ``C``, on features standardised inside the model::

    sum_i s_i * logloss_i + (1 / C) * [(1 - l1_ratio) / 2 * ||w||^2 + l1_ratio * ||w||_1]

with ``s_i = sample_weight_i * class_weight[y_i]`` and an unpenalised intercept.
Standardisation uses the sample-weighted mean and standard deviation of each
column (with ``fit_intercept=False`` only the root mean square, without centring),
so users pass raw data; ``coef_``/``intercept_`` are on the original scale and
``coef_standardized_``/``intercept_standardized_`` on the scale the penalty sees.
A constant column gets a zero coefficient and an :class:`UnusedFeatureWarning` naming it;
a column beyond float range even after scaling is a ValueError naming it.

uint8 (binary) input is first compressed to weighted unique rows, which is exact:
the log-losses of identical rows add up.

Categorical features (``categorical_features``: names, indices, a boolean mask, or
columns of pandas ``category`` dtype, as for the tree ensembles) are target encoded:
each category's column value becomes its smoothed log-odds of the positive class,

    log(pos_v + m * prior) - log(neg_v + m * (1 - prior))

(``pos_v`` / ``neg_v`` the sample weight of the category's positive / negative rows,
``prior`` the overall positive rate, ``m = cat_smooth`` the prior's strength), so a rare
category is shrunk toward the overall log-odds. Inside ``fit`` the rows are cut into
``cat_folds`` folds (fixed, by a seeded permutation of the rows) and a row's encoding is
computed from the other folds only: a row's own label never enters its own value, so
the coefficient is not fitted on a leak. Scoring uses the table of all training rows;
a category not seen in fit and a missing value (NaN) get the prior's log-odds. One
column a categorical feature, whatever its number of categories, so the cost of a fit
stays linear in rows (a one-hot design of k categories would make the Newton solver's
Hessian k x k). The encoded column's coefficient and SHAP value belong to the feature.
"""
from __future__ import annotations

import logging
import math
import numbers
import warnings

import numpy as np

from .base import BaseEstimator, ClassifierMixin, register_estimator, set_fitted_names
from .._typing import ArrayLike, FloatArray
from .._core_loader import _core
from .validation import (C_INT_MAX, check_fitted_X, check_n_jobs, check_sample_weight,
                          check_X, check_y, resolve_class_weight)

logger = logging.getLogger(__name__)

__all__ = ["LogisticRegression", "ConvergenceWarning", "UnusedFeatureWarning"]


class ConvergenceWarning(UserWarning):
    """A solver stopped at max_iter before meeting its tolerance."""


class UnusedFeatureWarning(UserWarning):
    """A feature the model cannot use (constant in the training rows): its coefficient
    is 0."""


def _column_name(names, j):
    return f"column {int(j)} ({names[int(j)]!r})" if names is not None else f"column {int(j)}"


def _name_columns(message, names):
    """``message`` with each "column <number>" of the C core followed by its name."""
    if names is None:
        return message
    import re
    return re.sub(r"column (\d+)", lambda m: _column_name(names, m.group(1))
                  if int(m.group(1)) < len(names) else m.group(0), message)


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _reject_nan(X, names, categorical=()):
    if X.dtype.kind == "f":
        bad = np.isnan(X)
        if len(categorical):
            bad[:, list(categorical)] = False  # a missing category: the prior
        if bad.any():
            i, j = np.argwhere(bad)[0]
            col = repr(names[j]) if names is not None else str(j)
            raise ValueError(f"X column {col} has a missing value (NaN) at row {i}; "
                             f"LogisticRegression needs complete data (impute it first)")


def _sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@register_estimator
class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Binary logistic regression with L2 or elastic-net penalty.

    Parameters
    ----------
    C : float > 0, inverse penalty strength (as in scikit-learn).
    l1_ratio : None (pure L2) or float in [0, 1] (elastic net; 1 = lasso).
    class_weight : None, 'balanced' or dict {label: weight}.
    fit_intercept : bool.
    max_iter : int >= 1, outer (Newton) iterations.
    tol : float >= 0; stop when the largest entry of the minimum-norm subgradient is
        at most ``tol`` times the total weight (a mean-loss gradient tolerance).
    n_jobs : None / -1 (all cores) or a positive int; results do not depend on it.
    categorical_features : None, column names, indices or a boolean mask (columns of
        pandas ``category`` dtype are categorical too): features target encoded (see the
        module docstring); NaN in them is a missing category, not an error.
    cat_smooth : float > 0, the prior's strength in rows (default 10).
    cat_folds : int >= 2, folds of the cross-fitted encoding inside fit (default 5).
    """

    _allow_nan = False  # NaN is refused (impute it first), except in categorical features

    def __init__(self, *, C=1.0, l1_ratio=None, class_weight=None, fit_intercept=True,
                 max_iter=100, tol=1e-6, n_jobs=None, categorical_features=None,
                 cat_smooth=10.0, cat_folds=5):
        self.C = C
        self.l1_ratio = l1_ratio
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.categorical_features = categorical_features
        self.cat_smooth = cat_smooth
        self.cat_folds = cat_folds

    # ---- validation ------------------------------------------------------
    def validated_params(self):
        C = self.C
        if not _is_real(C) or not np.isfinite(C) or C <= 0:
            raise ValueError(f"C must be a finite number > 0, got {C!r}")
        l1 = self.l1_ratio
        if l1 is None:
            l1 = 0.0
        elif not _is_real(l1) or not (0.0 <= l1 <= 1.0):
            raise ValueError(f"l1_ratio must be None or a number in [0, 1], got {l1!r}")
        if not isinstance(self.max_iter, numbers.Integral) or isinstance(self.max_iter, bool) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if self.max_iter > C_INT_MAX:
            raise ValueError(f"max_iter must be at most {C_INT_MAX}, got {self.max_iter}")
        if not _is_real(self.tol) or not np.isfinite(self.tol) or self.tol < 0:
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        m = self.cat_smooth
        if not _is_real(m) or not np.isfinite(m) or m <= 0:
            raise ValueError(f"cat_smooth must be a finite number > 0, got {m!r}")
        k = self.cat_folds
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 2 <= k <= 1000:
            raise ValueError(f"cat_folds must be an int in [2, 1000], got {k!r}")
        return float(C), float(l1), int(self.max_iter), float(self.tol), check_n_jobs(self.n_jobs)

    # ---- fit -----------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike,
            sample_weight: ArrayLike | None = None) -> LogisticRegression:
        """Fit on X (n, p) and binary y; returns self."""
        from .trees import _category_frame
        C, l1, max_iter, tol, n_threads = self.validated_params()
        columns = getattr(X, "columns", None)
        # repeated column names: check_X names them (the category columns need unique ones)
        X, levels = _category_frame(X, None) if columns is None or columns.is_unique \
            else (X, {})
        X, names = check_X(X)
        n, p = X.shape
        cat = self._categorical(names, p, levels)
        _reject_nan(X, names, cat)
        y01, classes = check_y(y, n)
        sw = check_sample_weight(sample_weight, n)
        resolve_class_weight(self.class_weight, classes, y01, sw)  # fail before compressing
        Xfit, base = self._training_rows(X, y01, sw, n_threads)
        return self.fit_table(None, Xfit, None, base, classes, names, levels=levels)

    def _categorical(self, names, p, levels):
        from .trees import resolve_categorical
        return resolve_categorical(self.categorical_features, names, p, list(levels or {}))

    def fit_table(self, mapper, Xfit, counts, base, classes, names, levels=None):
        """Fit on (unique) rows ``Xfit`` with per-label sample weights ``base`` (rows, 2)
        (``mapper`` and ``counts`` are unused: the signature matches the tree ensembles').
        ``fit`` and ``propensity.dask.fit_dask`` both end here. ``levels``: the pandas
        category columns' categories (``fit``)."""
        C, l1, max_iter, tol, n_threads = self.validated_params()
        p = Xfit.shape[1]
        base = np.asarray(base, dtype=np.float64)
        cat = self._categorical(names, p, levels)
        self._cat_levels = dict(levels or {})
        self._target_encoding = None
        _reject_nan(Xfit, names, cat)
        if cat:
            self._target_encoding = _TargetEncoding.fit(Xfit, base, cat, float(self.cat_smooth))
            Xfit = self._target_encoding.cross_fitted(Xfit, base, int(self.cat_folds))
        cw = resolve_class_weight(self.class_weight, classes, np.array([0, 1], dtype=np.uint8),
                                  np.asarray(base, dtype=np.float64).sum(axis=0))
        loss_w = np.ascontiguousarray(base * cw[None, :])
        scale_w = np.ascontiguousarray(base.sum(axis=1))
        if not (loss_w[:, 0].sum() > 0 and loss_w[:, 1].sum() > 0):
            raise ValueError("class_weight/sample_weight leave one class of y with zero total "
                             "weight; both classes need positive weight")
        try:
            res = _core.logreg_fit(Xfit, loss_w, scale_w, C, l1, bool(self.fit_intercept),
                                   max_iter, tol, n_threads)
        except ValueError as exc:  # the core names a column by number: add its name
            raise ValueError(_name_columns(str(exc), names)) from None

        self.classes_ = classes
        set_fitted_names(self, names, p)
        self.coef_ = res["coef"].reshape(1, p)
        self.intercept_ = np.array([res["intercept"]])
        self.coef_standardized_ = res["coef_std"].reshape(1, p)
        self.intercept_standardized_ = np.array([res["intercept_std"]])
        self.x_mean_ = res["mean"]
        self.x_scale_ = res["scale"]
        # the (sample-weighted) training mean, the baseline of shap_values: the centring
        # itself with an intercept; without one the columns are not centred
        self.x_train_mean_ = (res["mean"] if self.fit_intercept
                              else (scale_w @ Xfit) / scale_w.sum())
        self.n_iter_ = np.array([res["n_iter"]], dtype=np.int32)
        self.objective_ = float(res["objective"])
        self.converged_ = bool(res["converged"])
        logger.debug("LogisticRegression: trained on %d rows, %d iterations, objective %.10g",
                     Xfit.shape[0], res["n_iter"], self.objective_)
        unused = np.flatnonzero(~(res["scale"] > 0))
        if unused.size and getattr(self, "_warn_unused", True):  # off: the caller reports
            cols = ", ".join(_column_name(names, j) for j in unused[:10])
            more = f" and {unused.size - 10} more" if unused.size > 10 else ""
            warnings.warn(f"LogisticRegression: {unused.size} feature(s) constant in the "
                          f"training rows, given coefficient 0 (no effect on the scores): "
                          f"{cols}{more}", UnusedFeatureWarning, stacklevel=3)
        if not self.converged_:
            warnings.warn(f"LogisticRegression did not converge within max_iter={max_iter} "
                          f"iterations (tol={tol}); increase max_iter",
                          ConvergenceWarning, stacklevel=3)
        return self

    @staticmethod
    def _training_rows(X, y01, sw, n_threads):
        """(rows to train on, (rows, 2) sample weight per label without class weights)."""
        if X.dtype == np.uint8:
            try:
                from .compress import compress_rows
            except ImportError:  # the compression module is not available: train row by row
                compress_rows = None
            if compress_rows is not None:
                cr = compress_rows(X, y01, sw, n_jobs=n_threads if n_threads > 0 else None)
                return np.ascontiguousarray(cr.rows), np.asarray(cr.weights, dtype=np.float64)
        Xfit = X if X.dtype in (np.float64, np.uint8) else X.astype(np.float64)
        base = np.zeros((X.shape[0], 2))
        base[np.arange(X.shape[0]), y01] = 1.0 if sw is None else sw
        return np.ascontiguousarray(Xfit), base

    # ---- prediction ------------------------------------------------------
    def _check_predict_X(self, X: ArrayLike) -> np.ndarray:
        """X checked against fit, its categorical features replaced by their encoding."""
        from .trees import _category_frame
        self._check_fitted()
        X, _ = _category_frame(X, getattr(self, "_cat_levels", None) or {})
        X, names = check_fitted_X(self, X)
        enc = getattr(self, "_target_encoding", None)
        _reject_nan(X, names, enc.columns if enc is not None else ())
        return enc.transform(X) if enc is not None else X

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """Log-odds of the positive class (classes_[1]), shape (n,)."""
        X = self._check_predict_X(X)
        return X.astype(np.float64, copy=False) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Probabilities of classes_[0] and classes_[1], shape (n, 2)."""
        p1 = _sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: ArrayLike) -> np.ndarray:
        self._check_fitted()
        return self.classes_[(self.decision_function(X) > 0).astype(np.intp)]

    def shap_values(self, X):
        """Exact SHAP values of the log-odds, float64 (n, n_features + 1): column j is
        ``coef_standardized_[j] * (z_j - mean z_j)`` on the standardised scale the model
        uses (equal to ``coef_[j] * (x_j - training mean_j)``), the last column the
        expected value ``intercept_ + coef_ . training mean``; each row sums to
        ``decision_function``. The training mean is sample weighted. A categorical
        feature's x_j is its encoded value (its training mean the cross-fitted values')."""
        X = self._check_predict_X(X)
        mean = getattr(self, "x_train_mean_", None)
        if mean is None:
            raise ValueError("this LogisticRegression was loaded from a model document "
                             "without its training mean (fit_intercept=False, saved by an "
                             "older version); refit it to explain its scores")
        coef = self.coef_[0]
        out = np.empty((X.shape[0], X.shape[1] + 1))
        np.multiply(X.astype(np.float64, copy=False) - mean, coef, out=out[:, :-1])
        out[:, -1] = self.intercept_[0] + float(coef @ mean)
        return out

    # ---- persistence -----------------------------------------------------
    def _to_document(self):
        meta = {
            "n_features_in": int(self.n_features_in_),
            "feature_names": (None if getattr(self, "feature_names_in_", None) is None
                              else [str(c) for c in self.feature_names_in_]),
            "n_iter": int(self.n_iter_[0]),
            "converged": bool(self.converged_),
            "objective": float(self.objective_),
            "intercept": float(self.intercept_[0]),
            "intercept_standardized": float(self.intercept_standardized_[0]),
        }
        arrays = {
            "coef": np.ascontiguousarray(self.coef_[0], dtype=np.float64),
            "coef_standardized": np.ascontiguousarray(self.coef_standardized_[0],
                                                      dtype=np.float64),
            "x_mean": np.ascontiguousarray(self.x_mean_, dtype=np.float64),
            "x_scale": np.ascontiguousarray(self.x_scale_, dtype=np.float64),
        }
        if getattr(self, "x_train_mean_", None) is not None:
            arrays["x_train_mean"] = np.ascontiguousarray(self.x_train_mean_, dtype=np.float64)
        enc = getattr(self, "_target_encoding", None)
        if enc is not None:
            arrays.update(enc.to_arrays())
        levels = getattr(self, "_cat_levels", None)
        if levels:
            from .trees import _jsonable_level
            meta["category_levels"] = {k: [_jsonable_level(v) for v in lv]
                                       for k, lv in levels.items()}
        classes = self.classes_
        if classes.dtype.kind in "iuf":
            arrays["classes"] = np.ascontiguousarray(classes.astype(
                np.float64 if classes.dtype.kind == "f" else np.int64))
            meta["classes_kind"] = classes.dtype.kind
        elif classes.dtype.kind == "b":
            meta["classes_kind"] = "b"
            meta["classes"] = [bool(c) for c in classes]
        else:
            meta["classes_kind"] = "str"
            meta["classes"] = [str(c) for c in classes]
        return meta, arrays

    @classmethod
    def _from_document(cls, params, meta, arrays):
        def fail(msg):
            raise ValueError(f"invalid LogisticRegression document: {msg}")

        p, kind = meta.get("n_features_in"), meta.get("classes_kind")
        if not isinstance(p, int) or isinstance(p, bool) or not isinstance(kind, str):
            fail("missing n_features_in or classes")
        if p < 1:
            fail(f"n_features_in is {p}")
        for name in ("coef", "coef_standardized", "x_mean", "x_scale"):
            a = arrays.get(name)
            if a is None or a.dtype != np.float64 or a.shape != (p,):
                fail(f"array {name!r} must be float64 of shape ({p},)")
            if not np.isfinite(a).all():
                fail(f"array {name!r} has non-finite values")
        train_mean = arrays.get("x_train_mean")  # absent in documents of older versions
        if train_mean is not None and (train_mean.dtype != np.float64 or train_mean.shape != (p,)
                                       or not np.isfinite(train_mean).all()):
            fail(f"array 'x_train_mean' must be finite float64 of shape ({p},)")
        if kind in "iuf" and len(kind) == 1:
            classes = arrays.get("classes")
            if classes is None or classes.ndim != 1 or classes.dtype.kind not in "iuf":
                fail("classes array missing")
            if classes.dtype.kind == "f" and not np.isfinite(classes).all():
                fail("classes are not finite")
            if kind in "iu":
                classes = classes.astype(np.int64)
        elif kind in ("b", "str"):
            raw = meta.get("classes")
            ok = bool if kind == "b" else str
            if not isinstance(raw, list) or not all(isinstance(c, ok) for c in raw):
                fail("classes missing or of the wrong type")
            classes = np.array(raw, dtype=bool) if kind == "b" else np.array(raw, dtype=str)
        else:
            fail(f"unknown classes kind {kind!r}")
        if classes.shape != (2,) or classes[0] == classes[1]:
            fail(f"expected 2 distinct classes, found {classes.tolist()!r}")
        names = meta.get("feature_names")
        if names is not None and (not isinstance(names, list) or len(names) != p
                                  or not all(isinstance(n, str) for n in names)):
            fail("feature_names does not match n_features_in")
        n_iter, converged, objective = (meta.get("n_iter", 0), meta.get("converged", True),
                                        meta.get("objective", np.nan))
        if not isinstance(n_iter, int) or isinstance(n_iter, bool) or not 0 <= n_iter < 2**31:
            fail("n_iter must be a non-negative integer")
        if not isinstance(converged, bool):
            fail("converged must be true or false")
        if not _is_real(objective):
            fail("objective must be a number")
        valid = set(cls._get_param_names())
        if set(params) - valid:
            fail(f"unknown parameters {sorted(set(params) - valid)}")
        intercepts = []
        for key in ("intercept", "intercept_standardized"):
            v = meta.get(key)
            try:
                finite = _is_real(v) and math.isfinite(v)
            except OverflowError:  # an integer beyond float range
                finite = False
            if not finite:
                fail(f"{key} must be a finite number")
            intercepts.append(float(v))

        cw = params.get("class_weight")
        if isinstance(cw, dict):  # JSON made the labels strings: map them back
            by_str = {str(c): (c.item() if isinstance(c, np.generic) else c) for c in classes}
            params = dict(params, class_weight={by_str.get(k, k): v for k, v in cw.items()})
        est = cls(**params)
        est.classes_ = classes
        set_fitted_names(est, names, p)
        est.coef_ = arrays["coef"].reshape(1, p)
        est.intercept_ = np.array([intercepts[0]])
        est.coef_standardized_ = arrays["coef_standardized"].reshape(1, p)
        est.intercept_standardized_ = np.array([intercepts[1]])
        est.x_mean_ = arrays["x_mean"]
        est.x_scale_ = arrays["x_scale"]
        if train_mean is None and isinstance(est.fit_intercept, (bool, np.bool_)) \
                and est.fit_intercept:
            train_mean = est.x_mean_  # with an intercept the centring is the training mean
        est.x_train_mean_ = train_mean
        est.n_iter_ = np.array([n_iter], dtype=np.int32)
        est.converged_ = converged
        est.objective_ = float(objective)
        est._target_encoding = _TargetEncoding.from_arrays(arrays, p)  # None: no categories
        levels = meta.get("category_levels") or {}
        if not isinstance(levels, dict) or not all(isinstance(v, list) for v in levels.values()):
            fail("category_levels must map names to lists")
        est._cat_levels = dict(levels)
        return est


class _TargetEncoding:
    """The target encoding of a model's categorical features (module docstring):
    ``columns`` and, for each, its categories (sorted) and their log-odds, and the
    prior's log-odds (unseen and missing categories)."""

    def __init__(self, columns, values, codes, prior):
        self.columns = [int(j) for j in columns]
        self.values = [np.asarray(v, dtype=np.float64) for v in values]
        self.codes = [np.asarray(c, dtype=np.float64) for c in codes]
        self.prior = float(prior)

    @staticmethod
    def _log_odds(pos, neg, prior, m):
        return np.log(pos + m * prior) - np.log(neg + m * (1.0 - prior))

    @staticmethod
    def _prior(pos, neg):
        total = pos + neg
        return float(min(max(pos / total, 1e-12), 1 - 1e-12)) if total > 0 else 0.5

    @classmethod
    def fit(cls, X, base, columns, m):
        """The full-data table of rows X with per-label weights ``base`` (rows, 2)."""
        neg, pos = base[:, 0], base[:, 1]
        prior = cls._prior(float(pos.sum()), float(neg.sum()))
        values, codes = [], []
        for j in columns:
            col = np.asarray(X[:, j], dtype=np.float64)
            seen = ~np.isnan(col)
            vals, inv = np.unique(col[seen], return_inverse=True)
            p = np.bincount(inv, weights=pos[seen], minlength=vals.size)
            n = np.bincount(inv, weights=neg[seen], minlength=vals.size)
            values.append(vals)
            codes.append(cls._log_odds(p, n, prior, m))
        self = cls(columns, values, codes, float(np.log(prior / (1.0 - prior))))
        self.m = m
        return self

    def cross_fitted(self, X, base, n_folds):
        """X (float64 copy) with each categorical value replaced by its encoding from the
        rows of the other folds (rows dealt to folds by a permutation seeded 0)."""
        n = X.shape[0]
        k = max(1, min(int(n_folds), n))
        fold = np.empty(n, dtype=np.int64)
        fold[np.random.default_rng(0).permutation(n)] = np.arange(n) % k
        neg, pos = base[:, 0], base[:, 1]
        P = np.bincount(fold, weights=pos, minlength=k)
        N = np.bincount(fold, weights=neg, minlength=k)
        prior = np.array([self._prior(float(P.sum() - P[f]), float(N.sum() - N[f]))
                          for f in range(k)])
        out = np.array(X, dtype=np.float64, order="C")
        for j, vals in zip(self.columns, self.values):
            col = out[:, j]
            seen = ~np.isnan(col)
            inv = np.searchsorted(vals, col[seen])  # every training value is among vals
            key = fold[seen] * vals.size + inv
            p = np.bincount(key, weights=pos[seen], minlength=k * vals.size).reshape(k, -1)
            q = np.bincount(key, weights=neg[seen], minlength=k * vals.size).reshape(k, -1)
            p_out, q_out = p.sum(axis=0) - p, q.sum(axis=0) - q  # (folds, categories)
            table = self._log_odds(p_out, q_out, prior[:, None], self.m)
            enc = np.log(prior / (1.0 - prior))[fold]           # missing: the fold's prior
            enc[seen] = table[fold[seen], inv]
            out[:, j] = enc
        return out

    def transform(self, X):
        """X (float64 copy) with the full-data encodings; unseen and NaN: the prior."""
        out = np.array(X, dtype=np.float64, order="C")
        for j, vals, codes in zip(self.columns, self.values, self.codes):
            col = out[:, j]
            enc = np.full(col.shape, self.prior)
            if vals.size:
                pos = np.minimum(np.searchsorted(vals, col), vals.size - 1)
                hit = vals[pos] == col           # False for NaN
                enc[hit] = codes[pos[hit]]
            out[:, j] = enc
        return out

    def to_arrays(self):
        return {"cat_columns": np.array(self.columns, dtype=np.int64),
                "cat_start": np.cumsum([0] + [v.size for v in self.values]).astype(np.int64),
                "cat_values": np.concatenate(self.values).astype(np.float64),
                "cat_encoding": np.concatenate(self.codes).astype(np.float64),
                "cat_prior": np.array([self.prior], dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays, p):
        if "cat_columns" not in arrays:   # no categorical features (and older documents)
            return None
        try:
            cols, start = np.asarray(arrays["cat_columns"]), np.asarray(arrays["cat_start"])
            vals, codes = np.asarray(arrays["cat_values"]), np.asarray(arrays["cat_encoding"])
            prior = np.asarray(arrays["cat_prior"])
        except KeyError as exc:
            raise ValueError(f"invalid LogisticRegression document: categorical arrays lack "
                             f"{exc.args[0]!r}") from None
        ok = (cols.ndim == 1 and cols.dtype.kind in "iu" and cols.size >= 1
              and len(set(cols.tolist())) == cols.size and ((cols >= 0) & (cols < p)).all()
              and start.shape == (cols.size + 1,) and start.dtype.kind in "iu"
              and start[0] == 0 and (np.diff(start) >= 0).all()
              and vals.dtype == np.float64 and codes.dtype == np.float64
              and vals.ndim == 1 and vals.shape == codes.shape and start[-1] == vals.size
              and prior.shape == (1,) and prior.dtype == np.float64
              and np.isfinite(vals).all() and np.isfinite(codes).all()
              and np.isfinite(prior).all())
        if ok:
            ok = all((np.diff(vals[a:b]) > 0).all() for a, b in zip(start[:-1], start[1:]))
        if not ok:
            raise ValueError("invalid LogisticRegression document: malformed categorical "
                             "encoding arrays")
        return cls(cols.tolist(), [vals[a:b] for a, b in zip(start[:-1], start[1:])],
                   [codes[a:b] for a, b in zip(start[:-1], start[1:])], float(prior[0]))
