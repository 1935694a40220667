"""Training data as sufficient statistics, built in one pass over the rows.

Every learner here is exact on weighted distinct rows, and every figure a training run
reports (F1, precision, recall, ROC-AUC, average precision, Brier, calibration,
thresholds) is a function of per-row scores and labels. So the rows are read once, in
blocks, and kept as a :class:`TrainingTable`: for each distinct (quantised) row, how
many rows of each label fell in each part -- the k cross-validation folds and the
validation split. Memory is O(distinct rows + one block), not O(rows).

Parts are decided while streaming: the i-th row of class c belongs to group i // G
(G = 5k with a validation split, k without) and takes the part its position in the
group has in a seeded permutation of the group. Every complete group puts exactly k
of its 5k rows in validation (20%) and 4 in each fold, per class: a stratified split
that depends only on the seed, the label and the row's position among the rows of its
class, never on the block size.

Values: binary columns are kept as 0/1, category columns as their code + 1 (0: no
category, or missing in a native column, whose "other" code 254 is kept as 255), numeric columns as the bin of their value among at most 255 bins whose edges
come from the first rows (the bounded sample that also decides each column's kind; at
most one bin per distinct value when the sample has few of them, exactly as the trees'
own binning does). Trees split on those edges, so they see exactly what they would
see on the raw values; logistic regression sees each value as the mean of the values
in its bin. A sample whose rows are mostly distinct (continuous columns) is kept row
by row instead (one byte a value and one byte of part and label a row).

The file reader (:func:`read_training_file`) and the in-memory frames
(:func:`table_from_frame`, :func:`table_from_encoded`) both end in one
:class:`TableBuilder`, so a file and the same rows in memory give the same table.
"""
import hashlib
import io as _io
import logging
import os
import stat
from dataclasses import dataclass, field

import numpy as np

from .._core_loader import _core
from ..errors import DataError
from ..learn.compress import compress_rows
from ..learn.validation import check_n_jobs
from ..schema import BINARY, CATEGORY, MAX_NATIVE, NUMERIC, Column, Schema
from .blocks import check_sep, delimiter_hint, open_reader, parse_header, source_position
from .data import checked_names, open_csv

logger = logging.getLogger(__name__)

VALIDATION_SHARE = 5         # one row in 5 goes to the validation split (20%)
N_PERMUTATIONS = 4096        # permutations the groups of a class are dealt from
SAMPLE_ROWS = 100_000        # rows that decide the columns' kinds, fills and bin edges
SAMPLE_BYTES = 32 << 20      # ... and at most this many bytes of them
BLOCK_BYTES = 64 << 20       # bytes the file is read in
ROWS_MODE_SHARE = 0.5        # a sample with more distinct rows than this share: rows mode
_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}


# ---------------------------------------------------------------------------------------
# parts: folds and validation, decided while streaming
# ---------------------------------------------------------------------------------------
def _mix64(x):
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class PartAssigner:
    """Assigns each row a part: fold 0..k-1, or k for the validation split.

    Call it with the labels of consecutive blocks of rows; the result depends only on
    ``seed``, each row's label and its position among the rows of its label.
    """

    def __init__(self, n_folds, seed, validation=True):
        n_folds = int(n_folds)
        if n_folds < 2:
            raise ValueError(f"cv folds must be at least 2, got {n_folds}")
        self.n_folds = n_folds
        self.validation = bool(validation)
        self.group = n_folds * (VALIDATION_SHARE if validation else 1)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, n_folds,
                                     int(validation)])
        ranks = rng.permuted(np.tile(np.arange(self.group, dtype=np.int64),
                                     (N_PERMUTATIONS, 1)), axis=1)
        k = n_folds
        if validation:   # the first k ranks of a group: validation; the rest dealt to folds
            part = np.where(ranks < k, k, (ranks - k) % k)
        else:
            part = ranks
        self._table = part.astype(np.uint8)
        m = (1 << 64) - 1
        self._salt = [np.uint64(((int(seed) & m) * 0x9E3779B1 + (c + 1) * 0xD1B54A32D192ED03) & m)
                      for c in (0, 1)]
        self.seen = [0, 0]

    @property
    def n_parts(self):
        return self.n_folds + (1 if self.validation else 0)

    def __call__(self, y):
        y = np.asarray(y, dtype=np.uint8)
        part = np.empty(y.shape[0], dtype=np.uint8)
        G = self.group
        for c in (0, 1):
            at = np.flatnonzero(y == c)
            m = at.size
            if not m:
                continue
            # the rows of class c are positions seen .. seen+m-1 of its sequence; each
            # group of G positions takes its row of the permutation table, chosen by a
            # hash of the group's number: one hash per group, one gather per row
            first = self.seen[c]
            g0, g1 = first // G, (first + m - 1) // G
            groups = np.arange(g0, g1 + 1, dtype=np.uint64)
            perm = (_mix64(groups ^ self._salt[c]) % np.uint64(N_PERMUTATIONS)).astype(np.int64)
            off = first - g0 * G
            part[at] = self._table[perm].ravel()[off:off + m]
            self.seen[c] += m
        return part


