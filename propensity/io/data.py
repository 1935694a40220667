"""Training rows already read elsewhere (e.g. on a Dask cluster), and the header check.

A training CSV is read by :func:`propensity.io.table.read_training_file` (one pass, the
C reader, into a table of sufficient statistics); rows that arrive already encoded --
the distinct rows a cluster sends back -- are a :class:`TrainingData`, which the
training run turns into the same table (:func:`propensity.io.table.table_from_encoded`).
"""
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..schema import Schema
from .blocks import open_reader, parse_header


@dataclass
class TrainingData:
    E: np.ndarray                 # encoded inputs (n, n_columns), as Schema.encode gives
    y: np.ndarray                 # uint8 0/1
    schema: Schema                # the raw input columns and their value rules
    source: str
    classes: list = field(default_factory=lambda: [0, 1])

    @property
    def n_rows(self):
        return int(self.y.shape[0])


def checked_names(names, path):
    """The stripped column names of a header; DataError naming the file when it is empty
    or repeats a column name."""
    stripped = [h.strip() for h in names]
    if not stripped or all(not h for h in stripped):
        raise DataError(f"{path}: the file is empty (no header row)")
    dups = sorted({h for h in stripped if stripped.count(h) > 1})
    if dups:
        raise DataError(f"{path}: duplicate column name(s) {dups}; every column needs a "
                        f"unique name")
    return stripped


def open_csv(path):
    """``path`` opened for binary reading; DataError naming it when it is missing, a
    folder or unreadable."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def checked_header(path):
    """The checked column names of a plain (not compressed) CSV file's header (see
    :func:`checked_names`): what a Dask cluster's workers can split into blocks."""
    from .formats import PARQUET, input_format
    path = os.fspath(path)
    if input_format(path) == PARQUET:
        raise DataError(f"{path}: Parquet training files are read by the local path; train "
                        f"without --scheduler")
    with open_csv(path) as f:
        try:
            reader = open_reader(f, 1 << 16, where=path, prefetch=False)
            if reader.transformed:
                raise DataError(f"{path}: gzip data cannot be split into blocks for the "
                                f"workers; decompress it, or train without --scheduler")
            head = reader.header_line()
        except OSError as exc:
            raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if head is None:
        raise DataError(f"{path}: the file is empty (no header row)")
    return checked_names(parse_header(head, ",", path), path)
