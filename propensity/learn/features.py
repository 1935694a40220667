"""The interaction features of SPEC.md: ``InteractionFeatureTransformer``.

Output = the input columns, then (when their source columns are present) the products
``<a>_x_<b>``, ``engagement_score``, ``intent_score`` and ``<device>_returning``. A
derived feature whose source column is missing is skipped with a warning at fit.
Binary input (uint8/bool, or values that are all 0/1) gives uint8 output, so the tree
learners keep working on compact binary data.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable

import numpy as np

from .base import BaseEstimator, NotFittedError, TransformerMixin, register_estimator
from .validation import check_fitted_X, check_X
from .._typing import ArrayLike
from .._layout import FEATURES

logger = logging.getLogger(__name__)

SESSION_FEATURES = FEATURES  # the 23 session columns, in the real files' order

PRODUCTS = [
    ("sign_in", "saw_checkout"),
    ("basket_icon_click", "basket_add_detail"),
    ("basket_add_list", "basket_add_detail"),
    ("checked_delivery_detail", "sign_in"),
    ("account_page_click", "sign_in"),
]
ENGAGEMENT = ["basket_icon_click", "basket_add_list", "basket_add_detail",
              "account_page_click", "detail_wishlist_add", "sort_by"]
INTENT = ["saw_checkout", "checked_delivery_detail", "checked_returns_detail", "sign_in",
          "saw_delivery"]
DEVICES = ["device_mobile", "device_computer", "device_tablet"]


def _spec():
    """All derived features as (name, op, sources), in output order."""
    out = [(f"{a}_x_{b}", "prod", [a, b]) for a, b in PRODUCTS]
    out.append(("engagement_score", "sum", list(ENGAGEMENT)))
    out.append(("intent_score", "sum", list(INTENT)))
    out += [(f"{d}_returning", "prod", [d, "returning_user"]) for d in DEVICES]
    return out


def _is_binary(arr):
    if arr.dtype == np.uint8:
        return bool(arr.max(initial=0) <= 1)
    if arr.dtype.kind == "f":
        head = arr[:1024]  # numeric data shows itself in the first rows: no full pass then
        if not ((head == 0) | (head == 1)).all():
            return False
        return bool(((arr == 0) | (arr == 1)).all())
    return False


@register_estimator
class InteractionFeatureTransformer(TransformerMixin, BaseEstimator):
    """Add SPEC.md's interaction features to the input columns.

    Parameters
    ----------
    interactions : bool, default True
        False passes the input through unchanged (kept for generic data sets).
    """

    def __init__(self, *, interactions=True):
        self.interactions = interactions

    def _is_fitted(self):
        return hasattr(self, "derived_")

    def fit(self, X: ArrayLike, y: object = None) -> InteractionFeatureTransformer:
        arr, names = check_X(X)
        n = arr.shape[1]
        anonymous = names is None and n != len(SESSION_FEATURES)
        if names is None:
            if n == len(SESSION_FEATURES):
                names = list(SESSION_FEATURES)
            else:
                names = [f"x{j}" for j in range(n)]
                if self.interactions:
                    warnings.warn(
                        f"InteractionFeatureTransformer got an array with {n} columns and no "
                        f"column names; only the {len(SESSION_FEATURES)} session features "
                        f"can be recognised, so no interaction feature is added",
                        UserWarning, stacklevel=2)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = n
        index = {c: j for j, c in enumerate(names)}
        derived, skipped = [], []
        if self.interactions:
            for name, op, sources in _spec():
                missing = [s for s in sources if s not in index]
                if missing:
                    skipped.append((name, missing))
                    continue
                if name in index:
                    continue  # already an input column; keep the user's
                derived.append((name, op, sources))
        for name, missing in skipped:
            msg = (f"interaction feature {name!r} skipped: source column(s) "
                   f"{', '.join(map(repr, missing))} not in the data")
            if not anonymous:
                warnings.warn(msg, UserWarning, stacklevel=2)
            logger.warning(msg)
        self.derived_ = derived
        self._index = [[index[s] for s in sources] for _, _, sources in derived]
        self._plan = self._make_plan()
        return self

    def get_feature_names_out(self, input_features: Iterable[Any] | None = None) -> np.ndarray:
        """The output column names; ``input_features``, when given, must be the input
        names seen at fit."""
        if not self._is_fitted():
            raise NotFittedError("InteractionFeatureTransformer is not fitted yet; call fit first")
        if input_features is not None:
            given = [str(c) for c in input_features]
            if given != [str(c) for c in self.feature_names_in_]:
                raise ValueError(f"input_features {given[:5]}... are not the feature names "
                                 f"seen at fit ({[str(c) for c in self.feature_names_in_[:5]]}...)")
        return np.asarray(list(self.feature_names_in_) + [d[0] for d in self.derived_],
                          dtype=object)

    def _columns(self, X):
        """The input as an array with the fitted column order."""
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            fitted = [str(c) for c in self.feature_names_in_]
            missing = [c for c in fitted if c not in set(map(str, X.columns))]
            if missing:
                raise ValueError(f"X is missing column(s) {missing} seen at fit")
            if list(map(str, X.columns)) != fitted:
                X = X[fitted]
        return check_fitted_X(self, X)[0]

    def feature_plan(self):
        """The transformer as a feature plan (:class:`propensity.learn.plan.FeaturePlan`)
        over its input columns: a copy of each, then the derived features (products and
        sums of input columns)."""
        if not self._is_fitted():
            raise NotFittedError("InteractionFeatureTransformer is not fitted yet; call fit first")
        return self._plan

    def _make_plan(self):
        from .plan import PROD, SUM, FeaturePlan
        ops = {"prod": PROD, "sum": SUM}
        p = int(self.n_features_in_)
        steps = FeaturePlan.copies(p).steps
        steps += [(ops[op], 0, 0.0, tuple(cols))
                  for (_, op, _), cols in zip(self.derived_, self._index)]
        return FeaturePlan(p, steps)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return the input columns followed by the derived features (uint8 for binary
        input, float64 otherwise), computed by :meth:`feature_plan` in the C core; a
        DataFrame instead after ``set_output(transform="pandas")``."""
        return self.transform_array(X)

    def transform_array(self, X: ArrayLike) -> np.ndarray:
        """:meth:`transform` as a NumPy array whatever ``set_output`` (or scikit-learn's
        global ``transform_output``) says: what the package's own scoring uses."""
        if not self._is_fitted():
            raise NotFittedError("InteractionFeatureTransformer is not fitted yet; call fit first")
        arr = self._columns(X)
        return self.feature_plan().values(arr, out_u8=_is_binary(arr))

    def fit_transform(self, X: ArrayLike, y: object = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    # persistence: the fitted state is the input names and the derived list
    def _to_document(self):
        meta = {"feature_names_in": [str(c) for c in self.feature_names_in_],
                "derived": [[name, op, list(src)] for name, op, src in self.derived_]}
        return meta, {}

    @classmethod
    def _from_document(cls, params, meta, arrays):
        self = cls(**params)
        names = [str(c) for c in meta["feature_names_in"]]
        index = {c: j for j, c in enumerate(names)}
        derived = []
        for name, op, src in meta["derived"]:
            if op not in ("prod", "sum") or any(s not in index for s in src) or not src:
                raise ValueError(f"invalid derived feature {name!r} in the model document")
            derived.append((str(name), op, [str(s) for s in src]))
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.derived_ = derived
        self._index = [[index[s] for s in src] for _, _, src in derived]
        self._plan = self._make_plan()
        return self
