"""Input validation shared by the estimators: X, y, sample_weight.

The C core accepts one layout (C-contiguous float64, float32 or uint8); everything
else is converted here, or rejected with an error naming the argument or column.
NaN is a missing value; +-inf is an error.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..errors import DataConversionWarning
from .._typing import ArrayLike

# the largest value of a C int: every integer parameter the core reads as an int
# (depths, tree counts, iterations, bins) is checked against it here, so the core never
# sees a value it would truncate and a caller gets a ValueError naming the parameter
C_INT_MAX = 2**31 - 1


def check_int(value, name, low=None, high=C_INT_MAX, allow_none=False):
    """``value`` as an int in ``[low, high]`` (``high`` is the C int limit unless a
    smaller bound is given); TypeError for a non-integer, ValueError naming ``name``
    for one out of range."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, got {value!r}")
    value = int(value)
    if high is None:
        high = C_INT_MAX
    if (low is not None and value < low) or value > high:
        raise ValueError(f"{name} must be in [{low if low is not None else -C_INT_MAX - 1}, "
                         f"{high}], got {value}")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float within the bounds; TypeError / ValueError naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    ok = np.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}{hi}, got {value}")
    return value


def _column_error(names, j, what):
    col = f"column {names[j]!r}" if names is not None else f"column {j}"
    return ValueError(f"X {col} {what}")


def _frame_to_array(df):
    import pandas as pd

    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"X has duplicate column names: {dup}")
    kinds = []
    for j, (name, dtype) in enumerate(df.dtypes.items()):
        if pd.api.types.is_bool_dtype(dtype):
            kinds.append("u1")
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
            kinds.append(np.dtype(dtype).str if not isinstance(dtype, pd.api.extensions.ExtensionDtype)
                         else "ext")
        else:
            raise TypeError(
                f"X column {name!r} has non-numeric dtype {dtype}; encode it first "
                f"(the training pipeline one-hot encodes string columns)")
    if all(k in ("u1", "|u1") for k in kinds):
        arr = df.to_numpy(dtype=np.uint8)
    elif all(k in ("<f4",) for k in kinds):
        arr = df.to_numpy(dtype=np.float32)
    else:
        arr = df.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.ascontiguousarray(arr), names


def _is_sparse(X):
    """A SciPy sparse matrix or array, found without importing SciPy."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


def check_X(X: ArrayLike, *, allow_uint8: bool = True,
            name: str = "X") -> tuple[np.ndarray, list[str] | None]:
    """Return ``(array, feature_names_or_None)`` with a dtype the core accepts.

    uint8 and float32 are kept (no copy when already contiguous); bool becomes
    uint8; other numeric types become float64. Raises on non-numeric data,
    +-inf, wrong dimensionality and empty input.
    """
    names = None
    if _is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix ({type(X).__name__}); sparse input is not "
                        f"supported: pass a dense array ({name}.toarray())")
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        arr, names = _frame_to_array(X)
    else:
        arr = np.asarray(X)
        if arr.dtype == object or arr.dtype.kind in "USV":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must be numeric, got dtype {arr.dtype} "
                                f"with a value that is not a number ({exc})") from None
        elif arr.dtype.kind == "c":
            raise ValueError(f"{name} has dtype {arr.dtype}: Complex data not supported; "
                             f"pass real values")
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
    if arr.ndim == 1:
        raise ValueError(f"{name} must be 2-dimensional (n_samples, n_features); got a 1-D "
                         f"array. Reshape your data with X.reshape(-1, 1) (one feature) or "
                         f"X.reshape(1, -1) (one sample)")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional, got {arr.ndim} dimensions")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; at least one is required")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns: found 0 feature(s) (shape={arr.shape}) while "
                         f"a minimum of 1 is required.")
    if arr.dtype == np.uint8 and allow_uint8:
        return np.ascontiguousarray(arr), names
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    arr = np.ascontiguousarray(arr)
    # in row blocks: a cache-sized temporary instead of one as large as X
    step = max(1, (1 << 16) // arr.shape[1])
    for start in range(0, arr.shape[0], step):
        bad = np.isinf(arr[start:start + step])
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise _column_error(names, j, f"has an infinite value at row {start + i}; only "
                                          f"finite values and NaN (missing) are allowed")
    return arr, names


def check_fitted_X(est, X: ArrayLike) -> tuple[np.ndarray, list[str] | None]:
    """X for a fitted estimator's predict/transform: ``check_X``, then the number of
    features and (when both sides have them) the feature names must be those of fit."""
    est._check_fitted()
    X, names = check_X(X)
    n = int(est.n_features_in_)
    if X.shape[1] != n:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{n} features as input (the number it was fitted with)")
    fitted = getattr(est, "feature_names_in_", None)
    if names is not None and fitted is not None and list(names) != list(fitted):
        missing = [c for c in fitted if c not in set(names)]
        raise ValueError(f"X has feature names that differ from those seen in fit (missing: "
                         f"{missing[:10]}); pass the same columns in the same order")
    return X, names


def check_y(y: ArrayLike, n_samples: int | None = None, *,
            name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Binary target -> ``(y01 uint8 array, classes_)``. Two classes are required; a
    column-shaped y (n, 1) is raveled with a DataConversionWarning, as scikit-learn does."""
    if y is None:
        raise ValueError(f"fit requires y to be passed, but the target {name} is None")
    if _is_sparse(y):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported: pass a "
                        f"dense 1-D array")
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(f"A column-vector {name} was passed when a 1d array was expected; it is "
                      f"raveled to shape ({y.shape[0]},): pass {name}.ravel() to avoid this "
                      f"warning", DataConversionWarning, stacklevel=4)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {y.shape}")
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} rows but {name} has {y.shape[0]}")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"{name} contains NaN at row {int(np.flatnonzero(np.isnan(y))[0])}")
    classes, y_enc = np.unique(y, return_inverse=True)
    if classes.shape[0] > 2:
        if classes.dtype.kind == "f" and not np.array_equal(classes, np.round(classes)):
            raise ValueError(f"{name} must be binary, but it holds continuous values "
                             f"({classes.shape[0]} distinct, e.g. {classes[:3].tolist()}): "
                             f"Unknown label type: continuous")
        raise ValueError(f"{name} must be binary; found {classes.shape[0]} classes: "
                         f"{classes[:10].tolist()}. Only binary classification is supported.")
    if classes.shape[0] < 2:
        raise ValueError(f"{name} has a single class ({classes.tolist()}); two are required "
                         f"(one class cannot train a binary classifier)")
    return y_enc.astype(np.uint8), classes


