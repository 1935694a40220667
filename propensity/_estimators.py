"""The one place the training pipeline gets its estimators and stand-in data from.

The pipeline uses propensity's own RandomForestClassifier, GradientBoostingClassifier
and LogisticRegression and their prefix-scoring APIs. While those are being built on
other branches, scikit-learn/XGBoost stand-ins with the same interface are used here
(development only: the released package has our estimators, and sklearn is a test
dependency).
"""
import logging
import pickle

import numpy as np

from ._base import BaseEstimator, register_estimator

logger = logging.getLogger(__name__)

FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")


def _ours():
    import propensity
    return {
        "random_forest": getattr(propensity, "RandomForestClassifier", None),
        "gradient_boosting": getattr(propensity, "GradientBoostingClassifier", None),
        "logistic_regression": getattr(propensity, "LogisticRegression", None),
    }


def estimator_class(family):
    """The estimator class of a model family (ours when available)."""
    cls = _ours()[family]
    if cls is not None:
        return cls
    logger.debug("using the development stand-in for %s", family)
    return {"random_forest": _StandInForest, "gradient_boosting": _StandInBoosting,
            "logistic_regression": _StandInLogReg}[family]


def prefix_params(cls):
    """Parameters the fitted estimator can score as a prefix of a larger fit."""
    return tuple(getattr(cls, "_prefix_params", None) or _PREFIX.get(cls.__name__, ()))


def fit_on_patterns(cls):
    """Whether to train ``cls`` on weighted distinct rows (the pipeline compresses) or on
    the plain rows. Our estimators compress internally and need the per-row counts for
    the random forest's Poisson bootstrap, so they get plain rows."""
    return cls.__name__.startswith("_StandIn")


def class_weight_for(cls, y, w):
    """'balanced' class weights for weighted (compressed) rows. Our estimators compute
    'balanced' from the sample weights; the stand-ins get the explicit weights that
    'balanced' gives on the uncompressed rows."""
    if not cls.__name__.startswith("_StandIn"):
        return "balanced"
    counts = np.array([w[y == 0].sum(), w[y == 1].sum()])
    cw = counts.sum() / (2.0 * counts)
    return {0: float(cw[0]), 1: float(cw[1])}


_PREFIX = {
    "RandomForestClassifier": ("n_estimators", "max_depth", "min_samples_split"),
    "GradientBoostingClassifier": ("n_estimators",),
}


def make_sessions(n_rows, seed=0, testing=False):
    """The embedded stand-in data set (propensity.datasets)."""
    try:
        from .datasets import make_sessions as _make
    except ImportError:
        return _fallback_sessions(n_rows, seed, testing)
    return _make(n_rows=n_rows, seed=seed, testing=testing)


def _fallback_sessions(n_rows, seed=0, testing=False):  # development only
    import pandas as pd
    from .features import SESSION_FEATURES
    rng = np.random.default_rng([seed, int(testing)])
    rates = np.linspace(0.02, 0.6, len(SESSION_FEATURES))
    X = (rng.random((n_rows, len(SESSION_FEATURES))) < rates).astype(np.uint8)
    f = {c: X[:, j].astype(float) for j, c in enumerate(SESSION_FEATURES)}
    eta = (-6 + 3 * f["checked_delivery_detail"] + 2.5 * f["sign_in"] + 1.5 * f["basket_icon_click"]
           + f["basket_add_detail"] + 0.5 * f["returning_user"] + 4 * f["saw_checkout"])
    y = ((rng.random(n_rows) < 1 / (1 + np.exp(-eta))) & (X[:, 13] == 1)).astype(np.uint8)
    df = pd.DataFrame(X, columns=SESSION_FEATURES)
    df.insert(0, "UserID", [f"u{i:07d}" for i in range(n_rows)])
    df["ordered"] = 0 if testing else y
    return df


# --------------------------------------------------------------------------------------
# Development stand-ins (scikit-learn / XGBoost behind our interface)
# --------------------------------------------------------------------------------------
class _PickledStandIn(BaseEstimator):
    def _is_fitted(self):
        return hasattr(self, "_est")

    def _to_document(self):
        return {}, {"pickle": np.frombuffer(pickle.dumps(self._est), np.uint8)}

    @classmethod
    def _from_document(cls, params, meta, arrays):
        self = cls(**params)
        self._est = pickle.loads(arrays["pickle"].tobytes())
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return self._est.predict_proba(X)


@register_estimator
class _StandInForest(_PickledStandIn):
    _prefix_params = ("n_estimators",)

    def __init__(self, *, n_estimators=100, criterion="gini", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, max_features="sqrt",
                 bootstrap=True, class_weight=None, random_state=None, n_jobs=None):
        for k, v in locals().items():
            if k != "self":
                setattr(self, k, v)

    def fit(self, X, y, sample_weight=None):
        from sklearn.ensemble import RandomForestClassifier
        self._est = RandomForestClassifier(**self.get_params()).fit(X, y, sample_weight)
        self.classes_ = self._est.classes_
        self.feature_importances_ = self._est.feature_importances_
        return self

    def predict_proba_prefix(self, X, *, n_estimators=None, max_depth=None,
                             min_samples_split=None):
        if (max_depth not in (None, self.max_depth)
                or min_samples_split not in (None, self.min_samples_split)):
            raise NotImplementedError("the stand-in only scores tree-count prefixes")
        trees = self._est.estimators_[:n_estimators or len(self._est.estimators_)]
        return np.mean([t.predict_proba(X) for t in trees], axis=0)


@register_estimator
class _StandInBoosting(_PickledStandIn):
    _prefix_params = ("n_estimators",)

    def __init__(self, *, n_estimators=100, learning_rate=0.1, max_depth=6,
                 min_child_weight=1.0, reg_lambda=1.0, subsample=1.0, colsample_bytree=1.0,
                 scale_pos_weight=1.0, random_state=None, n_jobs=None):
        for k, v in locals().items():
            if k != "self":
                setattr(self, k, v)

    def fit(self, X, y, sample_weight=None):
        from xgboost import XGBClassifier
        p = self.get_params()
        p["random_state"] = p["random_state"] or 0
        self._est = XGBClassifier(tree_method="hist", **p).fit(X, y, sample_weight=sample_weight)
        self.classes_ = np.array([0, 1])
        self.feature_importances_ = self._est.feature_importances_
        return self

    def predict_proba_prefix(self, X, *, n_estimators=None):
        return self._est.predict_proba(X, iteration_range=(0, n_estimators or self.n_estimators))


@register_estimator
class _StandInLogReg(_PickledStandIn):
    def __init__(self, *, C=1.0, l1_ratio=0.0, class_weight=None, fit_intercept=True,
                 max_iter=100, tol=1e-4, n_jobs=None):
        for k, v in locals().items():
            if k != "self":
                setattr(self, k, v)

    def fit(self, X, y, sample_weight=None):
        from sklearn.linear_model import LogisticRegression
        self._est = LogisticRegression(
            C=self.C, l1_ratio=self.l1_ratio, solver="saga",
            class_weight=self.class_weight, fit_intercept=self.fit_intercept,
            max_iter=self.max_iter, tol=self.tol).fit(X, y, sample_weight)
        self.classes_ = self._est.classes_
        self.coef_ = self._est.coef_
        self.intercept_ = self._est.intercept_
        return self
