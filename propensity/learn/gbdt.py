"""Gradient boosting classifier (logistic loss) on the C histogram tree learner.

Gradients and hessians are aggregated per unique binned row and label. Splits are
searched on histograms of the gradients and hessians quantised to integers (31 bits
over the whole sample: about 1e-9 of the total per unit), which makes a histogram
slot one integer add and the sums independent of order and thread count; leaf values
are exact double sums. A merged row is quantised per session, so training on
compressed rows gives the model of the plain rows; with unequal sample weights
inside a merged row, splits whose gains tie at that resolution may differ.
Early stopping watches the log-loss of an eval set;
the model keeps the trees up to ``best_iteration_``. The first k rounds of a model
are the k-round model: :meth:`GradientBoostingClassifier.predict_proba_prefix` and
:meth:`GradientBoostingClassifier.truncate` score them without refitting.
"""
from __future__ import annotations

import numpy as np

from .base import register_estimator
from .._typing import ArrayLike, FloatArray
from .._core_loader import _core
from .trees import (TreeEnsemble, _category_frame, check_float, check_int, prune_trees,
                     resolve_seed)
from .validation import check_n_jobs, check_X

__all__ = ["GradientBoostingClassifier"]


@register_estimator
class GradientBoostingClassifier(TreeEnsemble):
    """Histogram gradient boosting for binary classification (XGBoost-like parameters).

    Leaf values are ``-learning_rate * G / (H + reg_lambda)``; a split must leave a
    hessian of at least ``min_child_weight`` on both sides and reduce the loss.
    ``feature_importances_`` are total split gains, normalised.

    Categorical features: ``categorical_features`` (column names, indices or a boolean
    mask; columns of pandas ``category`` dtype always are categorical) are split by sets
    of categories: a column gets ``max_cat`` codes (a column with more values keeps its
    most frequent ones and groups the rare ones by their smoothed positive rate in
    training, see :class:`BinMapper`; values unseen in fit get an "other" code, NaN is
    missing), a node sorts
    its categories with at least ``min_data_per_group`` rows by their smoothed gradient ratio
    (G / (H + cat_smooth)) and tries every
    prefix and suffix of that order of at most ``max_cat_threshold`` categories as the
    left set; "other", missing and the categories left out go right.
    """

    _average = False
    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data":
            "the bin edges are quantiles of all rows, unweighted: a row of weight 0 still "
            "moves them, so it is not the same as a removed row (positive integer weights "
            "do equal repeated rows)",
    }

    def __init__(self, *, n_estimators=100, learning_rate=0.1, max_depth=6,
                 min_child_weight=1.0, reg_lambda=1.0, subsample=1.0, colsample_bytree=1.0,
                 scale_pos_weight=1.0, random_state=None, n_jobs=None, max_bins=255,
                 categorical_features=None, max_cat=254, cat_smooth=10.0,
                 min_data_per_group=20.0, max_cat_threshold=32):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.scale_pos_weight = scale_pos_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.max_cat = max_cat
        self.cat_smooth = cat_smooth
        self.min_data_per_group = min_data_per_group
        self.max_cat_threshold = max_cat_threshold

    def _check_params(self):
        self._check_cat_params()
        return dict(
            n_estimators=check_int(self.n_estimators, "n_estimators", low=1),
            learning_rate=check_float(self.learning_rate, "learning_rate", 0.0, low_open=True),
            max_depth=check_int(self.max_depth, "max_depth", low=1, allow_none=True),
            min_child_weight=check_float(self.min_child_weight, "min_child_weight", 0.0),
            reg_lambda=check_float(self.reg_lambda, "reg_lambda", 0.0),
            subsample=check_float(self.subsample, "subsample", 0.0, 1.0, low_open=True),
            colsample_bytree=check_float(self.colsample_bytree, "colsample_bytree", 0.0, 1.0,
                                         low_open=True),
            scale_pos_weight=check_float(self.scale_pos_weight, "scale_pos_weight", 0.0,
                                         low_open=True),
            max_bins=check_int(self.max_bins, "max_bins", low=2, high=255),
            n_jobs=check_n_jobs(self.n_jobs))

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            eval_set: list[tuple] | None = None,
            early_stopping_rounds: int | None = None) -> GradientBoostingClassifier:
        """Fit; ``eval_set`` is ``[(X_val, y_val)]`` (the last pair is watched) and
        ``early_stopping_rounds`` stops after that many rounds without improvement."""
        X, names, y01, classes, sw = self._validate_data(X, y, sample_weight)
        prm = self._check_params()
        esr = check_int(early_stopping_rounds, "early_stopping_rounds", low=1, allow_none=True)
        if esr is not None and not eval_set:
            raise ValueError("early_stopping_rounds needs an eval_set")
        mapper, codes, counts, weights = self._bin(X, names, y01, sw, prm["max_bins"])
        return self.fit_table(mapper, codes, counts, weights, classes, names,
                                    eval_set=eval_set, early_stopping_rounds=esr)

    def fit_table(self, mapper, codes: np.ndarray, counts: np.ndarray,
                  weights: np.ndarray | None, classes: np.ndarray, names: list[str] | None,
                  eval_set: list[tuple] | None = None,
                  early_stopping_rounds: int | None = None) -> GradientBoostingClassifier:
        """Fit on a binned, compressed table; ``fit`` and ``propensity.dask.fit_dask`` both
        end here, so equal tables give equal models. ``counts``: (u, 2) rows per label, or
        (n,) uint8 labels of rows kept row by row (one row each). ``weights`` None: the
        counts themselves (rows without sample weights)."""
        prm = self._check_params()
        esr = check_int(early_stopping_rounds, "early_stopping_rounds", low=1, allow_none=True)
        if esr is not None and not eval_set:
            raise ValueError("early_stopping_rounds needs an eval_set")
        p = codes.shape[1]
        seed = resolve_seed(self.random_state)
        ec = ey = ew = None
        if eval_set:
            try:
                pair = list(eval_set)[-1]
                Xv, yv = pair[0], pair[1]
                wv = pair[2] if len(pair) > 2 else None
            except (TypeError, IndexError):
                raise ValueError("eval_set must be a list of (X, y) pairs") from None
            Xv, _ = check_X(_category_frame(Xv, getattr(self, "_cat_levels", None) or {})[0],
                            name="eval_set X")
            if Xv.shape[1] != p:
                raise ValueError(f"eval_set X has {Xv.shape[1]} features, X has {p}")
            yv_raw = np.asarray(yv.to_numpy() if hasattr(yv, "to_numpy") else yv).ravel()
            if yv_raw.shape[0] != Xv.shape[0]:
                raise ValueError(f"eval_set X has {Xv.shape[0]} rows but y has {yv_raw.shape[0]}")
            known = np.isin(yv_raw, classes)
            if not known.all():
                bad = yv_raw[~known][0]
                raise ValueError(f"eval_set y holds a label {bad!r} not seen in y")
            ey = (yv_raw == classes[1]).astype(np.uint8)
            ec = mapper.transform(Xv, n_jobs=self.n_jobs)
            if wv is not None:
                ew = np.ascontiguousarray(wv, dtype=np.float64)
        md = prm["max_depth"] or 0
        res = _core.gbdt_fit(codes=codes, counts=counts, weights=weights, eval_codes=ec,
                             eval_y=ey, eval_weight=ew, n_estimators=prm["n_estimators"],
                             learning_rate=prm["learning_rate"], max_depth=md,
                             min_child_weight=prm["min_child_weight"],
                             reg_lambda=prm["reg_lambda"], subsample=prm["subsample"],
                             colsample_bytree=prm["colsample_bytree"],
                             scale_pos_weight=prm["scale_pos_weight"],
                             early_stopping_rounds=esr or 0, seed=seed, n_threads=prm["n_jobs"],
                             **self._categorical_args(mapper))
        best = res["best_iteration"]
        extra = {"base_score_": float(res["base_score"]),
                 "best_iteration_": int(best) if best >= 0 else None,
                 "evals_result_": ({"validation_0": {"logloss": res["eval_history"].tolist()}}
                                   if eval_set else {})}
        self._set_fitted(mapper, res, classes, names, p, seed, extra)
        return self

    @property
    def feature_importances_(self) -> FloatArray:
        """Total split gain per feature, normalised to sum 1."""
        self._check_fitted()
        imp = self._gains().sum(axis=0)
        s = imp.sum()
        return imp / s if s > 0 else imp

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """Raw scores (log-odds)."""
        return self._raw_scores(self._binned(X))

    # ---- prefix scoring ----------------------------------------------------------------
    def predict_proba_prefix(self, X: ArrayLike, *,
                             n_estimators: int | None = None) -> FloatArray:
        """Scores of the first n_estimators rounds (equal to a fit with that many)."""
        return self._proba(X, *self._prefix_cut(n_estimators))

    def _prefix_cut(self, n_estimators=None):
        """(n_trees, max_depth, min_samples_split) of the C scorer's cut; 0: none."""
        self._check_fitted()
        k = check_int(n_estimators, "n_estimators", low=1, high=self.n_trees_, allow_none=True)
        return k or 0, 0, 0.0

    def truncate(self, *, n_estimators: int | None = None) -> GradientBoostingClassifier:
        """A new fitted model with the first n_estimators rounds."""
        self._check_fitted()
        k = check_int(n_estimators, "n_estimators", low=1, high=self.n_trees_, allow_none=True)
        k = k or self.n_trees_
        trees = prune_trees(self._trees, k, None, None)
        new = self._copy_fitted(trees, n_estimators=k)
        new.best_iteration_ = None
        new.evals_result_ = {}
        return new

    # ---- persistence hooks ---------------------------------------------------------------
    def _extra_meta(self):
        return {"base_score": self.base_score_, "best_iteration": self.best_iteration_}

    def _extra_from_meta(self, meta, trees):
        try:
            base = float(meta["base_score"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("model document: bad or missing base_score") from None
        if not np.isfinite(base):
            raise ValueError("model document: base_score is not finite")
        best = meta.get("best_iteration")
        if best is not None and (not isinstance(best, int) or isinstance(best, bool)
                                 or not 0 <= best < len(trees["tree_start"]) - 1):
            raise ValueError("model document: best_iteration must be null or a tree index")
        return {"base_score_": base, "best_iteration_": best,
                "evals_result_": {}}

    def _extra_copy(self):
        return {"base_score_": self.base_score_, "best_iteration_": self.best_iteration_,
                "evals_result_": {}}
