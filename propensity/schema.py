"""The schema of a model's input: fitted once at training, replayed by every consumer.

A :class:`Schema` lists the raw input columns a model reads, each with its kind and what
a missing value becomes:

- ``binary``: 0/1. Numbers equal to 0 or 1 and the words true/false, yes/no, t/f, y/n
  (any case) are accepted, in files and DataFrames alike. An empty cell is an error
  unless the column had empty cells at training (then it gets the training median) or
  the caller passes ``fill_missing``; a column absent from the input is 0.
- ``numeric``: a finite number. An empty cell, and an absent column, become the
  training median.
- ``category``: text, in one of two encodings (the training run's ``--categorical``):
  *one-hot* (``onehot``) over the categories seen at training (at most MAX_CATEGORIES),
  an unseen value, an empty cell or an absent column setting none of them; or *native*
  (``auto``, the training run's default): one feature holding the category's code
  0 .. k-1 for the k <= MAX_NATIVE most frequent values of the training sample, OTHER
  (254) for every other value (rarer ones and values not seen at training) and NaN
  (missing) for an empty cell or an absent column. The learners split on the codes
  (trees) or target encode them (logistic regression); they fit the uint8 rows the
  training table compresses.

The value rules live once, in the C core (``csrc/schema.c``): the CSV reader converts
every field with them and :meth:`Schema.encode` passes a DataFrame's columns through the
same functions, so the same value gets the same verdict and the same message on every
path: training, the predictor, the training run's test predictions, Dask, a pickled
model. The schema is stored in the model document (:meth:`to_dict`).
"""
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ._core_loader import _core
from .errors import DataError

logger = logging.getLogger(__name__)

BINARY, NUMERIC, CATEGORY = "binary", "numeric", "category"
KINDS = (BINARY, NUMERIC, CATEGORY)
_KIND_CODE = {BINARY: 0, NUMERIC: 1, CATEGORY: 2}
MAX_CATEGORIES = 1000  # distinct values a text column may have to be one-hot encoded
MAX_NATIVE = 254       # categories with a code of their own in a native column
OTHER = 254            # the code of every other value (PROP_SCHEMA_CAT_OTHER, schema.h)
CATEGORICAL_MODES = ("auto", "onehot")
SCHEMA_FORMAT = 2      # 2: native category columns ("encoding": "native"); 1 without them


@dataclass(frozen=True)
class Column:
    """One input column: ``name``, ``kind`` (binary / numeric / category), ``fill`` (the
    value of an empty cell, None for none) and, for a category column, its categories in
    code order and whether it is ``native`` (one feature of codes) or one-hot."""
    name: str
    kind: str
    fill: float | None = None
    categories: tuple = ()
    native: bool = False

    def feature_names(self):
        if self.kind == CATEGORY and not self.native:
            return [f"{self.name}={c}" for c in self.categories]
        return [self.name]


@dataclass
class EncodeStats:
    """What an encoding changed, for the caller to report."""
    n_coerced: int = 0
    n_filled: int = 0
    n_unseen: int = 0
    missing_columns: list = field(default_factory=list)

    def add(self, counts):
        self.n_coerced += counts["n_coerced"]
        self.n_filled += counts["n_filled"]
        self.n_unseen += counts["n_unseen"]


def _as_text(v):
    """The text of a cell of a category column (a number as Python prints it)."""
    return v if isinstance(v, str) else str(v.item() if isinstance(v, np.generic) else v)


def _text_cells(values):
    """A column of objects as (blob, offsets, missing) for the C converter."""
    n = len(values)
    missing = np.zeros(n, dtype=np.uint8)
    parts = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing[i] = 1
            parts.append(b"")
        else:
            parts.append(_as_text(v).encode("utf-8", "surrogatepass"))
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n:
        np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=n), out=offsets[1:])
    return b"".join(parts), offsets, missing


def _is_numeric_dtype(dtype):
    import pandas as pd
    return (pd.api.types.is_bool_dtype(dtype) or
            (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)))


def _numbers(series):
    return np.ascontiguousarray(series.to_numpy(dtype=np.float64, na_value=np.nan))


