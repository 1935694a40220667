"""Loading and validating training data; the input encoding of generic CSVs.

Session data (the 23 binary behaviour columns) is kept as uint8. Any other CSV with a
binary target works too: numeric columns are used as they are, boolean-like strings
(TRUE/FALSE, yes/no, ...) become 0/1, other strings are one-hot encoded. The encoding is
a JSON-able dict stored in the model and replayed at prediction by :func:`apply_encoding`.
Every error is a :class:`DataError` naming the file, the column and the row at fault.
"""
import csv
import hashlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .features import SESSION_FEATURES

logger = logging.getLogger(__name__)

_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}


class DataError(ValueError):
    """The training data is unusable; the message names the file/column/row."""


@dataclass
class TrainingData:
    X: pd.DataFrame               # encoded numeric columns (uint8 for binary ones)
    y: np.ndarray                 # uint8 0/1
    ids: object                   # array of ids or None
    input_columns: list           # raw columns expected at predict, in order
    binary_columns: list          # input columns that must hold only 0/1
    encoding: dict                # {} for plain numeric data
    source: str
    classes: list = field(default_factory=lambda: [0, 1])

    @property
    def n_rows(self):
        return int(self.y.shape[0])

    def fingerprint(self):
        return data_fingerprint(self.X, self.y)