# ---------------------------------------------------------------------------------------
# values: encoded inputs (E) <-> quantised rows (Q)
# ---------------------------------------------------------------------------------------
class Quantiser:
    """Encoded inputs E (the schema's value rules) -> small integer codes Q per value.

    Binary columns stay 0/1; a category column holds its code + 1; a numeric column
    the bin of its value (edges fitted on a sample, as the trees' binning does), and the
    mean value of every bin is accumulated while encoding, for :meth:`decode`.
    """

    def __init__(self, schema, E_sample):
        from ..learn.binning import BinMapper
        self.kinds = [c.kind for c in schema.columns]
        self.numeric = [j for j, k in enumerate(self.kinds) if k == NUMERIC]
        self.category = [j for j, k in enumerate(self.kinds) if k == CATEGORY]
        self.native = [j for j, c in enumerate(schema.columns) if c.native]
        levels = [2 if k == BINARY else 256 if c.native else
                  (len(c.categories) + 1 if k == CATEGORY else 256)
                  for k, c in zip(self.kinds, schema.columns)]
        self.dtype = np.uint8 if max(levels) <= 256 else np.uint16
        self.mapper = None
        if self.numeric:
            sample = np.ascontiguousarray(np.asarray(E_sample, dtype=np.float64)[:, self.numeric])
            self.mapper = BinMapper(max_bins=255, subsample=None).fit(sample)
            self.sums = np.zeros((len(self.numeric), 256))
            self.counts = np.zeros((len(self.numeric), 256))

    @property
    def identity(self):
        """True when Q equals E (every column binary)."""
        return not self.numeric and not self.category

    def edges(self, j):
        """The bin edges of numeric input column j."""
        return self.mapper.bin_thresholds(self.numeric.index(j))

    def encode(self, E, n_jobs=None, accumulate=True):
        """Q (n, columns) of the encoded rows E; adds the numeric values to their bins'
        sums (unless ``accumulate`` is False)."""
        if self.identity:
            return np.array(E, dtype=np.uint8, order="C")
        E = np.asarray(E)
        Q = np.zeros(E.shape, dtype=self.dtype)
        binary = [j for j, k in enumerate(self.kinds) if k == BINARY]
        if binary:
            Q[:, binary] = E[:, binary]
        for j in self.category:
            Q[:, j] = (np.nan_to_num(E[:, j], nan=-1.0) + 1).astype(self.dtype)
        if self.numeric:
            vals = np.ascontiguousarray(E[:, self.numeric], dtype=np.float64)
            codes = self.mapper.transform(vals, n_jobs=n_jobs)
            Q[:, self.numeric] = codes
            if accumulate:
                for i in range(len(self.numeric)):
                    c = codes[:, i]
                    self.sums[i] += np.bincount(c, weights=vals[:, i], minlength=256)
                    self.counts[i] += np.bincount(c, minlength=256)
        return Q

    def representatives(self):
        """(numeric columns, 256) the mean value of every bin (an empty bin: the middle of
        its edges)."""
        reps = np.zeros((len(self.numeric), 256))
        for i in range(len(self.numeric)):
            e = self.mapper.bin_thresholds(i)
            lo = np.r_[e[0] - 1.0 if e.size else -0.5, e] if e.size else np.array([0.0])
            hi = np.r_[e, e[-1] + 1.0] if e.size else np.array([0.0])
            mid = np.zeros(256)
            mid[:lo.size] = (lo + hi) / 2.0
            cnt = self.counts[i]
            reps[i] = np.where(cnt > 0, self.sums[i] / np.maximum(cnt, 1), mid)
        return reps

    def decode(self, Q, reps=None):
        """Encoded inputs of the rows Q: binary 0/1, category code, numeric value the mean
        of the bin (uint8 when every column is binary, else float64)."""
        if self.identity:
            return np.asarray(Q)
        Q = np.asarray(Q)
        E = Q.astype(np.float64)
        for j in self.category:
            E[:, j] -= 1.0
        for j in self.native:           # a native column's missing value is NaN
            E[E[:, j] < 0, j] = np.nan
        if self.numeric:
            reps = self.representatives() if reps is None else reps
            for i, j in enumerate(self.numeric):
                E[:, j] = reps[i][Q[:, j].astype(np.int64)]
        return E


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------
@dataclass
class TrainingTable:
    """Training rows as sufficient statistics.

    Table mode: ``rows`` are distinct quantised rows (lexicographically sorted by their
    bytes) and ``counts`` (u, n_parts, 2) how many rows of each part and label each
    stands for. Rows mode (``counts`` None): ``rows`` hold every row in file order and
    ``key`` (n,) its part * 2 + label.
    """
    rows: np.ndarray
    counts: np.ndarray
    key: np.ndarray
    schema: Schema
    quantiser: Quantiser
    classes: list
    n_folds: int
    validation: bool
    source: str
    target: str
    seed: int
    n_unseen: int = 0
    reps: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_parts(self):
        return self.n_folds + (1 if self.validation else 0)

    @property
    def validation_part(self):
        return self.n_folds if self.validation else None

    @property
    def distinct(self):
        return self.counts is not None

    @property
    def label_counts(self):
        """(2,) rows of label 0 and 1."""
        if self.distinct:
            return self.counts.sum(axis=(0, 1))
        return np.bincount(self.key & 1, minlength=2)

    @property
    def n_rows(self):
        return int(self.label_counts.sum())

    @property
    def n_stored(self):
        return int(self.rows.shape[0])

    def part_label_counts(self):
        """(n_parts, 2) rows per part and label."""
        if self.distinct:
            return self.counts.sum(axis=0)
        return np.bincount(self.key, minlength=2 * self.n_parts).reshape(self.n_parts, 2)

    def select(self, parts):
        """The stored rows that have rows in ``parts``: ``(index, counts (m, 2) int64)``,
        or, kept row by row, ``(index, labels (m,) uint8)`` (each row one row of its
        label: 1 byte a row, not 16; the index int32 below 2^31 rows)."""
        parts = sorted(set(int(p) for p in parts))
        if self.distinct:
            c = self.counts[:, parts, :].sum(axis=1)
            idx = np.flatnonzero(c.sum(axis=1) > 0)
            return idx, np.ascontiguousarray(c[idx])
        idx = np.flatnonzero(np.isin(self.key >> 1, parts))
        if self.n_stored <= np.iinfo(np.int32).max:   # 4 bytes a row, not 8
            idx = idx.astype(np.int32)
        return idx, self.key[idx] & np.uint8(1)

    def decode(self, index=None):
        """Encoded inputs (for the schema's model features) of the stored rows ``index``
        (all when None)."""
        Q = self.rows if index is None else self.rows[index]
        return self.quantiser.decode(Q, self.reps)

    def fingerprint(self):
        """sha256 of the columns, the stored rows and their counts by label: equal for
        the same rows (and, in table mode, in any order)."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.schema.feature_names + [self.target]).encode("utf-8"))
        h.update(np.ascontiguousarray(self.rows).tobytes())
        if self.distinct:
            h.update(np.ascontiguousarray(self.counts.sum(axis=1)).tobytes())
        else:
            h.update(np.ascontiguousarray(self.key & 1).tobytes())
        if self.reps is not None:
            h.update(np.ascontiguousarray(self.reps).tobytes())
        return h.hexdigest()


def _merge(rows_list, counts_list):
    """Distinct rows (sorted by their bytes) of the concatenated rows, counts summed."""
    rows = np.ascontiguousarray(np.concatenate(rows_list))
    counts = np.concatenate(counts_list)
    raw = rows if rows.dtype == np.uint8 else rows.view(np.uint8).reshape(rows.shape[0], -1)
    cr = compress_rows(raw)
    u = cr.n_unique
    flat = counts.reshape(counts.shape[0], -1)
    out = np.empty((u, flat.shape[1]), dtype=np.int64)
    for k in range(flat.shape[1]):
        out[:, k] = np.bincount(cr.inverse, weights=flat[:, k], minlength=u).astype(np.int64)
    merged = cr.rows if rows.dtype == np.uint8 else cr.rows.view(rows.dtype).reshape(u, -1)
    return np.ascontiguousarray(merged), out.reshape((u,) + counts.shape[1:])


class TableBuilder:
    """Accumulates blocks of rows into a :class:`TrainingTable`.

    Table mode merges each block's distinct rows into the running table lazily (when the
    pending blocks hold as many rows as the table), so the cost stays O(rows) for data
    that compresses and O(rows log rows) at worst. Rows mode appends.
    """

    def __init__(self, quantiser, assigner, rows_mode, n_jobs=None):
        self.quantiser = quantiser
        self.assigner = assigner
        self.rows_mode = rows_mode
        self.n_jobs = n_jobs
        self._rows, self._counts = [], []
        self._table = None
        self._pending = 0
        self._keys = []
        self.n_rows = 0

    def add(self, E, y):
        """Add a block of encoded rows E (n, columns) and labels y (n,) 0/1."""
        n = E.shape[0]
        if n == 0:
            return
        Q = self.quantiser.encode(E, n_jobs=self.n_jobs)
        part = self.assigner(y)
        key = part.astype(np.uint8) * np.uint8(2) + np.asarray(y, dtype=np.uint8)
        self.n_rows += n
        if self.rows_mode:
            self._rows.append(Q)
            self._keys.append(key)
            return
        n_keys = 2 * self.assigner.n_parts
        raw = Q if Q.dtype == np.uint8 else Q.view(np.uint8).reshape(n, -1)
        cr = compress_rows(raw, n_jobs=self.n_jobs)
        u = cr.n_unique
        counts = np.bincount(cr.inverse * n_keys + key, minlength=u * n_keys)
        rows = cr.rows if Q.dtype == np.uint8 else cr.rows.view(Q.dtype).reshape(u, -1)
        self._rows.append(np.ascontiguousarray(rows))
        self._counts.append(counts.reshape(u, self.assigner.n_parts, 2).astype(np.int64))
        self._pending += u
        table_size = 0 if self._table is None else self._table[0].shape[0]
        if self._pending >= max(table_size, 1 << 16):
            self._flush()

    def _flush(self):
        if not self._rows:
            return
        rows, counts = list(self._rows), list(self._counts)
        if self._table is not None:
            rows.insert(0, self._table[0])
            counts.insert(0, self._table[1])
        self._table = _merge(rows, counts)
        self._rows, self._counts, self._pending = [], [], 0

    def finish(self, **fields):
        """The :class:`TrainingTable` (the other fields as keyword arguments)."""
        a = self.assigner
        reps = self.quantiser.representatives() if self.quantiser.numeric else None
        if self.rows_mode:
            ncol = len(self.quantiser.kinds)
            rows = (np.concatenate(self._rows) if self._rows
                    else np.zeros((0, ncol), dtype=self.quantiser.dtype))
            key = (np.concatenate(self._keys) if self._keys else np.zeros(0, dtype=np.uint8))
            self._rows, self._keys = [], []
            return TrainingTable(rows=rows, counts=None, key=key, quantiser=self.quantiser,
                                 n_folds=a.n_folds, validation=a.validation, reps=reps,
                                 **fields)
        self._flush()
        if self._table is None:
            ncol = len(self.quantiser.kinds)
            self._table = (np.zeros((0, ncol), dtype=self.quantiser.dtype),
                           np.zeros((0, a.n_parts, 2), dtype=np.int64))
        rows, counts = self._table
        return TrainingTable(rows=rows, counts=counts, key=None, quantiser=self.quantiser,
                             n_folds=a.n_folds, validation=a.validation, reps=reps, **fields)


def _rows_mode(quantiser, E_sample):
    """Whether the sample's rows are mostly distinct (then the table keeps every row)."""
    n = E_sample.shape[0]
    if n < 64 or quantiser.identity and E_sample.shape[1] <= 64:
        return False
    Q = quantiser.encode(E_sample, accumulate=False)   # the sample's rows are added later
    raw = Q if Q.dtype == np.uint8 else Q.view(np.uint8).reshape(n, -1)
    return compress_rows(np.ascontiguousarray(raw)).n_unique > ROWS_MODE_SHARE * n