class Schema:
    """The input columns of a model (see the module docstring).

    ``columns``: list of :class:`Column`; ``ignored``: training columns that were left
    out (all empty), not needed at prediction; ``id_column``: the identifier column the
    training run used, or None.
    """

    def __init__(self, columns, ignored=(), id_column=None):
        self.columns = list(columns)
        self.ignored = [str(c) for c in ignored]
        self.id_column = id_column
        names = [c.name for c in self.columns]
        if not names:
            raise DataError("a schema needs at least one column")
        if len(set(names)) != len(names):
            raise DataError(f"schema repeats a column name: {names}")
        for c in self.columns:
            if c.kind not in KINDS:
                raise DataError(f"column {c.name!r} has an unknown kind {c.kind!r}")
            if c.native and (c.kind != CATEGORY or len(c.categories) > MAX_NATIVE):
                raise DataError(f"column {c.name!r}: a native column is a category column of "
                                f"at most {MAX_NATIVE} categories")
        self._capsule = None
        self._plan = None

    # ---- description ---------------------------------------------------------------
    @property
    def names(self):
        return [c.name for c in self.columns]

    @property
    def binary_names(self):
        return [c.name for c in self.columns if c.kind == BINARY]

    @property
    def all_binary(self):
        return all(c.kind == BINARY for c in self.columns)

    @property
    def feature_names(self):
        """Names of the model features the schema's plan makes (a one-hot column one per
        category, a native one its name)."""
        return [f for c in self.columns for f in c.feature_names()]

    @property
    def native_features(self):
        """Positions among :attr:`feature_names` of the native category columns' features
        (the learners' categorical features)."""
        out, f = [], 0
        for c in self.columns:
            if c.native:
                out.append(f)
            f += len(c.feature_names())
        return out

    def __eq__(self, other):
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __repr__(self):
        kinds = {k: sum(c.kind == k for c in self.columns) for k in KINDS}
        return f"Schema({len(self.columns)} columns: {kinds})"

    def to_dict(self):
        # format 1 when no column is native: the documents older versions read
        native = any(c.native for c in self.columns)
        return {"format": SCHEMA_FORMAT if native else 1, "id_column": self.id_column,
                "ignored": self.ignored,
                "columns": [{"name": c.name, "kind": c.kind, "fill": c.fill,
                             **({"categories": list(c.categories)} if c.kind == CATEGORY else {}),
                             **({"encoding": "native"} if c.native else {})}
                            for c in self.columns]}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or not isinstance(d.get("columns"), list):
            raise ValueError("the schema is not a dict with a 'columns' list")
        if not isinstance(d.get("format", 1), int) or d.get("format", 1) > SCHEMA_FORMAT:
            raise ValueError(f"schema format {d.get('format')} is newer than this propensity "
                             f"reads ({SCHEMA_FORMAT})")
        cols = []
        for c in d["columns"]:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise ValueError(f"schema column {c!r} is not a dict with a name")
            fill = c.get("fill")
            if fill is not None and (not isinstance(fill, (int, float)) or not math.isfinite(fill)):
                raise ValueError(f"schema column {c['name']!r} has an invalid fill {fill!r}")
            cats = c.get("categories", [])
            if not isinstance(cats, list) or not all(isinstance(v, str) for v in cats):
                raise ValueError(f"schema column {c['name']!r} has invalid categories")
            enc = c.get("encoding", "onehot")
            if enc not in ("onehot", "native"):
                raise ValueError(f"schema column {c['name']!r} has an unknown encoding {enc!r}")
            cols.append(Column(c["name"], c.get("kind"), None if fill is None else float(fill),
                               tuple(cats), enc == "native"))
        ignored = d.get("ignored", [])
        id_column = d.get("id_column")
        if id_column is not None and not isinstance(id_column, str):
            raise ValueError(f"schema has an invalid id_column {id_column!r}")
        try:
            return cls(cols, ignored, id_column)
        except DataError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def from_legacy(cls, input_columns, binary_columns, encoding, id_column="UserID"):
        """The schema of a model document written before schemas were stored."""
        encoding = encoding or {}
        onehot = encoding.get("onehot", {})
        fills = encoding.get("fill", {})
        binary = set(binary_columns) | set(encoding.get("boolean", ()))
        cols = []
        for name in input_columns:
            if name in onehot:
                cols.append(Column(name, CATEGORY, None, tuple(onehot[name])))
            elif name in binary:
                f = fills.get(name)
                cols.append(Column(name, BINARY, None if f is None else float(f >= 0.5)))
            else:
                f = fills.get(name)
                cols.append(Column(name, NUMERIC, None if f is None else float(f)))
        return cls(cols, (), id_column)

    # ---- the C side ----------------------------------------------------------------
    @property
    def capsule(self):
        """The schema in the C core (made once, shared by threads)."""
        if self._capsule is None:
            # kind 3: a native category column (PROP_KIND_CATEGORY_NATIVE, schema.h)
            kinds = np.array([3 if c.native else _KIND_CODE[c.kind] for c in self.columns],
                             dtype=np.int32)
            fill = np.array([np.nan if c.fill is None else c.fill for c in self.columns])
            names = b"".join(c.name.encode("utf-8", "surrogatepass") + b"\0" for c in self.columns)
            ncat = np.array([len(c.categories) for c in self.columns], dtype=np.int64)
            cats = b"".join(v.encode("utf-8", "surrogatepass") + b"\0"
                            for c in self.columns for v in c.categories)
            self._capsule = _core.schema_new(kinds, fill, names, ncat, cats)
        return self._capsule

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_capsule"] = None
        state["_plan"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_plan", None)

    # ---- columns of an input ---------------------------------------------------------
    def locate(self, available, where, sep=","):
        """Index of each schema column in ``available`` (the input's column names, split
        by ``sep``), -1 when absent. Refuses an input with none of the columns (saying
        when the header seems to use another delimiter) or with a repeated one; returns
        ``(index, missing_names)``."""
        available = [str(c) for c in available]
        wanted = set(self.names) | ({self.id_column} if self.id_column else set())
        seen, dups = set(), []
        for c in available:
            if c in seen and c in wanted and c not in dups:
                dups.append(c)
            seen.add(c)
        if dups:
            raise DataError(f"{where} has duplicate column(s) "
                            f"{', '.join(repr(c) for c in dups)}; each feature column and the "
                            f"id column must appear once")
        first = {}
        for k, c in enumerate(available):
            first.setdefault(c, k)
        index = np.array([first.get(c, -1) for c in self.names], dtype=np.int64)
        missing = [c for c, k in zip(self.names, index) if k < 0]
        if len(missing) == len(self.names):
            from .io.blocks import delimiter_hint
            shown = available[:8]
            hint = delimiter_hint(available, sep)
            raise DataError(f"{where} has no known feature column; expected some of "
                            f"{self.names[:5]}... ({len(self.names)} features), found "
                            f"columns {shown}.{hint}")
        return index, missing

    def warn_missing(self, missing, where):
        """The one warning about absent columns, saying what each becomes."""
        if not missing:
            return
        import warnings
        kind = {c.name: c.kind for c in self.columns}
        native = {c.name for c in self.columns if c.native}
        said = {BINARY: "filled with 0", NUMERIC: "filled with the training median",
                CATEGORY: "given no category" if not native & set(missing)
                else "given no category (a missing value)"}
        parts = [f"{said[k]}: {', '.join(c for c in missing if kind[c] == k)}"
                 for k in KINDS if any(kind[c] == k for c in missing)]
        warnings.warn(f"{where} lacks {len(missing)} feature column(s), {'; '.join(parts)}",
                      UserWarning, stacklevel=3)

    # ---- encoding a DataFrame ------------------------------------------------------------
    def encode(self, df, *, where="input DataFrame", coerce=False, fill_missing=None,
               row_label=None, warn=True):
        """Encode the schema's columns of a DataFrame with the C value rules.

        Returns ``(E, stats)``: E is (n, n_columns), uint8 when every column is binary,
        else float64 (category columns hold the category code; -1 for none in a one-hot
        column, OTHER for another value and NaN for none in a native one). Errors are
        :class:`DataError` naming ``where``, the row (``row_label(i)`` describes row i)
        and the column."""
        index, missing = self.locate(df.columns, where)
        if warn:
            self.warn_missing(missing, where)
        n = len(df)
        E = np.empty((n, len(self.columns)), dtype=np.float64)
        stats = EncodeStats(missing_columns=missing)
        fm = -1 if fill_missing is None else int(fill_missing)
        absent = _core.schema_absent(self.capsule)
        for j, k in enumerate(index):
            if k < 0:
                E[:, j] = absent[j]
                continue
            series = df.iloc[:, int(k)]
            numeric = self.columns[j].kind != CATEGORY and _is_numeric_dtype(series.dtype)
            try:
                counts = self._convert(j, _numbers(series) if numeric
                                       else series.to_numpy(dtype=object), numeric, E, fm,
                                       coerce)
            except ValueError as exc:
                if len(exc.args) == 2:
                    msg, row = exc.args
                    place = row_label(row) if row_label is not None else f"row {row}"
                    raise DataError(f"{where}, {place}, {msg}") from None
                raise
            stats.add(counts)
        if self.all_binary:
            E = E.astype(np.uint8)
        return E, stats

    def _convert(self, j, values, numeric, E, fill_missing=-1, coerce=False):
        """Column j of E from ``values``: numbers (float64, NaN missing) when ``numeric``
        (never for a category column), else any objects, read as text. ValueError
        (message, row) on a bad value."""
        if numeric:
            return _core.schema_convert(self.capsule, j, E, values=values,
                                        fill_missing=fill_missing, coerce=coerce)
        blob, offsets, miss = _text_cells(values)
        return _core.schema_convert(self.capsule, j, E, blob=blob, offsets=offsets,
                                    missing=miss, fill_missing=fill_missing, coerce=coerce)

    # ---- from encoded inputs to model features ---------------------------------------
    @property
    def plan(self):
        """The feature plan of the schema (:class:`propensity.learn.plan.FeaturePlan`):
        encoded inputs -> model features, a copy of each binary, numeric or native
        category column and one one-hot column per category of a one-hot category
        column, in column order."""
        if self._plan is None:
            from .learn.plan import COPY, ONEHOT, FeaturePlan
            steps = []
            for j, c in enumerate(self.columns):
                if c.kind == CATEGORY and not c.native:
                    steps += [(ONEHOT, j, float(k), ()) for k in range(len(c.categories))]
                else:
                    steps.append((COPY, j, 0.0, ()))
            self._plan = FeaturePlan(len(self.columns), steps)
        return self._plan

    def expand(self, E):
        """Encoded inputs (n, n_columns) -> model features (n, len(feature_names)): the
        category codes one-hot encoded (the schema's :attr:`plan`, in the C core). uint8
        when every feature is 0/1."""
        E = np.asarray(E)
        if E.dtype == np.uint8:
            return np.ascontiguousarray(E)
        if E.ndim != 2 or E.shape[1] != len(self.columns):
            raise ValueError(f"encoded inputs must have shape (n, {len(self.columns)}), got "
                             f"{E.shape}")
        if E.dtype not in (np.float64, np.float32):
            E = E.astype(np.float64)
        binary = not any(c.kind == NUMERIC or c.native for c in self.columns)
        if self.plan.n_features == 0:  # only category columns without categories
            return np.zeros((E.shape[0], 0), dtype=np.uint8 if binary else np.float64)
        return self.plan.values(E, out_u8=binary)

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def infer(cls, df, where, *, known_binary=(), id_column=None, categorical="onehot",
              category_columns=()):
        """Decide each column's kind from the training data and encode it.

        Columns of ``known_binary`` must be binary. A column of only 0/1 (or true/false
        words) is binary; numbers are numeric (empty cells get the median); other text,
        numbers and text mixed included, and every column of ``category_columns``
        (numbers read as their text), is a category column; an all-empty column is
        ignored. ``categorical``: "onehot" (at most MAX_CATEGORIES values, more is a
        DataError) or "auto" (native columns: the MAX_NATIVE most frequent values keep
        a code, the rest go to OTHER, logged). An empty cell of a category column is a
        missing value, never a category. Returns ``(schema, E, stats)``."""
        import pandas as pd

        if categorical not in CATEGORICAL_MODES:
            raise DataError(f"categorical must be one of {', '.join(CATEGORICAL_MODES)}, got "
                            f"{categorical!r}")
        names = [str(c) for c in df.columns]
        forced = set(category_columns)
        absent = [c for c in category_columns if c not in names]
        if absent:
            raise DataError(f"{where}: --categorical-columns names {', '.join(map(repr, absent))}"
                            f", not a feature column (columns: {names[:20]})")
        clash = sorted(forced & set(known_binary) & set(names))
        if clash:
            raise DataError(f"{where}: {', '.join(map(repr, clash))} must be binary (a session "
                            f"column); it cannot be a category column")
        known = set(known_binary)
        columns, ignored, encoded = [], [], []
        stats = EncodeStats()
        n = len(df)
        for k, name in enumerate(df.columns):
            name = str(name)
            s = df.iloc[:, k]
            numeric = _is_numeric_dtype(s.dtype) and name not in forced
            if numeric:
                v = _numbers(s)
                nan = np.isnan(v)
            else:
                v = s.to_numpy(dtype=object)
                nan = pd.isna(v).astype(bool) | np.array(
                    [isinstance(x, str) and x.strip() == "" for x in v], dtype=bool)
            if nan.all() and name not in known:
                logger.warning("%s: column %r is empty; it is not used", where, name)
                ignored.append(name)
                continue
            col, E, counts = _infer_column(name, v, numeric, nan, name in known, where,
                                           categorical, name in forced)
            if col.kind == NUMERIC and nan.any():
                logger.warning("%s: column %r has %d missing value(s), filled with the median %g",
                               where, name, int(nan.sum()), col.fill)
            columns.append(col)
            encoded.append(E)
            stats.add(counts)
        if not columns:
            raise DataError(f"{where}: no usable feature column")
        schema = cls(columns, ignored, id_column)
        E = np.column_stack(encoded) if n else np.zeros((0, len(columns)))
        if schema.all_binary:
            E = E.astype(np.uint8)
        return schema, np.ascontiguousarray(E), stats


def _convert_one(col, values, numeric):
    """Convert one column with a one-column schema: (E column, counts) or ValueError."""
    E = np.empty((len(values), 1))
    counts = Schema([col])._convert(0, values, numeric, E)
    return E[:, 0], counts


def _missing_cells(col, values):
    """Which cells of a text column the C rules read as missing (empty, blank, 'nan'):
    converted once with two different fills, they are the cells that differ."""
    a, _ = _convert_one(Column(col.name, col.kind, 0.0), values, False)
    b, _ = _convert_one(Column(col.name, col.kind, 1.0), values, False)
    return a != b


def _training_error(exc, where, name):
    if len(exc.args) == 2:
        msg, row = exc.args
        return DataError(f"{where}: line {row + 2} (data row {row + 1}), {msg}")
    return DataError(f"{where}: column {name!r}: {exc}")


def _infer_column(name, v, numeric, nan, must_be_binary, where, categorical="onehot",
                  category=False):
    if category:
        return _category_column(name, v, nan, where, categorical)
    present = ~nan
    if numeric:
        vals = v[present]
        is01 = bool(np.isin(vals, (0.0, 1.0)).all())
        if is01 or must_be_binary:
            fill = None
            if nan.any() and not must_be_binary:
                fill = float(np.median(vals) >= 0.5)
            col = Column(name, BINARY, fill)
        else:
            col = Column(name, NUMERIC, float(np.median(vals)))
        try:
            E, counts = _convert_one(col, v, True)
        except ValueError as exc:
            raise _training_error(exc, where, name) from None
        return col, E, counts
    # text: binary words or 0/1, then numbers, then categories. The kind is judged on the
    # cells that hold a value (empty cells get a stand-in 0 while judging), as for numbers
    # above; a column with empty cells then gets its median as the fill.
    first_error = None
    for kind in (BINARY, NUMERIC):
        col = Column(name, kind, None if must_be_binary else 0.0)
        try:
            E, counts = _convert_one(col, v, False)
        except ValueError as exc:
            if first_error is None:
                first_error = exc
            if must_be_binary:
                break
            continue
        if must_be_binary:
            return col, E, counts
        if counts["n_filled"]:
            good = np.delete(E, np.flatnonzero(_missing_cells(col, v)))
            fill = float(np.median(good) >= 0.5) if kind == BINARY else float(np.median(good))
        else:
            fill = None if kind == BINARY else float(np.median(E))
        col = Column(name, kind, fill)
        E, counts = _convert_one(col, v, False)
        return col, E, counts
    if must_be_binary:
        raise _training_error(first_error, where, name)
    return _category_column(name, v, nan, where, categorical)


def _category_column(name, v, nan, where, categorical):
    """A category column of the values v (objects, ``nan`` its missing cells) and its
    encoding under ``categorical`` ("onehot" or "auto": native, capped at MAX_NATIVE)."""
    text = np.array([_as_text(x) for x, m in zip(v, nan) if not m], dtype=object)
    cats, counts = np.unique(text, return_counts=True) if text.size else ([], [])
    if categorical == "onehot":
        if len(cats) > MAX_CATEGORIES:
            raise DataError(f"{where}: text column {name!r} has {len(cats)} distinct values; "
                            f"too many to one-hot encode (more than {MAX_CATEGORIES}; is it an "
                            f"id? pass --id-column {name}, or train with --categorical auto)")
        col = Column(name, CATEGORY, None, tuple(cats))
    else:
        keep = np.asarray(cats, dtype=object)
        if len(cats) > MAX_NATIVE:
            order = np.lexsort((np.arange(len(cats)), -np.asarray(counts)))  # most frequent
            kept = np.sort(order[:MAX_NATIVE])
            keep = keep[kept]
            n_rows = int(np.asarray(counts).sum() - np.asarray(counts)[kept].sum())
            logger.warning("%s: category column %r has %d distinct values; the %d most "
                           "frequent keep a category each, the other %d values (%d of %d "
                           "rows) share the 'other' category", where, name, len(cats),
                           MAX_NATIVE, len(cats) - MAX_NATIVE, n_rows, int(nan.size))
        col = Column(name, CATEGORY, None, tuple(str(c) for c in keep), native=True)
    v = np.asarray(v, dtype=object)
    E, counts_ = _convert_one(col, v, False)
    return col, E, counts_
