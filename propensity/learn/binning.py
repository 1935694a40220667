"""Per-feature binning: raw values -> uint8 codes (NaN -> the missing bin, 255).

A column with at most ``max_bins`` distinct non-NaN values (counted over all rows)
gets one bin per value, with edges at the midpoints between consecutive values
(a 0/1 column: one edge 0.5, two bins). Other columns get quantile edges from a
seeded subsample of at most ``subsample`` rows. The code of a value is the number
of edges strictly below it, so ``value <= bin_thresholds(j)[c]`` exactly when its
code is ``<= c``. The work is done by the C core (csrc/bins.c).

A categorical column (``categorical``) gets one code per category instead: its
``max_cat`` most frequent distinct values (ties: the smaller value first) get the codes
0, 1, ... in that order, every other value -- rarer ones and values not seen in fit --
gets ``OTHER_CODE`` and NaN the missing code. When fit is given the labels (``y``) and a
column has more values than ``max_cat``, its ``max_cat - max_cat // 8`` most frequent
values keep a code each and the rarer ones share the last ``max_cat // 8`` codes, grouped
by their positive rate smoothed toward the overall one (``(positives + cat_smooth *
rate) / (rows + cat_smooth)``) into groups of about equal rows: rare categories of
similar rates stay together instead of vanishing in "other" (values not seen in fit
still get ``OTHER_CODE``). The tree learner never sends the
"other" code or the missing code left at a categorical split
(csrc/include/propensity/tree.h).
"""
import logging

import numpy as np

from . import _types
from .._core_loader import _core
from .validation import check_X, check_n_jobs

logger = logging.getLogger(__name__)

EDGE_STRIDE = 255  # edge slots per column (csrc/include/propensity/bins.h)
OTHER_CODE = 254  # rare and unseen categories (PROP_CAT_OTHER, tree.h)
MAX_CAT = 254     # categories with a code of their own, at most
# Category values that are whole numbers in [0, _INT_CATS) (pandas category positions,
# integer ids) are counted and looked up by index (bincount, a table) instead of by
# sorting and binary search: the same values, counts and codes, in linear time.
_INT_CATS = 1 << 16


def _int_categories(col):
    """(ints, nan) when every value of the float column ``col`` is NaN or a whole number
    in [0, _INT_CATS) (not -0.0): ``ints`` the values as int64 (0 where NaN), ``nan``
    the mask of NaN; None otherwise."""
    with np.errstate(invalid="ignore"):
        ok = (col >= 0) & (col < _INT_CATS) & ~np.signbit(col)
    nan = np.isnan(col)
    if not (ok | nan).all():
        return None
    ints = np.where(ok, col, 0).astype(np.int64)
    if not np.array_equal(ints[ok], col[ok]):
        return None
    return ints, nan


