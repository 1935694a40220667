"""Row compression: identical binned rows -> weighted unique rows (csrc/compress.c).

``compress_rows(B)`` equals ``numpy.unique(B, axis=0, return_inverse=True,
return_counts=True)`` (same order of the unique rows), with the counts split by
label and the sample weights summed per label, and is much faster (hashing).
"""
from dataclasses import dataclass

import numpy as np

from .._core_loader import _core
from .validation import check_n_jobs


@dataclass
class CompressedRows:
    rows: np.ndarray      # (u, p) uint8, lexicographically sorted
    counts: np.ndarray    # (u, 2) int64: rows with label 0 / label 1 (y None: all in column 0)
    weights: np.ndarray   # (u, 2) float64: summed sample_weight per label (= counts without it)
    inverse: np.ndarray   # (n,) int64: the unique row of each input row

    @property
    def n_unique(self):
        return self.rows.shape[0]


def compress_rows(B, y=None, sample_weight=None, n_jobs=None) -> CompressedRows:
    """Merge identical rows of the uint8 matrix ``B`` (n, p).

    y: None or (n,) 0/1 labels (uint8, bool or integer); sample_weight: None or (n,)
    float64. Results do not depend on n_jobs.
    """
    if y is not None:
        y = np.asarray(y)
        if y.dtype == np.bool_ or (y.dtype.kind in "iu" and y.dtype != np.uint8):
            if y.ndim == 1 and y.size and (y.min() < 0 or y.max() > 1):
                bad = int(np.flatnonzero((y < 0) | (y > 1))[0])
                raise ValueError(f"y must be 0 or 1, got {y[bad]} at row {bad}")
            y = y.astype(np.uint8)
    rows, counts, weights, inverse = _core.compress_rows(B, y, sample_weight,
                                                         check_n_jobs(n_jobs))
    return CompressedRows(rows=rows, counts=counts, weights=weights, inverse=inverse)


_SAMPLE = 4096


def distinct_rows(B, max_fraction=0.5, n_jobs=None):
    """``(rows, inverse)`` of a matrix whose rows repeat (at most ``max_fraction`` of them
    distinct, judged on an even sample first when B is large), else None: the one test
    of whether scoring each distinct row once pays. Rows of any dtype are compared as
    their bytes (a float64 matrix is merged as (n, 8p) bytes), by the same C hashing
    that compresses training rows."""
    B = np.asarray(B)
    if B.ndim != 2 or B.shape[0] < 64 or B.shape[1] == 0 or B.dtype.hasobject:
        return None
    B = np.ascontiguousarray(B)
    raw = B if B.dtype == np.uint8 else B.view(np.uint8).reshape(B.shape[0], -1)
    n = raw.shape[0]
    k = _SAMPLE if raw.shape[1] <= 64 else _SAMPLE // 4  # wide rows cost more to sort
    if n > 4 * k:
        sample = np.ascontiguousarray(raw[np.linspace(0, n - 1, k).astype(np.int64)])
        if compress_rows(sample, n_jobs=1).n_unique > max_fraction * k:
            return None
    cr = compress_rows(raw, n_jobs=n_jobs)
    if cr.n_unique > max_fraction * n:
        return None
    rows = cr.rows if B.dtype == np.uint8 else cr.rows.view(B.dtype).reshape(cr.n_unique, -1)
    return rows, cr.inverse
