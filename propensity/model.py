"""``PropensityModel``: the whole fitted pipeline in one estimator.

raw input columns -> input encoding (generic CSVs) -> InteractionFeatureTransformer ->
estimator (random forest / gradient boosting / logistic regression) -> probability
calibration, plus the tuned decision threshold and the training profile used for drift
reports. It pickles and saves through the model document, so
``pickle.load(f).predict_proba(raw_23_columns)[:, 1]`` works and the safe ``.propmodel``
file loads without executing code.
"""
import logging

import numpy as np

from ._base import BaseEstimator, NotFittedError, register_estimator
from .calibration import calibrator_from_state, make_calibrator
from .features import InteractionFeatureTransformer

logger = logging.getLogger(__name__)

MODEL_NAMES = {"RandomForestClassifier": "random_forest",
               "GradientBoostingClassifier": "gradient_boosting",
               "LogisticRegression": "logistic_regression",
               "_StandInForest": "random_forest", "_StandInBoosting": "gradient_boosting",
               "_StandInLogReg": "logistic_regression"}


# ---------------------------------------------------------------------------------------
# row compression: binary rows -> distinct patterns
# ---------------------------------------------------------------------------------------
def compress_rows(arr, max_fraction=0.5):
    """Distinct rows of a binary uint8 matrix: ``(unique_rows, inverse)``, or None when
    the matrix is not binary / has more than 64 columns / is mostly unique rows."""
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] > 64 or arr.shape[0] < 64:
        return None
    if arr.max(initial=0) > 1:
        return None
    weights = np.left_shift(np.uint64(1), np.arange(arr.shape[1], dtype=np.uint64))
    codes = np.zeros(arr.shape[0], dtype=np.uint64)
    for j in range(arr.shape[1]):
        codes |= arr[:, j].astype(np.uint64) * weights[j]
    uniq, first, inv = np.unique(codes, return_index=True, return_inverse=True)
    if uniq.size > max_fraction * arr.shape[0]:
        return None
    return np.ascontiguousarray(arr[first]), inv.astype(np.int64)


def predict_compressed(fn, Z, compressed=None):
    """``fn(Z)[:, 1]`` evaluated once per distinct row of ``Z``."""
    if compressed is None:
        compressed = compress_rows(Z)
    if compressed is None:
        return np.asarray(fn(Z))[:, 1]
    uniq, inv = compressed
    return np.asarray(fn(uniq))[:, 1][inv]


def build_profile(X_enc, binary_columns, columns, scores, n_score_bins=10):
    """Training distribution for drift reports: per column bins and fractions, and the
    distribution of the calibrated score over ``n_score_bins`` equal-width bins."""
    feats = {}
    binary = set(binary_columns)
    for col in columns:
        if col not in X_enc.columns:
            continue
        v = X_enc[col].to_numpy()
        if col in binary:
            ones = float(np.mean(v == 1))
            feats[col] = {"edges": [-0.5, 0.5, 1.5], "fractions": [1.0 - ones, ones]}
        else:
            v = v.astype(np.float64)
            edges = np.unique(np.quantile(v, np.linspace(0, 1, 11)))
            if edges.size < 2:
                edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
            counts, _ = np.histogram(v, bins=edges)
            feats[col] = {"edges": edges.tolist(), "fractions": (counts / v.size).tolist()}
    edges = np.linspace(0.0, 1.0, n_score_bins + 1)
    counts, _ = np.histogram(np.clip(scores, 0, 1), bins=edges)
    return {"features": feats,
            "score": {"edges": edges.tolist(), "fractions": (counts / max(1, len(scores))).tolist()}}


def _bytes_without_n_jobs(est):
    """The estimator's document with n_jobs=None: the training run's thread count is not
    part of the model, and it would make documents differ across n_jobs (scores do not)."""
    if getattr(est, "n_jobs", None) is None:
        return est.to_bytes()
    saved = est.n_jobs
    try:
        est.n_jobs = None
        return est.to_bytes()
    finally:
        est.n_jobs = saved


