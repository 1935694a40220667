"""sklearn conventions without sklearn as a runtime dependency.

``__init__`` of an estimator only stores its keyword arguments; every parameter is
an attribute of the same name; fitted attributes end in ``_``. ``get_params`` reads
the signature of ``__init__``, so ``sklearn.base.clone``, ``Pipeline`` and
``GridSearchCV`` work on our estimators.

Persistence: an estimator implements ``_to_document() -> (meta, arrays)`` and
``_from_document(meta, arrays)``; ``save``/``propensity.load_model`` and pickle all go
through the versioned model document of :mod:`propensity._modelio`.
"""
import inspect

import numpy as np

from ..io import modelio as _modelio
from ..io.fileio import atomic_write_bytes

_REGISTRY = {}


def register_estimator(cls):
    """Class decorator: make ``cls`` loadable from a model document by its name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def estimator_class(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"model document names an unknown estimator type {name!r}") from None


from ..errors import NotFittedError  # noqa: E402,F401  (re-exported: estimators import it here)


class BaseEstimator:
    """Parameter handling, repr, persistence and pickling shared by all estimators."""

    _estimator_type = "classifier"

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
                    f"invalid parameter {name!r} for {type(self).__name__}; "
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
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
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

    # sklearn >= 1.6 asks estimators for their tags; only sklearn calls this.
    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(multi_class=False),
            input_tags=InputTags(allow_nan=True),
        )

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

    def to_bytes(self):
        """Serialise the fitted model as a versioned model document."""
        self._check_fitted()
        meta, arrays = self._to_document()
        return _modelio.dumps(type(self).__name__, self._json_params(), meta, arrays)

    def save(self, path):
        """Write the model document to ``path`` atomically (temporary file + rename)."""
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, data):
        doc = _modelio.loads(data)
        klass = estimator_class(doc.estimator)
        if cls is not BaseEstimator and not issubclass(klass, cls):
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
            other = BaseEstimator.from_bytes(state["__propensity_document__"])
            if type(other) is not type(self):
                raise ValueError(
                    f"pickled document holds a {type(other).__name__}, not a {type(self).__name__}")
            self.__dict__.update(other.__dict__)
        else:
            self.__dict__.update(state["__propensity_params__"])


def load_model(path):
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