# ---------------------------------------------------------------------------------------
# the target
# ---------------------------------------------------------------------------------------
def target_column(series, where, target):
    """The target's column rules and class labels from its values (a sample or all of
    them): 0/1 and true/false words -> a binary column (labels [0, 1]); any two other
    values -> a category column of the two (sorted; the second is the positive class).
    An empty cell, or more than two values, is a DataError naming the row."""
    import pandas as pd
    missing = series.isna().to_numpy()
    if not pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        text = series.astype(str).str.strip()
        missing = missing | (text == "").to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{where}: target column {target!r} is empty at line {i + 2} "
                        f"(data row {i + 1})")
    if pd.api.types.is_bool_dtype(series.dtype):
        return Column(target, BINARY, None), [0, 1]
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = np.unique(series.to_numpy())
        if np.isin(values, (0, 1)).all():
            return Column(target, BINARY, None), [0, 1]
        labels = [v.item() if isinstance(v, np.generic) else v for v in values]
        text = [_number_text(v) for v in labels]
    else:
        low = set(series.astype(str).str.strip().str.lower().unique())
        if low <= (_TRUE | _FALSE | {"0", "1"}):
            return Column(target, BINARY, None), [0, 1]
        labels = sorted(set(series.astype(str).str.strip().unique()))
        text = labels
    if len(labels) > 2:
        raise DataError(f"{where}: target column {target!r} is not binary: it has "
                        f"{len(labels)} distinct values, e.g. {labels[:6]}")
    return Column(target, CATEGORY, None, tuple(text)), labels


