"""``PropensityModel``: the whole fitted pipeline in one estimator.

raw input columns -> input encoding (generic CSVs) -> InteractionFeatureTransformer ->
estimator (random forest / gradient boosting / logistic regression) -> probability
calibration, plus the tuned decision threshold and the training profile used for drift
reports. It pickles and saves through the model document, so
``pickle.load(f).predict_proba(raw_23_columns)[:, 1]`` works and the safe ``.propmodel``
file loads without executing code.
"""
from __future__ import annotations

import logging

import numpy as np

from .._typing import ArrayLike, DataFrame, FloatArray

from ..learn.base import BaseEstimator, NotFittedError, register_estimator
from ..learn.calibration import calibrator_from_state
from ..learn.features import InteractionFeatureTransformer
from ..schema import Schema

logger = logging.getLogger(__name__)

MODEL_NAMES = {"RandomForestClassifier": "random_forest",
               "GradientBoostingClassifier": "gradient_boosting",
               "LogisticRegression": "logistic_regression",
               "_StandInForest": "random_forest", "_StandInBoosting": "gradient_boosting",
               "_StandInLogReg": "logistic_regression"}


def distinct_of(Z):
    """``(rows, inverse)``: the distinct rows of a uint8 ``Z`` and the distinct row of each
    row (the C core's distinct rows, :func:`propensity.learn.compress.distinct_rows`), when
    the rows repeat enough for it to pay; else ``(Z, None)`` (rows with numeric columns
    rarely repeat)."""
    from ..learn.compress import distinct_rows
    found = distinct_rows(Z) if np.asarray(Z).dtype == np.uint8 else None
    return (Z, None) if found is None else found


def top_reasons(contrib, k):
    """``(index, value)`` of the k largest contributions of each row of ``contrib``
    (n, m): the columns pushing the score up most, ties in column order; int32 (n, k)
    and float64 (n, k)."""
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    return order.astype(np.int32), np.take_along_axis(contrib, order, axis=1)


def _weighted_quantiles(v, w, q):
    order = np.argsort(v, kind="mergesort")
    v, cw = v[order], np.cumsum(w[order])
    at = np.searchsorted(cw, np.asarray(q) * cw[-1], side="left")
    return v[np.minimum(at, v.size - 1)]