def check_sample_weight(sample_weight: ArrayLike | None,
                        n_samples: int) -> np.ndarray | None:
    """None -> None; otherwise a float64 array of finite, non-negative weights."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(f"sample_weight has shape {sw.shape}, expected ({n_samples},)")
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight contains NaN or infinite values")
    if (sw < 0).any():
        raise ValueError("sample_weight contains negative values")
    if not (sw > 0).any():
        raise ValueError("sample_weight is zero for every row")
    return np.ascontiguousarray(sw)


def class_weight_vector(class_weight, y01, sample_weight=None):
    """Weights of class 0 and 1 as a length-2 float64 array.

    'balanced' follows scikit-learn: n_samples / (2 * count(class)), with counts
    weighted by sample_weight when given. A dict maps class labels (as in y) to
    weights, a missing class keeps weight 1.
    """
    if class_weight is None:
        return np.ones(2)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {class_weight!r}")
        w = np.ones_like(y01, dtype=np.float64) if sample_weight is None else sample_weight
        counts = np.array([w[y01 == 0].sum(), w[y01 == 1].sum()])
        if (counts <= 0).any():
            raise ValueError("class_weight='balanced' needs both classes present")
        return counts.sum() / (2.0 * counts)
    raise TypeError("class_weight dicts must be resolved with the classes; use resolve_class_weight")


def resolve_class_weight(class_weight, classes, y01, sample_weight=None):
    """Like class_weight_vector, also accepting a dict keyed by the original labels."""
    if isinstance(class_weight, dict):
        out = np.ones(2)
        known = {c.item() if isinstance(c, np.generic) else c for c in classes}
        for label, weight in class_weight.items():
            if label not in known:
                raise ValueError(f"class_weight names class {label!r}, which is not in y "
                                 f"(classes: {sorted(known, key=str)})")
            w = float(weight)
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"class_weight for class {label!r} must be finite and >= 0")
            out[int(np.flatnonzero(classes == label)[0])] = w
        return out
    return class_weight_vector(class_weight, y01, sample_weight)


_MAX_THREADS = 1024


def check_n_jobs(n_jobs):
    if n_jobs is None:
        return 0  # all processors
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an int or None, got {n_jobs!r}")
    n = int(n_jobs)
    if n == 0:
        raise ValueError("n_jobs must not be 0 (use None or -1 for all processors)")
    if n > _MAX_THREADS:  # the C core's PROP_MAX_THREADS; larger ints overflow C int
        raise ValueError(f"n_jobs must be at most {_MAX_THREADS}, got {n}")
    return 0 if n < 0 else n

