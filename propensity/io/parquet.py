"""Parquet in and out, a record batch at a time (pyarrow, the optional extra
``propensity[parquet]``).

A Parquet input is read batch by batch (memory: one batch), each batch a DataFrame
that goes through the same schema and value rules as a CSV block -- a bool or 0/1 int
column is a binary column, strings are text, floats numbers -- so a file gives the same
training table, the same scores and the same messages (naming the column and the row)
as the same data as CSV. Predictions are written to Parquet by batches too.
"""
import os

from ..errors import DataError

BATCH_ROWS = 65_536
INSTALL_HINT = "pip install 'propensity[parquet]'"


def require_pyarrow():
    """``(pyarrow, pyarrow.parquet)``; ImportError saying how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"Parquet files need pyarrow, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return pyarrow, pq


class ParquetInput:
    """The column names and record batches (as DataFrames) of a Parquet file; DataError
    naming ``where`` for a file that cannot be opened or read as Parquet."""

    def __init__(self, path, where=None):
        _, pq = require_pyarrow()
        import pyarrow
        self.path = os.fspath(path)
        self.where = where or self.path
        self._errors = (pyarrow.ArrowException, OSError, ValueError)
        try:
            self.file = pq.ParquetFile(self.path)
        except FileNotFoundError:
            raise DataError(f"{self.where}: file not found") from None
        except IsADirectoryError:
            raise DataError(f"{self.where}: is a directory, not a Parquet file") from None
        except self._errors as exc:
            raise DataError(f"{self.where}: cannot read it as Parquet ({_first_line(exc)})") \
                from None
        self.names = [str(f.name) for f in self.file.schema_arrow]
        self.n_rows = self.file.metadata.num_rows

    def batches(self, columns=None, batch_rows=BATCH_ROWS, id_column=None):
        """``(DataFrame, ids)`` of at most ``batch_rows`` rows each, in file order
        (``columns``: only those); ``ids`` is the ``id_column`` as an Arrow string array
        (missing: empty), or None without one."""
        import pyarrow as pa
        import pyarrow.compute as pc
        cols = None if columns is None else list(columns) + ([id_column] if id_column else [])
        try:
            for batch in self.file.iter_batches(batch_size=batch_rows, columns=cols,
                                                use_threads=True):
                ids = None
                if id_column:
                    ids = pc.fill_null(pc.cast(batch.column(id_column), pa.string()), "")
                    batch = batch.select([c for c in batch.schema.names if c != id_column])
                yield batch.to_pandas(), ids
        except self._errors as exc:
            raise DataError(f"{self.where}: cannot read it as Parquet ({_first_line(exc)})") \
                from None

    def head(self, n_rows, id_column=None):
        """The first ``n_rows`` rows (fewer in a smaller file) as one DataFrame, the id
        column (if any) as text; None for a file without rows."""
        import pandas as pd
        parts, have = [], 0
        for df, ids in self.batches(None, min(n_rows, BATCH_ROWS), id_column):
            if ids is not None:
                df[id_column] = ids.to_numpy(zero_copy_only=False).astype(object)
                df = df[self.names]
            parts.append(df.iloc[:n_rows - have])
            have += len(parts[-1])
            if have >= n_rows:
                break
        if not parts:
            return None
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def id_blob(ids):
    """``(blob, spans)`` of an Arrow string array for the C writer of predictions: the
    array's own data buffer and (offset, length) per row, no copy per row."""
    import numpy as np
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + n + 1]
    spans = np.empty((n, 2), dtype=np.int64)
    spans[:, 0] = offsets[:-1]
    spans[:, 1] = np.diff(offsets)
    data = ids.buffers()[2]
    return (data if data is not None else b""), spans


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ParquetPredictions:
    """Writes prediction rows to ``out`` (anything with ``write``, e.g. an
    :class:`~propensity.io.fileio.AtomicOutput`) as one Parquet file, a row group per
    :meth:`add`; :meth:`finish` writes the footer. Columns: UserID (the input's ids as
    text, or row numbers), predicted_ordered (int8), purchase_probability (float64, not
    rounded), prediction_timestamp (text) and segment when asked for."""

    def __init__(self, out, segments):
        from ..scoring.predictor import segment_spec
        segments = segment_spec(segments)
        pa, pq = require_pyarrow()
        self.pa = pa
        fields = [("UserID", pa.string()), ("predicted_ordered", pa.int8()),
                  ("purchase_probability", pa.float64()), ("prediction_timestamp", pa.string())]
        if segments:
            fields.append(("segment", pa.string()))
        self.schema = pa.schema(fields)
        self.segments = segments
        self._forward = _Forward(out)
        self._sink = pa.PythonFile(self._forward, mode="w")
        self._writer = pq.ParquetWriter(self._sink, self.schema)

    def add(self, ids, pred, proba, timestamp):
        from ..scoring.predictor import segment_of
        n = len(proba)
        if not isinstance(ids, self.pa.Array):
            ids = self.pa.array(ids, type=self.pa.string())
        cols = [ids,
                self.pa.array(pred, type=self.pa.int8()),
                self.pa.array(proba, type=self.pa.float64()),
                self.pa.array([timestamp] * n, type=self.pa.string())]
        if self.segments:
            cols.append(self.pa.array(list(segment_of(proba, self.segments)),
                                      type=self.pa.string()))
        self._writer.write_table(self.pa.Table.from_arrays(cols, schema=self.schema))

    def finish(self):
        self._writer.close()

    def abandon(self):
        """Close the writer writing nothing more (the output is being thrown away)."""
        self._forward.dead = True
        try:
            self._writer.close()
        except Exception:   # noqa: BLE001  (nothing of it is kept)
            pass


class _Forward:
    """The file-like face pyarrow writes to, forwarding every byte to ``out.write``."""

    def __init__(self, out):
        self.out, self.pos, self.closed, self.dead = out, 0, False, False

    def write(self, data):
        data = bytes(data)      # pyarrow may reuse its buffer; the writer may be a thread
        if not self.dead:
            self.out.write(data)
        self.pos += len(data)
        return len(data)

    def tell(self):
        return self.pos

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def writable(self):
        return True