def build_profile(schema, E, scores, n_score_bins=10, weights=None):
    """Training distribution for drift reports: per binary or numeric input column its
    bins and fractions (from the encoded inputs E), per native category column the
    fractions of its codes, of "other" and of missing values (:func:`category_bins`),
    and the distribution of the calibrated score over ``n_score_bins`` equal-width bins.
    ``weights``: how many rows each row of E stands for (distinct rows of a training
    table)."""
    from ..schema import BINARY, NUMERIC
    E = np.asarray(E)
    w = np.ones(E.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    total = max(float(w.sum()), 1e-300)
    feats = {}
    for j, c in enumerate(schema.columns):
        if c.native:
            k = len(c.categories)
            counts = np.bincount(category_bins(E[:, j], k), weights=w, minlength=k + 2)
            feats[c.name] = {"kind": "category", "fractions": (counts / total).tolist()}
            continue
        if c.kind not in (BINARY, NUMERIC):
            continue
        col = c.name
        v = np.asarray(E[:, j])
        if c.kind == BINARY:
            ones = float(w[v == 1].sum() / total)
            feats[col] = {"edges": [-0.5, 0.5, 1.5], "fractions": [1.0 - ones, ones]}
        else:
            v = v.astype(np.float64)
            edges = np.unique(_weighted_quantiles(v, w, np.linspace(0, 1, 11)))
            if edges.size < 2:
                edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
            counts, _ = np.histogram(v, bins=edges, weights=w)
            feats[col] = {"edges": edges.tolist(), "fractions": (counts / total).tolist()}
    edges = np.linspace(0.0, 1.0, n_score_bins + 1)
    counts, _ = np.histogram(np.clip(scores, 0, 1), bins=edges, weights=w)
    return {"features": feats,
            "score": {"edges": edges.tolist(), "fractions": (counts / total).tolist()}}


def category_bins(codes, k):
    """The drift bins of a native category column of k categories: its codes 0 .. k-1,
    then k for "other" (values without a category of their own: unseen at training, or
    beyond its cap) and k + 1 for a missing value."""
    v = np.asarray(codes, dtype=np.float64)
    out = np.where(np.isnan(v), k + 1, np.where((v >= 0) & (v < k), v, k))
    return out.astype(np.int64)


def _as_frame(X: ArrayLike, names: list[str] | None = None) -> DataFrame:
    """A DataFrame of raw input: the DataFrame itself, or an array with ``names`` (by
    default the 23 session features when it has 23 columns, else x0, x1, ...)."""
    import pandas as pd

    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
    if names is None:
        from ..learn.features import SESSION_FEATURES
        names = SESSION_FEATURES if arr.shape[1] == len(SESSION_FEATURES) \
            else [f"x{j}" for j in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=list(names), copy=False)


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
    categorical : {'auto', 'onehot'}, default 'auto'
        Text columns: 'auto' makes each one native categorical feature (its 254 most
        frequent values, the rest and unseen values "other"), 'onehot' one 0/1 column per
        value (at most 1,000 values), as the training run's ``--categorical``.
    """

    def __init__(self, *, estimator=None, calibration="isotonic", interactions=True, cv=3,
                 random_state=42, categorical="auto"):
        self.estimator = estimator
        self.calibration = calibration
        self.interactions = interactions
        self.cv = cv
        self.random_state = random_state
        self.categorical = categorical

    def _is_fitted(self):
        return hasattr(self, "estimator_")

    # ---- fitting ------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike) -> PropensityModel:
        """Fit everything on raw data (a DataFrame, or an array of the 23 session
        features): the folds give out-of-fold scores for calibration and threshold."""
        from ..io.table import table_from_encoded
        from ..learn.estimators import estimator_class
        from ..learn.validation import check_y
        from ..training.tuning import fit_with_oof

        frame = _as_frame(X)
        y01, classes = check_y(y, frame.shape[0])
        from ..learn.features import SESSION_FEATURES
        schema, E, _ = Schema.infer(frame, "X", known_binary=SESSION_FEATURES,
                                    categorical=self.categorical)
        est = self.estimator if self.estimator is not None \
            else estimator_class("random_forest")()
        from ..learn.trees import resolve_seed
        table = table_from_encoded(schema, E, y01, list(classes), source="X", target="y",
                                   n_folds=self.cv, seed=resolve_seed(self.random_state),
                                   validation=False)
        final, calibrator, threshold, features = fit_with_oof(
            est, table, self.interactions, self.calibration)
        self._set_parts(schema, features.transformer, final, calibrator, threshold, classes)
        self.training_profile_ = build_profile(schema, E, self.proba_encoded(E))
        return self

    def _set_parts(self, schema, transformer, estimator, calibrator, threshold,
                   classes=(0, 1), training_profile=None, policy=None):
        self._feature_plan = None
        self._code_quantiser = None
        self.schema_ = schema
        self.transformer_ = transformer
        self.estimator_ = estimator
        self.calibrator_ = calibrator
        self.threshold_ = float(threshold)
        self.model_name_ = MODEL_NAMES.get(type(estimator).__name__, type(estimator).__name__)
        self.classes_ = np.asarray(list(classes))
        self.feature_names_out_ = [str(c) for c in transformer.get_feature_names_out()]
        self.n_features_in_ = len(schema.names)
        self.feature_names_in_ = np.asarray(schema.names, dtype=object)
        if training_profile is not None:
            self.training_profile_ = training_profile
        # the targeting policy that chose the threshold (propensity.training.campaign);
        # models without one (older documents, fit) used the F1 policy
        self.policy_ = dict(policy) if policy else {"kind": "f1", "threshold": self.threshold_}
        if self.estimator is None:
            self.estimator = type(estimator)(**estimator.get_params(deep=False))
        return self

    @property
    def input_columns_(self) -> list[str]:
        """The raw input columns the model reads, in order (the schema's)."""
        return self.schema_.names

    @property
    def binary_columns_(self):
        return self.schema_.binary_names

    @classmethod
    def from_parts(cls, *, schema, transformer, estimator, calibrator, threshold,
                   training_profile, calibration="isotonic", interactions=True, cv=3,
                   random_state=42, classes=(0, 1)):
        """Assemble a fitted model from parts fitted elsewhere (the training pipeline)."""
        self = cls(estimator=type(estimator)(**estimator.get_params(deep=False)),
                   calibration=calibration, interactions=interactions, cv=cv,
                   random_state=random_state)
        return self._set_parts(schema, transformer, estimator, calibrator, threshold, classes,
                               training_profile)

    def set_policy(self, policy: dict) -> PropensityModel:
        """Store a targeting policy (:func:`propensity.training.campaign.choose`): its
        threshold becomes the model's decision threshold."""
        threshold = float(policy["threshold"])
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"policy threshold {threshold} is not in [0, 1]")
        self.threshold_ = threshold
        self.policy_ = dict(policy)
        return self

    def threshold_for_share(self, share: float) -> float:
        """The threshold that flags ``share`` (0-1] of the training score distribution
        (the calibrated out-of-fold scores stored with the policy); ValueError for a
        model saved without that distribution."""
        from ..training.campaign import threshold_for_share
        dist = getattr(self, "policy_", {}).get("score_distribution")
        if not dist or not dist.get("scores"):
            raise ValueError("the model stores no training score distribution (it was saved "
                             "by an older version or fitted with fit()): retrain it to use "
                             "--top-percent or --budget")
        return threshold_for_share(dist, share)

    @classmethod
    def from_estimator(cls, estimator: BaseEstimator, threshold: float = 0.5) -> PropensityModel:
        """A fitted estimator (e.g. what ``propensity.dask.fit_dask`` returns) as a model
        the predictor scores: its input columns read as numbers (an empty cell is an
        error), no interaction features, no calibration, the given threshold."""
        from ..schema import NUMERIC, Column

        names = getattr(estimator, "feature_names_in_", None)
        if names is None:
            raise TypeError(f"{type(estimator).__name__} is not fitted on named columns "
                            f"(no feature_names_in_)")
        import pandas as pd
        names = [str(c) for c in names]
        schema = Schema([Column(c, NUMERIC) for c in names])
        transformer = InteractionFeatureTransformer(interactions=False).fit(
            pd.DataFrame(np.zeros((1, len(names))), columns=names))
        self = cls(estimator=type(estimator)(**estimator.get_params(deep=False)),
                   calibration=None, interactions=False)
        return self._set_parts(schema, transformer, estimator, None, threshold,
                               getattr(estimator, "classes_", (0, 1)))

    # ---- prediction ---------------------------------------------------------------
    def _require_fitted(self):
        if not self._is_fitted():
            raise NotFittedError("this PropensityModel is not fitted yet; call fit first")

    def encode(self, X, **kwargs):
        """Raw input (DataFrame, or array in ``input_columns_`` order) -> encoded inputs
        ``(E, stats)`` through the schema's value rules (:meth:`Schema.encode`)."""
        self._require_fitted()
        if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
            if arr.shape[1] != len(self.input_columns_):
                raise ValueError(f"X has {arr.shape[1]} columns; the model expects "
                                 f"{len(self.input_columns_)}: {self.input_columns_}")
            X = _as_frame(arr, self.input_columns_)
        kwargs.setdefault("where", "X")
        return self.schema_.encode(X, **kwargs)

    @property
    def feature_plan_(self):
        """The model's feature plan (:mod:`propensity.learn.plan`): encoded inputs ->
        the estimator's features, the schema's one-hot columns then the interaction
        features."""
        plan = self.__dict__.get("_feature_plan")
        if plan is None:
            plan = self.schema_.plan.then(self.transformer_.feature_plan())
            self._feature_plan = plan
        return plan

    def _raw_rows(self, E):
        E = np.asarray(E)
        from_inputs = getattr(self.estimator_, "proba_from_inputs", None)
        if any(c.native for c in self.schema_.columns):
            from_inputs = None   # category splits: the trees bin the features themselves
        if from_inputs is not None and E.ndim == 2 and E.shape[0] > 0 and \
                E.dtype in (np.float64, np.float32, np.uint8):
            # tree models: from E to bin codes to trees in C, no feature matrix
            return from_inputs(np.ascontiguousarray(E), self.feature_plan_)
        Z = self.transformer_.transform_array(self.schema_.expand(E))
        return np.asarray(self.estimator_.predict_proba(Z), dtype=np.float64)[:, 1]

    def distinct_encoded(self, E):
        """``(rows, inverse)`` of encoded inputs E as :func:`distinct_of` gives them. When
        every column holds codes (binary and category columns, the rows float64 for a
        category column's codes), the rows are compared by their uint8 codes (the
        training table's, :class:`propensity.io.table.Quantiser`), so they repeat as
        session rows do."""
        E = np.asarray(E)
        if E.dtype != np.uint8 and E.ndim == 2 and E.shape[0] > 1 and \
                all(c.kind != "numeric" for c in self.schema_.columns):
            from ..io.table import Quantiser
            q = self.__dict__.get("_code_quantiser")
            if q is None:
                q = self._code_quantiser = Quantiser(self.schema_, E[:0])
            rows, inverse = distinct_of(q.encode(E, accumulate=False))
            return (E, None) if inverse is None else (q.decode(rows), inverse)
        return distinct_of(E)

    def _score_distinct(self, fn, E):
        """``fn`` (a score or a row of values per row) once per distinct row of E."""
        rows, inverse = self.distinct_encoded(E)
        out = np.asarray(fn(rows), dtype=np.float64)
        return out if inverse is None else out[inverse]

    def _proba_rows(self, E):
        return self.calibrate(self._raw_rows(E))

    def raw_encoded(self, E: np.ndarray) -> FloatArray:
        """Uncalibrated positive-class score of the inner estimator on encoded inputs;
        each distinct row is featurised and scored once."""
        return self._score_distinct(self._raw_rows, E)

    def proba_encoded(self, E: np.ndarray) -> FloatArray:
        """Calibrated probability of the positive class on encoded inputs (each distinct
        row featurised, scored and calibrated once): the one scoring path of the model,
        the predictor and Dask."""
        return self._score_distinct(self._proba_rows, E)

    # ---- explanations ---------------------------------------------------------------
    def _input_shares(self):
        """For each feature of the estimator, the (input column, share) pairs its SHAP value
        is given back to: a copy or a one-hot column to its input column (one-hot columns
        of a text column add up), a derived product or sum equally to its sources (and
        theirs, for a feature derived from derived ones)."""
        from ..learn.plan import PROD, SUM
        shares = []
        for op, col, _, sources in self.feature_plan_.steps:
            if op in (PROD, SUM):
                split = {}
                for src in sources:
                    for c, w in shares[src]:
                        split[c] = split.get(c, 0.0) + w / len(sources)
                shares.append(sorted(split.items()))
            else:
                shares.append([(col, 1.0)])
        return shares

    def _explain_rows(self, E):
        E = np.asarray(E)
        explain = getattr(self.estimator_, "shap_values", None)
        if explain is None:
            raise TypeError(f"{type(self.estimator_).__name__} cannot explain its scores "
                            f"(no shap_values)")
        phi = explain(self.transformer_.transform(self.schema_.expand(E)))
        n_in = len(self.schema_.names)
        out = np.zeros((E.shape[0], n_in + 1))
        for f, pairs in enumerate(self._input_shares()):  # fixed order: same bits always
            for c, w in pairs:
                out[:, c] += phi[:, f] if w == 1.0 else phi[:, f] * w
        out[:, n_in] = phi[:, -1]
        return out

    def explain_encoded(self, E):
        """Contributions of each input column to the estimator's raw score (see
        :meth:`explain`) of encoded inputs, float64 (n, n_inputs + 1), the base value last;
        each distinct row is explained once."""
        return self._score_distinct(self._explain_rows, E)

    def reasons_encoded(self, E, k):
        """``(index, value)`` (n, k) of the k input columns pushing each row's raw score up
        most (:func:`top_reasons`), from its contributions; each distinct row once."""
        rows, inverse = self.distinct_encoded(E)
        idx, val = top_reasons(self._explain_rows(rows)[:, :-1], k)
        return (idx, val) if inverse is None else (idx[inverse], val[inverse])

    def explain(self, X):
        """Exact SHAP contributions of each input column to the inner estimator's raw
        score (log-odds for gradient boosting and logistic regression, the forest's
        averaged class-1 probability; before calibration), as a DataFrame with one column
        per input column and ``base_value``: each row sums to that raw score (``predict_raw``
        for the forest, its log-odds for boosting and logistic regression). A
        derived interaction feature's contribution is split equally between its source
        columns, and the one-hot columns of a text column are summed back into it."""
        import pandas as pd

        self._require_fitted()
        E = self.encode(X)[0]
        contrib = self.explain_encoded(E) if E.shape[0] else \
            np.zeros((0, len(self.input_columns_) + 1))
        index = X.index if hasattr(X, "index") and hasattr(X, "columns") else None
        return pd.DataFrame(contrib, columns=list(self.input_columns_) + ["base_value"],
                            index=index)

    def predict_raw(self, X: ArrayLike) -> FloatArray:
        """Uncalibrated positive-class score of the inner estimator."""
        return self.raw_encoded(self.encode(X)[0])

    def calibrate(self, raw: ArrayLike) -> FloatArray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.calibrator_ is None:
            return raw
        return np.clip(self.calibrator_.transform(raw), 0.0, 1.0)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Calibrated probabilities, shape (n, 2); X holds ``input_columns_``."""
        p = self.proba_encoded(self.encode(X)[0])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: ArrayLike, threshold: float | None = None) -> np.ndarray:
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

    def _policy_document(self):
        """The policy as saved: a threshold set by hand after the policy chose one is
        saved as the policy ``threshold`` (the score distribution kept)."""
        policy = dict(getattr(self, "policy_", None) or {"kind": "f1"})
        if policy.get("threshold") != self.threshold_:
            policy = {"kind": "threshold", "threshold": self.threshold_,
                      **({"score_distribution": policy["score_distribution"]}
                         if "score_distribution" in policy else {})}
        return policy

    def _to_document(self):
        cal_meta, cal_arrays = ({"kind": None}, {}) if self.calibrator_ is None \
            else self.calibrator_.state()
        meta = {
            "schema": self.schema_.to_dict(), "model_name": self.model_name_,
            "threshold": self.threshold_, "training_profile": getattr(self, "training_profile_", {}),
            "policy": self._policy_document(),
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
        if "schema" in meta:
            schema = Schema.from_dict(meta["schema"])
        else:  # documents written before the schema was stored
            inputs = [str(c) for c in meta["input_columns"]]
            binary = [str(c) for c in meta["binary_columns"]]
            if not set(binary) <= set(inputs) or len(set(inputs)) != len(inputs):
                raise ValueError("PropensityModel document has inconsistent column lists")
            schema = Schema.from_legacy(inputs, binary, meta.get("encoding") or {})
        if schema.feature_names != [str(c) for c in transformer.feature_names_in_]:
            raise ValueError("PropensityModel document: the schema's features differ from "
                             "the transformer's inputs")
        self = cls(estimator=type(estimator)(**estimator.get_params(deep=False)),
                   **{k: v for k, v in params.items() if k in ("calibration", "interactions",
                                                                 "cv", "random_state")})
        policy = meta.get("policy") or None   # documents before policies: none (F1)
        if policy is not None and (not isinstance(policy, dict) or
                                   not isinstance(policy.get("kind"), str)):
            raise ValueError("PropensityModel document has an invalid policy")
        if policy is not None:
            policy = {**policy, "threshold": threshold}
        return self._set_parts(schema, transformer, estimator, calibrator, threshold,
                               meta.get("classes", [0, 1]), meta.get("training_profile") or {},
                               policy)
