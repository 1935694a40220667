"""scikit-learn's estimator API, on scikit-learn itself when it is installed.

With scikit-learn importable (as XGBoost and LightGBM do it), the estimators derive from
``sklearn.base.BaseEstimator`` and ``ClassifierMixin`` / ``TransformerMixin``: parameters,
``clone``, ``score``, ``set_output``, tags, the HTML repr and ``NotFittedError`` are
scikit-learn's. Without it the package still imports and works on the small fallback
below (parameters, repr, ``score``, ``fit_transform``).

``__init__`` of an estimator only stores its keyword arguments; every parameter is
an attribute of the same name; fitted attributes end in ``_``.

Persistence: an estimator implements ``_to_document() -> (meta, arrays)`` and
``_from_document(meta, arrays)``; ``save``/``propensity.load_model`` and pickle all go
through the versioned model document of :mod:`propensity.io.modelio`. A document names
the registered class the estimator is (for a user's subclass, its registered base);
pickle restores the subclass itself.
"""
from __future__ import annotations

import inspect
from typing import TypeVar

import numpy as np

from .. import _sklearn
from ..io import modelio as _modelio
from ..io.fileio import atomic_write_bytes
from .._typing import PathLike

_REGISTRY: dict[str, type] = {}


def register_estimator(cls):
    """Class decorator: make ``cls`` loadable from a model document by its name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def estimator_class(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"model document names an unknown estimator type {name!r}") from None


def document_name(cls):
    """The name a model document gives ``cls``: its own when registered, else that of the
    nearest registered base class (a user's subclass of RandomForestClassifier is saved as
    a RandomForestClassifier)."""
    for klass in cls.__mro__:
        if _REGISTRY.get(klass.__name__) is klass:
            return klass.__name__
    raise TypeError(f"{cls.__name__} derives from no propensity estimator a model document "
                    f"can hold")


from ..errors import NotFittedError  # noqa: E402,F401  (re-exported: estimators import it here)


def _accuracy(estimator, X, y, sample_weight):
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y).ravel()
    hit = (estimator.predict(X) == y).astype(np.float64)
    return float(np.average(hit, weights=sample_weight))


try:
    if not _sklearn.wanted():   # the package's own commands (see propensity._sklearn)
        raise ImportError("not in the package's commands")
    from sklearn.base import BaseEstimator as _ParamsBase
    from sklearn.base import ClassifierMixin as _ClassifierBase
    from sklearn.base import TransformerMixin as _TransformerBase
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False

    class _ParamsBase:  # type: ignore[no-redef]
        """Parameters and repr by scikit-learn's rules, for when it is not installed."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            names = []
            for p in sig.parameters.values():
                if p.name == "self":
                    continue
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    raise TypeError(f"{cls.__name__}.__init__ must not take *args or **kwargs")
                names.append(p.name)
            return sorted(names)

        def get_params(self, deep=True):
            out = {}
            for name in self._get_param_names():
                value = getattr(self, name)
                if deep and hasattr(value, "get_params") and not isinstance(value, type):
                    for k, v in value.get_params(deep=True).items():
                        out[f"{name}__{k}"] = v
                out[name] = value
            return out

        def set_params(self, **params):
            valid = set(self._get_param_names())
            nested = {}
            for key, value in params.items():
                name, sep, sub = key.partition("__")
                if name not in valid:
                    raise ValueError(
                        f"Invalid parameter {name!r} for {type(self).__name__}; "
                        f"valid parameters: {sorted(valid)}")
                if sep:
                    nested.setdefault(name, {})[sub] = value
                else:
                    setattr(self, name, value)
            for name, sub in nested.items():
                getattr(self, name).set_params(**sub)
            return self

        def __repr__(self):
            defaults = {
                p.name: p.default
                for p in inspect.signature(type(self).__init__).parameters.values()
                if p.name != "self"}
            parts = []
            for name in self._get_param_names():
                value = getattr(self, name, None)
                default = defaults.get(name, inspect.Parameter.empty)
                try:
                    same = value is default or bool(value == default)
                except Exception:  # e.g. arrays
                    same = False
                if not same:
                    parts.append(f"{name}={value!r}")
            return f"{type(self).__name__}({', '.join(parts)})"

    class _ClassifierBase:  # type: ignore[no-redef]
        """``score`` (accuracy), as scikit-learn's ClassifierMixin gives it."""

        _estimator_type = "classifier"

        def score(self, X, y, sample_weight=None):
            """Mean accuracy of ``predict(X)`` against ``y``."""
            return _accuracy(self, X, y, sample_weight)

    class _TransformerBase:  # type: ignore[no-redef]
        """``fit_transform``, as scikit-learn's TransformerMixin gives it."""

        _estimator_type = "transformer"

        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)


