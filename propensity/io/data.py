"""Loading and validating training data.

Session data (the 23 binary behaviour columns) is kept as uint8. Any other CSV with a
binary target works too: the columns' kinds (binary, numeric, category) are decided by
:meth:`propensity.schema.Schema.infer` with the C core's value rules, stored in the model
and replayed at prediction. Every error is a :class:`DataError` naming the file, the
column and the row at fault.
"""
import csv
import hashlib
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..learn.features import SESSION_FEATURES
from ..schema import Schema

logger = logging.getLogger(__name__)

_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}


@dataclass
class TrainingData:
    X: pd.DataFrame               # model features (category columns one-hot; uint8 when binary)
    y: np.ndarray                 # uint8 0/1
    ids: object                   # array of ids or None
    schema: Schema                # the raw input columns and their value rules
    source: str
    classes: list = field(default_factory=lambda: [0, 1])
    E: np.ndarray = None          # encoded inputs (n, n_columns), as Schema.encode gives

    @property
    def n_rows(self):
        return int(self.y.shape[0])

    @property
    def input_columns(self):
        return self.schema.names

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


def read_csv_checked(path, id_column=None):
    """Read a CSV into a DataFrame; errors name the file (empty, unreadable, duplicate
    column names). Only empty cells are missing (no 'NA' words); the id column stays
    text, so '0002' is kept as it is."""
    path = os.fspath(path)
    stripped = checked_header(path)
    dtype = {id_column: str} if id_column is not None and id_column in stripped else None
    try:
        df = pd.read_csv(path, low_memory=False, encoding="utf-8-sig", dtype=dtype,
                         keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse the CSV ({exc})") from None
    df.columns = stripped
    if df.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return df


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


def frame_schema(feats, source, id_column=None):
    """The schema of a frame of raw feature columns and its encoding: ``(schema, E, X)``
    with X the model features as a DataFrame."""
    schema, E, _ = Schema.infer(feats, source, known_binary=SESSION_FEATURES,
                                id_column=id_column)
    X = pd.DataFrame(schema.expand(E), columns=schema.feature_names)
    return schema, E, X


def load_training_csv(path, target="ordered", id_column="UserID"):
    """Read and validate a training CSV. Returns :class:`TrainingData`."""
    path = os.fspath(path)
    df = read_csv_checked(path, id_column)
    return from_frame(df, target=target, id_column=id_column, source=path,
                      absolute_source=os.path.abspath(path))


def from_frame(df, target="ordered", id_column="UserID", source="DataFrame",
               absolute_source=None):
    """Same as :func:`load_training_csv` for a DataFrame in memory (e.g. the stand-in)."""
    if target not in df.columns:
        raise DataError(f"{source}: target column {target!r} not found; columns are "
                        f"{list(map(str, df.columns))[:30]} (choose one with --target)")
    y, labels = encode_target(df[target], source, target)
    ids = None
    if id_column is not None:
        if id_column in df.columns:
            ids = df[id_column].to_numpy()
        else:
            logger.info("%s: no id column %r; row numbers stand in", source, id_column)
    feats = df.drop(columns=[c for c in (target, id_column) if c is not None and c in df.columns])
    if feats.shape[1] == 0:
        raise DataError(f"{source}: no feature columns besides the target {target!r}")
    schema, E, X = frame_schema(feats, source, id_column if ids is not None else None)
    logger.info("loaded %s: %d rows, %d input columns (%d binary), %.2f%% positive",
                source, len(y), len(schema.names), len(schema.binary_names), 100.0 * y.mean())
    return TrainingData(X=X, y=y, ids=ids, schema=schema, E=E,
                        source=absolute_source or source, classes=labels)