@register_estimator
class PropensityModel(BaseEstimator):
    """Input encoding -> interaction features -> estimator -> calibration + threshold.

    Parameters
    ----------
    estimator : estimator instance, default None
        Unfitted classifier (RandomForestClassifier, GradientBoostingClassifier or
        LogisticRegression); None means ``propensity.RandomForestClassifier()``.
    calibration : {'isotonic', 'platt', None}, default 'isotonic'
        Calibration fitted on out-of-fold predictions.
    interactions : bool, default True
        Add SPEC.md's interaction features (when their source columns exist).
    cv : int, default 3
        Folds for the out-of-fold predictions that fit the calibration and threshold.
    random_state : int, default 42
        Seed of the folds.
    """

    def __init__(self, *, estimator=None, calibration="isotonic", interactions=True, cv=3,
                 random_state=42):
        self.estimator = estimator
        self.calibration = calibration
        self.interactions = interactions
        self.cv = cv
        self.random_state = random_state

    def _is_fitted(self):
        return hasattr(self, "estimator_")

    # ---- fitting ------------------------------------------------------------------
    def fit(self, X, y):
        """Fit everything on raw data (a DataFrame, or an array of the 23 session
        features): the folds give out-of-fold scores for calibration and threshold."""
        import pandas as pd

        from . import data as _data
        from ._estimators import estimator_class
        from .metrics import best_f1_threshold
        from .model_selection import stratified_kfold
        from ._validation import check_y

        if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
            from .features import SESSION_FEATURES
            arr = np.asarray(X)
            names = SESSION_FEATURES if arr.ndim == 2 and arr.shape[1] == len(SESSION_FEATURES) \
                else [f"x{j}" for j in range(arr.shape[1] if arr.ndim == 2 else 0)]
            X = pd.DataFrame(arr, columns=names)
        y01, classes = check_y(y, X.shape[0])
        X_enc, binary, encoding = _data.build_encoding(X, "X")
        est = self.estimator if self.estimator is not None \
            else estimator_class("random_forest")()
        transformer = InteractionFeatureTransformer(interactions=self.interactions).fit(X_enc)
        Z = transformer.transform(X_enc)
        oof = np.zeros(len(y01))
        for tr, va in stratified_kfold(y01, self.cv, self.random_state):
            e = type(est)(**est.get_params(deep=False)).fit(Z[tr], y01[tr])
            oof[va] = predict_compressed(e.predict_proba, Z[va])
        final = type(est)(**est.get_params(deep=False)).fit(Z, y01)
        calibrator = None
        if self.calibration is not None:
            calibrator = make_calibrator(self.calibration).fit(oof, y01)
            oof = calibrator.transform(oof)
        threshold, _ = best_f1_threshold(y01, oof)
        self._set_parts(list(X.columns), binary, encoding, transformer, final, calibrator,
                        threshold, classes)
        scores = self.predict_proba(X)[:, 1]
        self.training_profile_ = build_profile(X_enc, binary, list(X.columns), scores)
        return self

    def _set_parts(self, input_columns, binary_columns, encoding, transformer, estimator,
                   calibrator, threshold, classes=(0, 1), training_profile=None):
        self.input_columns_ = [str(c) for c in input_columns]
        self.binary_columns_ = [str(c) for c in binary_columns]
        self.encoding_ = dict(encoding or {})
        self.transformer_ = transformer
        self.estimator_ = estimator
        self.calibrator_ = calibrator
        self.threshold_ = float(threshold)
        self.model_name_ = MODEL_NAMES.get(type(estimator).__name__, type(estimator).__name__)
        self.classes_ = np.asarray(list(classes))
        self.feature_names_out_ = [str(c) for c in transformer.get_feature_names_out()]
        self.n_features_in_ = len(self.input_columns_)
        self.feature_names_in_ = np.asarray(self.input_columns_, dtype=object)
        if training_profile is not None:
            self.training_profile_ = training_profile
        if self.estimator is None:
            self.estimator = type(estimator)(**estimator.get_params(deep=False))
        return self

    @classmethod
    def from_parts(cls, *, input_columns, binary_columns, encoding, transformer, estimator,
                   calibrator, threshold, training_profile, calibration="isotonic",
                   interactions=True, cv=3, random_state=42, classes=(0, 1)):
        """Assemble a fitted model from parts fitted elsewhere (the training pipeline)."""
        self = cls(estimator=type(estimator)(**estimator.get_params(deep=False)),
                   calibration=calibration, interactions=interactions, cv=cv,
                   random_state=random_state)
        return self._set_parts(input_columns, binary_columns, encoding, transformer,
                               estimator, calibrator, threshold, classes, training_profile)

    # ---- prediction ---------------------------------------------------------------
    def _input_frame(self, X):
        import pandas as pd

        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            cols = set(map(str, X.columns))
            missing = [c for c in self.input_columns_ if c not in cols]
            if missing:
                raise ValueError(f"X lacks the input column(s) {missing} the model was "
                                 f"trained on")
            if list(map(str, X.columns)) != self.input_columns_:
                X = X[self.input_columns_]
            return X
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
        if arr.shape[1] != len(self.input_columns_):
            raise ValueError(f"X has {arr.shape[1]} columns; the model expects "
                             f"{len(self.input_columns_)}: {self.input_columns_}")
        return pd.DataFrame(arr, columns=self.input_columns_, copy=False)

    def _check_binary(self, X):
        import pandas as pd

        for col in self.binary_columns_:
            if col in self.encoding_.get("boolean", ()):
                continue
            s = X[col]
            v = s.to_numpy()
            if v.dtype == np.uint8 or v.dtype == np.bool_:
                if v.dtype == np.bool_ or v.max(initial=0) <= 1:
                    continue
                bad = v > 1
            else:
                num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                bad = ~((num == 0) | (num == 1))
                if not bad.any():
                    continue
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"binary column {col!r} has the value {s.iloc[i]!r} at row {i}; "
                             f"only 0 and 1 are allowed")

    def _features(self, X):
        from .data import apply_encoding

        X = self._input_frame(X)
        self._check_binary(X)
        X = apply_encoding(X, self.input_columns_, self.encoding_)
        return self.transformer_.transform(X)

    def predict_raw(self, X):
        """Uncalibrated positive-class score of the inner estimator."""
        if not self._is_fitted():
            raise NotFittedError("this PropensityModel is not fitted yet; call fit first")
        return predict_compressed(self.estimator_.predict_proba, self._features(X))

    def calibrate(self, raw):
        raw = np.asarray(raw, dtype=np.float64)
        if self.calibrator_ is None:
            return raw
        return np.clip(self.calibrator_.transform(raw), 0.0, 1.0)

    def predict_proba(self, X):
        """Calibrated probabilities, shape (n, 2); X holds ``input_columns_``."""
        p = self.calibrate(self.predict_raw(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X, threshold=None):
        """0/1 predictions: 1 when the calibrated probability >= ``threshold_`` (or the
        given threshold)."""
        t = self.threshold_ if threshold is None else float(threshold)
        pred = (self.predict_proba(X)[:, 1] >= t).astype(np.int64)
        if list(self.classes_) in ([0, 1], [False, True]):
            return pred
        return self.classes_[pred]

    # ---- persistence -------------------------------------------------------------
    def _json_params(self):
        return {"calibration": self.calibration, "interactions": bool(self.interactions),
                "cv": int(self.cv), "random_state": self.random_state}

    def _to_document(self):
        cal_meta, cal_arrays = ({"kind": None}, {}) if self.calibrator_ is None \
            else self.calibrator_.state()
        meta = {
            "input_columns": self.input_columns_, "binary_columns": self.binary_columns_,
            "encoding": self.encoding_, "model_name": self.model_name_,
            "threshold": self.threshold_, "training_profile": getattr(self, "training_profile_", {}),
            "calibration": cal_meta, "classes": [c.item() if isinstance(c, np.generic) else c
                                                 for c in self.classes_],
        }
        arrays = {
            "estimator": np.frombuffer(_bytes_without_n_jobs(self.estimator_), np.uint8),
            "transformer": np.frombuffer(self.transformer_.to_bytes(), np.uint8),
        }
        for k, v in cal_arrays.items():
            arrays[f"cal_{k}"] = np.asarray(v, dtype=np.float64)
        return meta, arrays

    @classmethod
    def _from_document(cls, params, meta, arrays):
        for key in ("estimator", "transformer"):
            if key not in arrays or arrays[key].dtype != np.uint8 or arrays[key].ndim != 1:
                raise ValueError(f"PropensityModel document lacks a valid {key!r} array")
        estimator = BaseEstimator.from_bytes(arrays["estimator"].tobytes())
        transformer = InteractionFeatureTransformer.from_bytes(arrays["transformer"].tobytes())
        cal_meta = meta.get("calibration") or {}
        calibrator = None if cal_meta.get("kind") is None else calibrator_from_state(cal_meta, arrays)
        threshold = float(meta["threshold"])
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"PropensityModel document has an invalid threshold {threshold}")
        inputs = [str(c) for c in meta["input_columns"]]
        binary = [str(c) for c in meta["binary_columns"]]
        if not set(binary) <= set(inputs) or len(set(inputs)) != len(inputs):
            raise ValueError("PropensityModel document has inconsistent column lists")
        self = cls(estimator=type(estimator)(**estimator.get_params(deep=False)),
                   **{k: v for k, v in params.items() if k in ("calibration", "interactions",
                                                                 "cv", "random_state")})
        return self._set_parts(inputs, binary, meta.get("encoding") or {}, transformer,
                               estimator, calibrator, threshold, meta.get("classes", [0, 1]),
                               meta.get("training_profile") or {})