def _distinct_values(col, seen, ints):
    """np.unique(col[seen], return_inverse=True, return_counts=True), by counting when
    the column holds small whole numbers (``ints``, see _int_categories)."""
    if ints is None:
        return np.unique(col[seen], return_inverse=True, return_counts=True)
    c = ints[0][seen]
    cnt = np.bincount(c)
    present = np.flatnonzero(cnt)
    rank = np.zeros(cnt.size, dtype=np.int64)
    rank[present] = np.arange(present.size)
    return present.astype(np.float64), rank[c], cnt[present]


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
    categorical : None or sequence of int
        Indices of the categorical columns (see the module docstring).
    max_cat : int, 1..254
        Codes of a categorical column (categories with a code of their own, or groups of
        rare ones, see the module docstring).
    cat_smooth : float >= 0
        Smoothing of the rates that group rare categories (fit with labels).
    """

    def __init__(self, max_bins=255, subsample=200_000, random_state=0, categorical=None,
                 max_cat=MAX_CAT, cat_smooth=10.0):
        self.max_bins = max_bins
        self.subsample = subsample
        self.random_state = random_state
        self.categorical = categorical
        self.max_cat = max_cat
        self.cat_smooth = cat_smooth

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

    def _check_categorical(self, p):
        cat = [] if self.categorical is None else [int(j) for j in self.categorical]
        if any(not 0 <= j < p for j in cat) or len(set(cat)) != len(cat):
            raise ValueError(f"categorical must hold distinct column indices in [0, {p}), "
                             f"got {self.categorical!r}")
        mc = self.max_cat
        if isinstance(mc, bool) or not isinstance(mc, (int, np.integer)) or not 1 <= mc <= MAX_CAT:
            raise ValueError(f"max_cat must be an int in [1, {MAX_CAT}], got {mc!r}")
        return sorted(cat), int(mc)

    def fit(self, X, y=None, sample_weight=None):
        """Fit the edges (and the category codes; ``y``, 0/1 labels, groups the rare
        categories, weighted by ``sample_weight``)."""
        max_bins, seed = self._check_params()
        X = _as_core_array(X)
        cat, max_cat = self._check_categorical(X.shape[1])
        if y is not None:
            y = np.asarray(y, dtype=np.float64).ravel()
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {y.shape[0]} labels, X {X.shape[0]} rows")
            w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight,
                                                                         dtype=np.float64)
            if not (isinstance(self.cat_smooth, (int, float, np.floating, np.integer))
                    and not isinstance(self.cat_smooth, bool) and self.cat_smooth >= 0
                    and np.isfinite(self.cat_smooth)):
                raise ValueError(f"cat_smooth must be a finite number >= 0, got "
                                 f"{self.cat_smooth!r}")
        subsample = X.shape[0] if self.subsample is None else int(self.subsample)
        edges, n_edges = _core.bin_fit(X, max_bins, max(subsample, 1), seed, 0)
        self.edges_ = edges
        self.n_edges_ = n_edges
        self.n_bins_ = (n_edges + 1).astype(np.int32)
        self.n_features_in_ = X.shape[1]
        # categorical columns: no edges; their kept values, sorted, and the codes
        self.cat_values_ = {}
        self.cat_codes_ = {}
        self.cat_n_other_ = {}
        for j in cat:
            col = np.ascontiguousarray(X[:, j], dtype=np.float64)
            seen = ~np.isnan(col)
            vals, inv, counts = _distinct_values(col, seen, _int_categories(col))
            by_freq = np.lexsort((vals, -counts))  # most frequent, then smallest
            codes = np.full(vals.size, OTHER_CODE, dtype=np.int64)
            if y is not None and vals.size > max_cat and max_cat >= 8:
                n_groups = max_cat // 8
                n_own = max_cat - n_groups
                codes[by_freq[:n_own]] = np.arange(n_own)
                tail = by_freq[n_own:]
                wsum = np.bincount(inv, weights=w[seen], minlength=vals.size)
                pos = np.bincount(inv, weights=(w * y)[seen], minlength=vals.size)
                prior = pos.sum() / wsum.sum() if wsum.sum() > 0 else 0.5
                m = float(self.cat_smooth)
                den = wsum[tail] + m
                rate = np.where(den > 0, (pos[tail] + m * prior) / np.where(den > 0, den, 1),
                                prior)
                order = tail[np.lexsort((vals[tail], rate))]  # by rate, then value
                rows = counts[order].astype(np.float64)
                mid = np.cumsum(rows) - rows / 2
                group = np.minimum((n_groups * mid / rows.sum()).astype(np.int64), n_groups - 1)
                codes[order] = n_own + group
                logger.info("categorical column %d: %d distinct values, the %d most frequent "
                            "kept, %d rare ones in %d groups by positive rate", j, vals.size,
                            n_own, tail.size, n_groups)
                n_other = 0
            else:
                codes[by_freq[:max_cat]] = np.arange(min(max_cat, vals.size))
                n_other = int(max(vals.size - max_cat, 0))
                if n_other:
                    logger.info("categorical column %d: %d distinct values, the %d most "
                                "frequent kept, %d go to 'other'", j, vals.size, max_cat,
                                n_other)
            keep = codes != OTHER_CODE
            self.cat_values_[j] = vals[keep]
            self.cat_codes_[j] = codes[keep].astype(np.uint8)
            self.cat_n_other_[j] = n_other
            self.edges_[j, :] = np.nan
            self.n_edges_[j] = 0
            self.n_bins_[j] = int(codes[keep].max()) + 1 if keep.any() else 0
        return self

    @property
    def categorical_mask_(self):
        """uint8 flags of the categorical columns (what the tree learner takes)."""
        self._check_fitted()
        mask = np.zeros(self.n_features_in_, dtype=np.uint8)
        mask[list(getattr(self, "cat_values_", {}))] = 1
        return mask

    def _encode_categories(self, X, B):
        """Overwrite B's categorical columns with the category codes of X's values."""
        for j, kept in getattr(self, "cat_values_", {}).items():
            col = np.ascontiguousarray(X[:, j], dtype=np.float64)
            ints = _int_categories(col) if kept.size else None
            if (ints is not None and kept[0] >= 0 and kept[-1] < _INT_CATS
                    and (kept == np.floor(kept)).all()):
                # whole-number categories: a table from value to code (OTHER_CODE for
                # the values fit did not keep), NaN the missing code
                table = np.full(int(kept[-1]) + 2, OTHER_CODE, dtype=np.uint8)
                table[kept.astype(np.int64)] = self.cat_codes_[j]
                v, nan = ints
                codes = table[np.minimum(v, table.size - 1)]
                codes[nan] = 255
                B[:, j] = codes
                continue
            pos = np.searchsorted(kept, col)
            pos_c = np.minimum(pos, max(kept.size - 1, 0))
            hit = (kept.size > 0) & (kept[pos_c] == col) if kept.size else np.zeros(col.shape, bool)
            codes = np.where(hit, self.cat_codes_[j][pos_c] if kept.size else 0, OTHER_CODE)
            B[:, j] = np.where(np.isnan(col), 255, codes).astype(np.uint8)
        return B

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
        B = _core.bin_transform(X, self.edges_, self.n_edges_, check_n_jobs(n_jobs))
        return self._encode_categories(X, B) if getattr(self, "cat_values_", None) else B

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
        """The fitted state as arrays, for model documents (see from_arrays); the
        categorical columns' arrays only when there are some."""
        self._check_fitted()
        out = {"bin_edges": self.edges_.copy(), "bin_n_edges": self.n_edges_.copy(),
               "bin_params": np.array([self.max_bins,
                                       -1 if self.subsample is None else self.subsample,
                                       0 if self.random_state is None else self.random_state],
                                      dtype=np.int64)}
        cats = getattr(self, "cat_values_", {})
        if cats:
            cols = sorted(cats)
            out["bin_cat_columns"] = np.array(cols, dtype=np.int64)
            out["bin_cat_start"] = np.cumsum([0] + [cats[j].size for j in cols]).astype(np.int64)
            out["bin_cat_values"] = np.concatenate([cats[j] for j in cols]).astype(np.float64)
            out["bin_cat_codes"] = np.concatenate([self.cat_codes_[j] for j in cols]
                                                  ).astype(np.uint8)
            out["bin_cat_params"] = np.array([self.max_cat], dtype=np.int64)
            out["bin_cat_smooth"] = np.array([float(self.cat_smooth)], dtype=np.float64)
        return out

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
        self._cat_from_arrays(arrays)
        return self

    def _cat_from_arrays(self, arrays):
        self.cat_values_, self.cat_codes_, self.cat_n_other_ = {}, {}, {}
        if "bin_cat_columns" not in arrays:  # documents without categorical columns
            return
        try:
            cols = np.asarray(arrays["bin_cat_columns"])
            start = np.asarray(arrays["bin_cat_start"])
            vals = np.asarray(arrays["bin_cat_values"])
            codes = np.asarray(arrays["bin_cat_codes"])
            (mc,) = np.asarray(arrays["bin_cat_params"], dtype=np.int64)[:1].tolist()
        except (KeyError, ValueError) as exc:
            raise ValueError(f"bin arrays: categorical columns incomplete ({exc})") from None
        p = self.n_features_in_
        if (cols.ndim != 1 or cols.dtype.kind not in "iu" or start.shape != (cols.size + 1,)
                or vals.dtype != np.float64 or codes.dtype != np.uint8
                or vals.shape != codes.shape or vals.ndim != 1 or start[0] != 0
                or start[-1] != vals.size or (np.diff(start) < 0).any()):
            raise ValueError("bin arrays: malformed categorical columns")
        if len(set(cols.tolist())) != cols.size or ((cols < 0) | (cols >= p)).any():
            raise ValueError(f"bin arrays: categorical columns must be distinct in [0, {p})")
        if not 1 <= mc <= MAX_CAT:
            raise ValueError(f"bin arrays: max_cat must be in [1, {MAX_CAT}]")
        self.max_cat = int(mc)
        self.cat_smooth = float(np.asarray(arrays.get("bin_cat_smooth", [10.0]))[0])
        self.categorical = cols.tolist()
        for k, j in enumerate(cols.tolist()):
            v, c = vals[start[k]:start[k + 1]], codes[start[k]:start[k + 1]]
            if not np.isfinite(v).all() or (np.diff(v) <= 0).any():
                raise ValueError(f"bin arrays: the categories of column {j} must be finite "
                                 f"increasing values")
            if v.size and (int(c.max()) >= mc or
                           np.unique(c).tolist() != list(range(int(c.max()) + 1))):
                raise ValueError(f"bin arrays: the category codes of column {j} must fill "
                                 f"0..k-1 for some k <= {mc}")
            if self.n_edges_[j] != 0:
                raise ValueError(f"bin arrays: categorical column {j} has bin edges")
            self.cat_values_[j] = v.copy()
            self.cat_codes_[j] = c.copy()
            self.cat_n_other_[j] = 0
            self.n_bins_[j] = int(c.max()) + 1 if c.size else 0

    def __repr__(self):
        return (f"BinMapper(max_bins={self.max_bins!r}, subsample={self.subsample!r}, "
                f"random_state={self.random_state!r})")