def data_fingerprint(X, y):
    """sha256 of the column names, the encoded values and the target."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, X.columns)).encode("utf-8"))
    for c in X.columns:
        col = np.ascontiguousarray(X[c].to_numpy())
        h.update(str(col.dtype).encode())
        h.update(col.tobytes())
    h.update(np.ascontiguousarray(np.asarray(y, dtype=np.uint8)).tobytes())
    return h.hexdigest()


def _header(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from None


def checked_header(path):
    """The stripped column names of a CSV's header; DataError naming the file when it is
    empty or repeats a column name."""
    header = _header(path)
    if not header or all(not h.strip() for h in header):
        raise DataError(f"{path}: the file is empty (no header row)")
    stripped = [h.strip() for h in header]
    dups = sorted({h for h in stripped if stripped.count(h) > 1})
    if dups:
        raise DataError(f"{path}: duplicate column name(s) {dups}; every column needs a "
                        f"unique name")
    return stripped


def read_csv_checked(path):
    """Read a CSV into a DataFrame; errors name the file (empty, unreadable, duplicate
    column names)."""
    path = os.fspath(path)
    stripped = checked_header(path)
    try:
        df = pd.read_csv(path, low_memory=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse the CSV ({exc})") from None
    df.columns = stripped
    if df.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return df


def _bool_like(values):
    """True when every non-missing value is a boolean-like string (or 0/1)."""
    low = {str(v).strip().lower() for v in values}
    return bool(low) and low <= (_TRUE | _FALSE | {"0", "1"}) and bool(low & (_TRUE | _FALSE))


def _row_label(index_value):
    # CSV line numbers: header is line 1, first data row line 2
    return f"row {int(index_value) + 2} (data row {int(index_value) + 1})"


def encode_target(series, path, target):
    """Target -> uint8 0/1 (and the original labels). Accepts 0/1, booleans, boolean-like
    strings and any two distinct values (the larger/'true' one is the positive class)."""
    missing = series.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{path}: target column {target!r} is empty at {_row_label(i)}")
    values = series.to_numpy()
    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        low = series.astype(str).str.strip().str.lower()
        uniq = set(low.unique())
        if uniq <= (_TRUE | _FALSE | {"0", "1"}):
            y = low.isin(_TRUE | {"1"}).to_numpy().astype(np.uint8)
            labels = [0, 1]
            if len(set(y.tolist())) < 2:
                raise DataError(f"{path}: target column {target!r} has a single class "
                                f"({sorted(uniq)}); both classes are needed to train")
            return y, labels
        values = series.astype(str).to_numpy()
    classes, y = np.unique(values, return_inverse=True)
    if classes.size > 2:
        raise DataError(f"{path}: target column {target!r} is not binary: it has "
                        f"{classes.size} distinct values, e.g. {classes[:6].tolist()}")
    if classes.size < 2:
        raise DataError(f"{path}: target column {target!r} has a single class "
                        f"({classes.tolist()}); both classes are needed to train")
    labels = [v.item() if isinstance(v, np.generic) else v for v in classes]
    if labels != [0, 1] and labels != [False, True]:
        logger.warning("target %r has labels %s; %r is treated as the positive class",
                       target, labels, labels[1])
    return y.astype(np.uint8), labels


def _check_binary_numeric(df, col, path):
    s = df[col]
    if s.dtype == np.uint8 or s.dtype == np.bool_:
        v = s.to_numpy()
        if v.dtype == np.bool_ or v.max(initial=0) <= 1:
            return v.astype(np.uint8, copy=False)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna().to_numpy() & s.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: binary column {col!r} has a non-numeric value "
                        f"{s.iloc[i]!r} at {_row_label(i)}")
    arr = num.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a missing value" if np.isnan(arr[i]) else f"the value {s.iloc[i]!r}"
        raise DataError(f"{path}: binary column {col!r} has {what} at {_row_label(i)}; "
                        f"only 0 and 1 are allowed")
    return arr.astype(np.uint8)


def build_encoding(df, path):
    """Decide how each column is encoded; returns ``(encoded_frame, binary_columns,
    encoding)``. Known session features must be 0/1."""
    out, binary, enc = {}, [], {"boolean": [], "onehot": {}, "fill": {}}
    for col in df.columns:
        s = df[col]
        if col in SESSION_FEATURES:
            out[col] = _check_binary_numeric(df, col, path)
            binary.append(col)
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.to_numpy().astype(np.uint8)
            binary.append(col)
            enc["boolean"].append(col)
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(arr).any():
                i = int(np.flatnonzero(np.isinf(arr))[0])
                raise DataError(f"{path}: column {col!r} has an infinite value at {_row_label(i)}")
            nan = np.isnan(arr)
            if nan.all():
                logger.warning("%s: column %r is empty; it is dropped", path, col)
                continue
            if nan.any():
                fill = float(np.nanmedian(arr))
                enc["fill"][col] = fill
                logger.warning("%s: column %r has %d missing value(s), filled with the median %g",
                               path, col, int(nan.sum()), fill)
                arr = np.where(nan, fill, arr)
            if np.isin(arr, (0.0, 1.0)).all():
                out[col] = arr.astype(np.uint8)
                binary.append(col)
            else:
                out[col] = arr
            continue
        nonnull = s.dropna()
        if _bool_like(nonnull.unique()):
            low = s.astype(str).str.strip().str.lower()
            out[col] = low.isin(_TRUE | {"1"}).to_numpy().astype(np.uint8)
            binary.append(col)
            enc["boolean"].append(col)
            continue
        cats = sorted(map(str, nonnull.astype(str).unique()))
        if len(cats) > 1000:
            raise DataError(f"{path}: string column {col!r} has {len(cats)} distinct values; "
                            f"too many to one-hot encode (is it an id? pass --id-column {col})")
        enc["onehot"][col] = cats
        sv = s.astype(str).to_numpy()
        na = s.isna().to_numpy()
        for c in cats:
            out[f"{col}={c}"] = ((sv == c) & ~na).astype(np.uint8)
    if not out:
        raise DataError(f"{path}: no usable feature column")
    encoding = {k: v for k, v in enc.items() if v}
    return pd.DataFrame(out), binary, encoding


def apply_encoding(df, input_columns, encoding):
    """Replay the training encoding on new raw data (DataFrame with ``input_columns``)."""
    if not encoding:
        return df[input_columns]
    out = {}
    boolean = set(encoding.get("boolean", []))
    onehot = encoding.get("onehot", {})
    fill = encoding.get("fill", {})
    for col in input_columns:
        s = df[col]
        if col in onehot:
            sv = s.astype(str).to_numpy()
            na = s.isna().to_numpy()
            for c in onehot[col]:
                out[f"{col}={c}"] = ((sv == c) & ~na).astype(np.uint8)
        elif col in boolean:
            if pd.api.types.is_bool_dtype(s.dtype):
                out[col] = s.to_numpy().astype(np.uint8)
            else:
                low = s.astype(str).str.strip().str.lower()
                out[col] = low.isin(_TRUE | {"1", "1.0"}).to_numpy().astype(np.uint8)
        else:
            arr = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
            if col in fill:
                arr = np.where(np.isnan(arr), fill[col], arr)
            out[col] = arr
    return pd.DataFrame(out, index=df.index)


def load_training_csv(path, target="ordered", id_column="UserID"):
    """Read and validate a training CSV. Returns :class:`TrainingData`."""
    path = os.fspath(path)
    df = read_csv_checked(path)
    if target not in df.columns:
        raise DataError(f"{path}: target column {target!r} not found; columns are "
                        f"{list(df.columns)[:30]} (choose one with --target)")
    y, labels = encode_target(df[target], path, target)
    ids = None
    if id_column is not None:
        if id_column in df.columns:
            ids = df[id_column].to_numpy()
        else:
            logger.info("%s: no id column %r; row numbers stand in", path, id_column)
    feats = df.drop(columns=[c for c in (target, id_column) if c is not None and c in df.columns])
    if feats.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    X, binary, encoding = build_encoding(feats, path)
    input_columns = list(feats.columns)
    logger.info("loaded %s: %d rows, %d input columns (%d binary), %.2f%% positive",
                path, len(y), len(input_columns), len(binary), 100.0 * y.mean())
    return TrainingData(X=X, y=y, ids=ids, input_columns=input_columns, binary_columns=binary,
                        encoding=encoding, source=os.path.abspath(path), classes=labels)


def from_frame(df, target="ordered", id_column="UserID", source="DataFrame"):
    """Same as :func:`load_training_csv` for a DataFrame in memory (e.g. the stand-in)."""
    if target not in df.columns:
        raise DataError(f"{source}: target column {target!r} not found")
    y, labels = encode_target(df[target], source, target)
    ids = df[id_column].to_numpy() if id_column and id_column in df.columns else None
    feats = df.drop(columns=[c for c in (target, id_column) if c and c in df.columns])
    X, binary, encoding = build_encoding(feats, source)
    return TrainingData(X=X, y=y, ids=ids, input_columns=list(feats.columns),
                        binary_columns=binary, encoding=encoding, source=source, classes=labels)


def load_test_csv(path, input_columns, encoding, id_column="UserID"):
    """Read a file to score: missing input columns are an error naming them, extra
    columns are ignored. Returns ``(raw_frame_of_inputs, ids)``."""
    path = os.fspath(path)
    df = read_csv_checked(path)
    missing = [c for c in input_columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: test file lacks the column(s) {missing} the model needs")
    ids = df[id_column].to_numpy() if id_column and id_column in df.columns else None
    return df[input_columns], ids