def _number_text(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _check_classes(counts, where, target, labels):
    for c in (0, 1):
        if counts[c] == 0:
            raise DataError(f"{where}: target column {target!r} has a single class "
                            f"({labels[1 - c] if len(labels) == 2 else labels[0]!r}); both "
                            f"classes are needed to train")


def _warn_labels(labels, target):
    if labels != [0, 1] and labels != [False, True]:
        logger.warning("target %r has labels %s; %r is treated as the positive class",
                       target, labels, labels[1])


# ---------------------------------------------------------------------------------------
# sources: a CSV file, a DataFrame, encoded rows
# ---------------------------------------------------------------------------------------
DEFAULT_ID_COLUMN = "UserID"


def check_id_column(names, id_column, where):
    """DataError when ``id_column`` names a column the data does not have; only the
    default, UserID, may be absent (row numbers stand in)."""
    if id_column is not None and id_column != DEFAULT_ID_COLUMN and id_column not in names:
        raise DataError(f"{where}: id column {id_column!r} not found (--id-column); columns "
                        f"are {list(names)[:30]}")


def _split_frame(df, target, id_column, where):
    if target not in df.columns:
        raise DataError(f"{where}: target column {target!r} not found; columns are "
                        f"{list(map(str, df.columns))[:30]} (choose one with --target)")
    check_id_column(list(map(str, df.columns)), id_column, where)
    drop = [c for c in (target, id_column) if c is not None and c in df.columns]
    feats = df.drop(columns=drop)
    if feats.shape[1] == 0:
        raise DataError(f"{where}: no feature columns besides the target {target!r}")
    return feats


def _infer(feats, where, id_column, categorical="onehot", category_columns=()):
    from ..learn.features import SESSION_FEATURES
    schema, E, _ = Schema.infer(feats, where, known_binary=SESSION_FEATURES,
                                id_column=id_column, categorical=categorical,
                                category_columns=category_columns)
    return schema, E


def encode_target(series, where, target):
    """Labels 0/1 and the class labels of a target column's values (all of them)."""
    tcol, labels = target_column(series, where, target)
    return _encode_target(tcol, series, where), labels


def _encode_target(tcol, series, where):
    """The 0/1 labels of a target column under its rules (the C value rules)."""
    frame = series.rename(tcol.name).reset_index(drop=True).to_frame()
    Ey, _ = Schema([tcol]).encode(frame, where=where, warn=False,
                                  row_label=lambda r: f"line {r + 2} (data row {r + 1})")
    y = np.asarray(Ey, dtype=np.float64).ravel()
    bad = np.flatnonzero(y < 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{where}: target column {tcol.name!r} has a third value "
                        f"{series.iloc[i]!r} at line {i + 2} (data row {i + 1})")
    return y.astype(np.uint8)


def table_from_encoded(schema, E, y, classes, *, source, target, n_folds, seed,
                       validation=True, block_rows=1 << 20, n_jobs=None):
    """The table of rows already encoded under ``schema`` (E (n, columns), y 0/1):
    what a DataFrame or a cluster's rows become."""
    E = np.asarray(E)
    y = np.asarray(y, dtype=np.uint8)
    _check_classes(np.bincount(y, minlength=2), source, target, classes)
    quantiser = Quantiser(schema, E[:SAMPLE_ROWS])
    builder = TableBuilder(quantiser, PartAssigner(n_folds, seed, validation),
                           _rows_mode(quantiser, E[:SAMPLE_ROWS]), n_jobs)
    for a in range(0, E.shape[0], block_rows):
        builder.add(E[a:a + block_rows], y[a:a + block_rows])
    return builder.finish(schema=schema, classes=list(classes), source=source,
                          target=target, seed=int(seed))


def table_from_frame(df, *, target="ordered", id_column="UserID", n_folds=3, seed=42,
                     validation=True, source="DataFrame", n_jobs=None, categorical="onehot",
                     category_columns=()):
    """The table of a DataFrame of training rows (features, target, optional id);
    ``categorical`` and ``category_columns``: how text columns are encoded
    (:meth:`Schema.infer`)."""
    feats = _split_frame(df, target, id_column, source)
    tcol, labels = target_column(df[target], source, target)
    y = _encode_target(tcol, df[target], source)
    ids = id_column if id_column is not None and id_column in df.columns else None
    schema, E = _infer(feats, source, ids, categorical, category_columns)
    _warn_labels(labels, target)
    table = table_from_encoded(schema, E, y, labels, source=source, target=target,
                               n_folds=n_folds, seed=seed, validation=validation,
                               n_jobs=n_jobs)
    _log_loaded(table)
    return table


def _log_loaded(table):
    lc = table.label_counts
    logger.info("loaded %s: %d rows, %d input columns (%d binary), %.2f%% positive; "
                "%d %s", table.source, table.n_rows, len(table.schema.names),
                len(table.schema.binary_names), 100.0 * lc[1] / max(1, lc.sum()),
                table.n_stored, "distinct rows" if table.distinct else "rows kept row by row")
    if table.n_unseen and any(c.native for c in table.schema.columns):
        logger.info("%s: %d cell(s) of category columns hold values without a category of "
                    "their own (beyond the most frequent %d of the first %d rows, or not "
                    "among them): they train as the 'other' category, as prediction treats "
                    "unseen values", table.source, table.n_unseen, MAX_NATIVE, SAMPLE_ROWS)
    elif table.n_unseen:
        logger.warning("%s: %d cell(s) of text columns held values not among the categories "
                       "of the first %d rows; they train as no category, as prediction "
                       "treats unseen values", table.source, table.n_unseen, SAMPLE_ROWS)


def _sample_end(data, eof):
    """Bytes of ``data`` (after the header) holding the sample rows: whole lines, an even
    number of quotes (no record cut inside a quoted field)."""
    limit = min(len(data), SAMPLE_BYTES)
    arr = np.frombuffer(data, dtype=np.uint8, count=limit)
    nl = np.flatnonzero(arr == 10)
    if eof and len(data) <= SAMPLE_BYTES and nl.size <= SAMPLE_ROWS:
        return len(data)
    if nl.size == 0:
        return len(data) if eof else 0
    k = min(SAMPLE_ROWS, nl.size) - 1
    quotes = int(np.count_nonzero(arr[:nl[k] + 1] == 34))
    while k < nl.size - 1 and quotes % 2:      # a line end inside a quoted field
        quotes += int(np.count_nonzero(arr[nl[k] + 1:nl[k + 1] + 1] == 34))
        k += 1
    return int(nl[k]) + 1


def read_training_file(path, *, target="ordered", id_column="UserID", n_folds=3, seed=42,
                       validation=True, progress=None, n_jobs=None,
                       block_bytes=BLOCK_BYTES, sep=",", encoding="utf-8",
                       categorical="onehot", category_columns=()):
    """Read a training CSV once, in blocks, with the C reader, into a :class:`TrainingTable`.

    The first rows (at most SAMPLE_ROWS, SAMPLE_BYTES) decide each column's kind, fill
    and bin edges, and the target's labels; every row, those included, is then read by
    the C reader under those rules, so a later value that breaks them (text in a binary
    column, a third target value, a short row) is a DataError naming its line.
    ``progress(rows, bytes)`` is called after every block. The file may be gzip data
    (decompressed as it is read; the sample is the first rows of the decompressed
    text); ``sep`` is its delimiter and ``encoding`` its text encoding (converted to
    UTF-8 as it is read; without it, text that is not UTF-8 is refused naming the line).
    A name ending in .parquet or .pq is read as Parquet (:func:`read_training_parquet`;
    ``sep`` and ``encoding`` are for CSV text). ``categorical`` and ``category_columns``:
    how text columns are encoded (:meth:`Schema.infer`; the columns of
    ``category_columns`` are read as text).
    """
    import pandas as pd
    from .formats import PARQUET, input_format
    if input_format(path) == PARQUET:
        return read_training_parquet(path, target=target, id_column=id_column,
                                     n_folds=n_folds, seed=seed, validation=validation,
                                     progress=progress, n_jobs=n_jobs,
                                     categorical=categorical,
                                     category_columns=category_columns)
    path = os.fspath(path)
    where = path
    sep = check_sep(sep)
    src = open_csv(path)
    n_threads = check_n_jobs(n_jobs)      # the C reader's count (0: all processors)
    reader = None
    with src:
        try:
            st0 = os.fstat(src.fileno())
            size0 = st0.st_size
            reader = open_reader(src, block_bytes, where=where, encoding=encoding,
                                 limit=size0, prefetch=False)
            head = reader.header_line()
            if head is None:
                raise DataError(f"{path}: the file is empty (no header row)")
            names = checked_names(parse_header(head, sep, where), path)
            if target not in names:
                raise DataError(f"{path}: target column {target!r} not found; columns are "
                                f"{names[:30]} (choose one with --target)."
                                f"{delimiter_hint(names, sep)}")
            check_id_column(names, id_column, path)
            data, eof = reader.fill_to(SAMPLE_BYTES)   # the sample does not depend on blocks
            try:
                cut = _sample_end(data, eof)
                reader.check_text(data[:cut], 0)      # before pandas reads it
                sample_bytes = bytes(data[:cut])
            finally:
                data.release()
            if not sample_bytes.strip():
                raise DataError(f"{path}: the file has a header but no data rows")
            ids = id_column if id_column is not None and id_column in names else None
            try:
                df = pd.read_csv(_io.BytesIO(head + b"\n" + sample_bytes), header=0, sep=sep,
                                 encoding="utf-8-sig", low_memory=False,
                                 dtype={c: str for c in ([ids] if ids else []) +
                                        [c for c in category_columns if c in names]} or None,
                                 keep_default_na=False,
                                 na_values=[""])
            except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
                raise DataError(f"{path}: cannot parse the CSV ({exc})") from None
            df.columns = names if len(df.columns) == len(names) else df.columns
            tcol, labels, schema, builder = _from_sample(df, where, target, id_column, ids,
                                                         n_folds, seed, validation, n_jobs,
                                                         categorical, category_columns)
            del df
            n_unseen = _stream(reader, names, schema, tcol, builder, where, n_threads,
                               progress, sep)
            size1 = os.fstat(src.fileno()).st_size
        except OSError as exc:
            done = reader.bytes_read if reader is not None else 0
            raise DataError(f"{path}: cannot read the file after {done} bytes "
                            f"({exc.strerror or exc})") from None
    read = reader.bytes_read
    regular = stat.S_ISREG(st0.st_mode)
    # a plain file is read to the size it had when opened; a compressed or converted
    # one to its end: either way its size must not change while it is read
    if regular and (size1 != size0 or (read != size0 and not reader.transformed)):
        raise DataError(f"{path}: the file changed while it was read ({size0} bytes at the "
                        f"start, {read} read, {size1} at the end); train on a finished file")
    return _finish(builder, schema, labels, where, path, target, seed, n_unseen)


def _finish(builder, schema, labels, where, path, target, seed, n_unseen):
    """The table of a file read to its end (both classes checked, the load logged)."""
    _check_classes(builder.assigner.seen, where, target, labels)
    _warn_labels(labels, target)
    table = builder.finish(schema=schema, classes=labels, source=os.path.abspath(path),
                           target=target, seed=int(seed), n_unseen=n_unseen)
    _log_loaded(table)
    return table


def _from_sample(df, where, target, id_column, ids, n_folds, seed, validation, n_jobs,
                 categorical="onehot", category_columns=()):
    """What the first rows (a DataFrame) decide: the target's rules and labels, the
    schema, and the table builder with its bin edges and mode."""
    if ids is None and id_column is not None:
        logger.info("%s: no id column %r; row numbers stand in", where, id_column)
    tcol, labels = target_column(df[target], where, target)
    schema, E_sample = _infer(_split_frame(df, target, ids, where), where, ids, categorical,
                              category_columns)
    quantiser = Quantiser(schema, E_sample)
    builder = TableBuilder(quantiser, PartAssigner(n_folds, seed, validation),
                           _rows_mode(quantiser, E_sample), n_jobs)
    return tcol, labels, schema, builder


def _add_rows(builder, X, tcol, where, first_row):
    """Rows X (inputs then the target, encoded as the C reader gives them) into the
    builder; DataError naming the row of a target value other than the labels."""
    c = X.shape[1] - 1
    yv = X[:, c]
    if tcol.kind == CATEGORY:
        bad = np.flatnonzero(yv < 0)
        if bad.size:
            raise DataError(f"{where}: data row {first_row + int(bad[0])}: target column "
                            f"{tcol.name!r} holds a value other than the labels "
                            f"{list(tcol.categories)} of the first rows")
    builder.add(X[:, :c], yv.astype(np.uint8))


def read_training_parquet(path, *, target="ordered", id_column="UserID", n_folds=3, seed=42,
                          validation=True, progress=None, n_jobs=None, batch_rows=None,
                          categorical="onehot", category_columns=()):
    """A Parquet training file into a :class:`TrainingTable`, a record batch at a time:
    the first rows decide the rules as for CSV (:func:`read_training_file`), every row is
    then encoded by the same schema and value rules, so the same data as CSV and as
    Parquet give the same table (when the first SAMPLE_ROWS rows fit in SAMPLE_BYTES of
    CSV text, the CSV sample). ``progress(rows, bytes)`` after every batch (bytes: the
    file's share read so far, by rows)."""
    from .parquet import BATCH_ROWS, ParquetInput
    path = os.fspath(path)
    where = path
    src = ParquetInput(path)
    size = os.path.getsize(path)
    names = checked_names(src.names, path)
    if target not in names:
        raise DataError(f"{path}: target column {target!r} not found; columns are "
                        f"{names[:30]} (choose one with --target)")
    check_id_column(names, id_column, path)
    ids = id_column if id_column is not None and id_column in names else None
    df = src.head(SAMPLE_ROWS, id_column=ids)
    if df is None or not len(df):
        raise DataError(f"{path}: the file has columns but no data rows")
    df.columns = names
    tcol, labels, schema, builder = _from_sample(df, where, target, id_column, ids, n_folds,
                                                 seed, validation, n_jobs, categorical,
                                                 category_columns)
    del df
    full = Schema(schema.columns + [tcol], schema.ignored)
    wanted = [c.name for c in full.columns]
    row, n_unseen = 1, 0
    for batch, _ in src.batches(columns=wanted, batch_rows=batch_rows or BATCH_ROWS):
        first = row
        X, stats = full.encode(batch, where=where, warn=False,
                               row_label=lambda i: f"data row {first + i}")
        if len(batch):
            _add_rows(builder, X, tcol, where, first)
        n_unseen += stats.n_unseen
        row += len(batch)
        if progress is not None:
            progress(len(batch), int(size * (row - 1) / max(src.n_rows, 1)))
    return _finish(builder, schema, labels, where, path, target, seed, n_unseen)


def _stream(reader, names, schema, tcol, builder, where, n_threads, progress, sep=","):
    """Every row through the C reader, into the builder; returns the unseen-category
    cells."""
    full = Schema(schema.columns + [tcol], schema.ignored)
    index, _ = full.locate(names, where, sep)
    c = len(schema.columns)
    line, row, n_unseen = 2, 1, 0
    X = span = None
    while True:
        data, eof = reader.next_block()
        try:
            r = _core.csv_parse(data, schema=full.capsule, delimiter=sep, n_fields=len(names),
                                id_field=-1, feature_field=index, fill_missing=-1,
                                coerce=False, final=eof, first_line=line, first_row=row,
                                n_threads=n_threads, out_X=X, out_span=span)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
        finally:
            data.release()
        X, span = r["X"], r["id_span"]
        n = r["n_rows"]
        if n:
            _add_rows(builder, X[:n, :c + 1], tcol, where, row)
            n_unseen += r["n_unseen"]
            if progress is not None:
                progress(n, source_position(reader))
        reader.consume(r["consumed"], r["n_lines"])
        line += r["n_lines"]
        row += n
        if eof:
            break
    return max(n_unseen, 0)