# The checks of sklearn.utils.estimator_checks that an estimator is known to fail, with
# the reason; read by ``_more_tags`` (scikit-learn < 1.6, the ``_xfail_checks`` tag) and
# passed by the tests as ``expected_failed_checks`` (scikit-learn >= 1.6).
NO_EXPECTED_FAILURES: dict = {}


_E = TypeVar("_E", bound="BaseEstimator")


class ClassifierMixin(_ClassifierBase):
    """scikit-learn's ClassifierMixin (or the fallback); the classifiers are binary only."""

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()  # scikit-learn's mixin sets fresh classifier tags
        tags.classifier_tags.multi_class = False
        return tags


class TransformerMixin(_TransformerBase):
    """scikit-learn's TransformerMixin (or the fallback)."""


class BaseEstimator(_ParamsBase):
    """Persistence and pickling shared by all estimators (parameters, repr and tags come
    from scikit-learn's BaseEstimator, or from the fallback without it)."""

    #: Whether the estimator accepts NaN (missing values) in X.
    _allow_nan = True
    #: {check name: reason} of the scikit-learn checks the estimator is known to fail.
    _expected_failed_checks = NO_EXPECTED_FAILURES

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        tags.input_tags.sparse = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        tags = {"allow_nan": self._allow_nan, "_xfail_checks": dict(self._expected_failed_checks)}
        if getattr(self, "_estimator_type", None) == "classifier":
            tags["binary_only"] = True
        return tags

    def __sklearn_is_fitted__(self):
        return self._is_fitted()

    # ---- fitted state -------------------------------------------------
    def _is_fitted(self):
        return hasattr(self, "classes_")

    def _check_fitted(self):
        if not self._is_fitted():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit before using it")

    # ---- persistence ----------------------------------------------------
    def _to_document(self):  # pragma: no cover - each estimator implements it
        """Return ``(meta, arrays)``: JSON-able fitted state and named NumPy arrays."""
        raise NotImplementedError

    @classmethod
    def _from_document(cls, params, meta, arrays):  # pragma: no cover
        raise NotImplementedError

    def _json_params(self):
        return {name: _modelio.jsonable(getattr(self, name)) for name in self._get_param_names()}

    def to_bytes(self) -> bytes:
        """Serialise the fitted model as a versioned model document."""
        self._check_fitted()
        meta, arrays = self._to_document()
        return _modelio.dumps(document_name(type(self)), self._json_params(), meta, arrays)

    def save(self, path: PathLike) -> PathLike:
        """Write the model document to ``path`` atomically (temporary file + rename)."""
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls: type[_E], data: bytes) -> _E:
        """The estimator of a model document; on a registered class, it must hold that
        class (or a subclass); on a user's subclass, the document of its registered base
        class is loaded into the subclass (what pickle does)."""
        doc = _modelio.loads(data)
        klass = estimator_class(doc.estimator)
        if cls is not BaseEstimator:
            if issubclass(cls, klass):
                klass = cls  # a subclass restores itself from its base's document
            elif not issubclass(klass, cls):
                raise ValueError(
                    f"model document holds a {doc.estimator}, not a {cls.__name__}")
        try:
            return klass._from_document(doc.params, doc.meta, doc.arrays)
        except (TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            # a backstop: each estimator validates its document, but a hostile one must
            # never surface as anything but "this file is invalid"
            raise _modelio.ModelFormatError(
                f"invalid {doc.estimator} document: {type(exc).__name__}: {exc}") from None

    def __getstate__(self):
        if self._is_fitted():
            return {"__propensity_document__": self.to_bytes()}
        return {"__propensity_params__": self.get_params(deep=False)}

    def __setstate__(self, state):
        if "__propensity_document__" in state:
            other = type(self).from_bytes(state["__propensity_document__"])
            if type(other) is not type(self):
                raise ValueError(
                    f"pickled document holds a {type(other).__name__}, not a {type(self).__name__}")
            self.__dict__.update(other.__dict__)
        else:
            self.__dict__.update(state["__propensity_params__"])


def load_model(path: PathLike) -> BaseEstimator:
    """Load any propensity model document written by ``save`` (never unpickles)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return BaseEstimator.from_bytes(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def set_fitted_names(est, feature_names, n_features):
    est.n_features_in_ = int(n_features)
    if feature_names is not None:
        est.feature_names_in_ = np.asarray(feature_names, dtype=object)
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
