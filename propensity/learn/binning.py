"""Per-feature binning: raw values -> uint8 codes (NaN -> the missing bin, 255).

A column with at most ``max_bins`` distinct non-NaN values (counted over all rows)
gets one bin per value, with edges at the midpoints between consecutive values
(a 0/1 column: one edge 0.5, two bins). Other columns get quantile edges from a
seeded subsample of at most ``subsample`` rows. The code of a value is the number
of edges strictly below it, so ``value <= bin_thresholds(j)[c]`` exactly when its
code is ``<= c``. The work is done by the C core (csrc/bins.c).
"""
import numpy as np

from . import _types
from .._core_loader import _core
from .validation import check_X, check_n_jobs

EDGE_STRIDE = 255  # edge slots per column (csrc/include/propensity/bins.h)


def _as_core_array(X, name="X"):
    """A 2-D C-contiguous float64/float32/uint8 array (converted through check_X if not)."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in _types.X_DTYPES:
        return np.ascontiguousarray(X)
    arr, _ = check_X(X, name=name)
    return arr


class BinMapper:
    """Fit bin edges per column and map raw features to uint8 codes.

    Parameters
    ----------
    max_bins : int, 2..255
        Value bins per column (the missing bin not counted).
    subsample : int or None
        Rows (seeded sample) used to compute quantile edges of columns with more
        than ``max_bins`` distinct values; None uses every row.
    random_state : int or None
        Seed of that subsample (None means 0: binning is always deterministic).
    """

    def __init__(self, max_bins=255, subsample=200_000, random_state=0):
        self.max_bins = max_bins
        self.subsample = subsample
        self.random_state = random_state

    def _check_params(self):
        mb = self.max_bins
        if isinstance(mb, bool) or not isinstance(mb, (int, np.integer)) or not 2 <= mb <= 255:
            raise ValueError(f"max_bins must be an int in [2, 255], got {mb!r}")
        ss = self.subsample
        if ss is not None and (isinstance(ss, bool) or not isinstance(ss, (int, np.integer))
                               or ss < 1):
            raise ValueError(f"subsample must be a positive int or None, got {ss!r}")
        rs = self.random_state
        if rs is None:
            seed = 0
        elif isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and rs >= 0:
            seed = int(rs) & 0xFFFFFFFFFFFFFFFF
        else:
            raise ValueError(f"random_state must be a non-negative int or None, got {rs!r}")
        return int(mb), seed

    def fit(self, X):
        max_bins, seed = self._check_params()
        X = _as_core_array(X)
        subsample = X.shape[0] if self.subsample is None else int(self.subsample)
        edges, n_edges = _core.bin_fit(X, max_bins, max(subsample, 1), seed, 0)
        self.edges_ = edges
        self.n_edges_ = n_edges
        self.n_bins_ = (n_edges + 1).astype(np.int32)
        self.n_features_in_ = X.shape[1]
        return self

    def _check_fitted(self):
        if not hasattr(self, "edges_"):
            from .base import NotFittedError
            raise NotFittedError("this BinMapper is not fitted yet; call fit first")

    def transform(self, X, n_jobs=None):
        """uint8 codes (n, p), C-contiguous; NaN -> 255."""
        self._check_fitted()
        X = _as_core_array(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the BinMapper was fitted "
                             f"with {self.n_features_in_}")
        return _core.bin_transform(X, self.edges_, self.n_edges_, check_n_jobs(n_jobs))

    def fit_transform(self, X, n_jobs=None):
        X = _as_core_array(X)
        return self.fit(X).transform(X, n_jobs=n_jobs)

    def bin_thresholds(self, j):
        """The edges of column j: code c holds the values in (edges[c-1], edges[c]]."""
        self._check_fitted()
        j = int(j)
        if not 0 <= j < self.n_features_in_:
            raise IndexError(f"column {j} is out of range for {self.n_features_in_} features")
        return self.edges_[j, : self.n_edges_[j]].copy()

    def to_arrays(self):
        """The fitted state as arrays, for model documents (see from_arrays)."""
        self._check_fitted()
        return {"bin_edges": self.edges_.copy(), "bin_n_edges": self.n_edges_.copy(),
                "bin_params": np.array([self.max_bins,
                                        -1 if self.subsample is None else self.subsample,
                                        0 if self.random_state is None else self.random_state],
                                       dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays):
        """Rebuild a fitted BinMapper from ``to_arrays()`` output, validating it."""
        try:
            edges = np.asarray(arrays["bin_edges"])
            n_edges = np.asarray(arrays["bin_n_edges"])
        except KeyError as exc:
            raise ValueError(f"bin arrays lack {exc.args[0]!r}") from None
        if edges.dtype != np.float64 or edges.ndim != 2 or edges.shape[1] != EDGE_STRIDE:
            raise ValueError(f"bin_edges must be float64 of shape (p, {EDGE_STRIDE}), got "
                             f"{edges.dtype} {edges.shape}")
        if n_edges.ndim != 1 or n_edges.shape[0] != edges.shape[0] or n_edges.dtype.kind not in "iu":
            raise ValueError(f"bin_n_edges must be an integer array of shape ({edges.shape[0]},), "
                             f"got {n_edges.dtype} {n_edges.shape}")
        if edges.shape[0] < 1:
            raise ValueError("bin_edges has no columns")
        if (n_edges < 0).any() or (n_edges > EDGE_STRIDE - 1).any():
            raise ValueError(f"bin_n_edges must be in [0, {EDGE_STRIDE - 1}]")
        for j, k in enumerate(n_edges.tolist()):
            e = edges[j, :k]
            if not np.isfinite(e).all():
                raise ValueError(f"bin_edges of column {j} are not finite")
            if k > 1 and not (np.diff(e) > 0).all():
                raise ValueError(f"bin_edges of column {j} are not strictly increasing")
            if not np.isnan(edges[j, k:]).all():
                raise ValueError(f"bin_edges of column {j} has values beyond its {k} edges")
        params = np.asarray(arrays.get("bin_params", [255, 200_000, 0]), dtype=np.int64)
        mb, ss, rs = (int(v) for v in params[:3])
        self = cls(max_bins=mb, subsample=None if ss < 0 else ss, random_state=rs)
        self.edges_ = np.ascontiguousarray(edges)
        self.n_edges_ = np.ascontiguousarray(n_edges, dtype=np.int32)
        self.n_bins_ = (self.n_edges_ + 1).astype(np.int32)
        self.n_features_in_ = edges.shape[0]
        return self

    def __repr__(self):
        return (f"BinMapper(max_bins={self.max_bins!r}, subsample={self.subsample!r}, "
                f"random_state={self.random_state!r})")
