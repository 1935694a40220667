"""Batch scoring with a trained model: :class:`CustomerPropensityPredictor`.

Loads the best model named by ``ml_outputs/manifest.json`` (checksum verified, the safe
model document, never a pickle unless ``allow_pickle=True``) and scores DataFrames or
CSV files of any size.

One path for every model: a file is read by the C core in blocks of a few MB cut at
record ends (quoted ids with embedded newlines work), each field converted by the
model's schema (:mod:`propensity.schema`: binary, numeric and category columns, the
same value rules as a DataFrame gets); the model scores the encoded block (each
distinct row once) and the C core formats the output rows. Memory stays bounded,
output goes to a temporary file in the target folder that is renamed on success, and
no partial output is left behind after an error.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import pickle
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, cast

import numpy as np

from .. import _core
from .._typing import DataFrame, PathLike
from ..io import manifest as _manifest
from ..learn.base import load_model as _load_document
from ..io.blocks import check_encoding, check_sep, open_reader, parse_header
from ..io.fileio import AtomicOutput, atomic_write_bytes, refuse_same_files
from ..io.formats import PARQUET, input_format, output_format, text_sink
from ..learn.validation import check_n_jobs
from ..errors import (DataError, InputDataError, ModelIntegrityError,  # noqa: F401  (re-exported)
                     ModelNotFoundError, PredictorError)

if TYPE_CHECKING:
    from .model import category_bins, PropensityModel

logger = logging.getLogger(__name__)

MANIFEST_NAME = _manifest.MANIFEST_NAME
ID_COLUMN = "UserID"
OUTPUT_COLUMNS = ["UserID", "predicted_ordered", "purchase_probability", "prediction_timestamp"]
PROBA_DIGITS = 6
REASON_DIGITS = 6  # decimals of a reason's contribution in a predictions CSV
PSI_ALERT = 0.2


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


SEGMENT_EDGES = (0.1, 0.5)   # the default (low, high) edges of the segment column


def segment_spec(segments):
    """The segment column asked for: False (none), or its (low, high) edges (True: the
    default SEGMENT_EDGES); ValueError unless 0 <= low <= high <= 1."""
    if segments is None or segments is False:
        return False
    if segments is True:
        return SEGMENT_EDGES
    try:
        low, high = (float(v) for v in segments)
    except (TypeError, ValueError):
        raise ValueError(f"segments must be True, False or (low, high) edges, got "
                         f"{segments!r}") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"segment edges must satisfy 0 <= low <= high <= 1, got "
                         f"{low:g}, {high:g}")
    return (low, high)


def segment_of(proba, edges=SEGMENT_EDGES):
    """High (p > high), Medium (low <= p <= high), Low (p < low); the C writer's rule."""
    low, high = edges
    proba = np.asarray(proba, dtype=np.float64)
    return np.where(proba > high, "High", np.where(proba >= low, "Medium", "Low")).astype(object)


def id_column_of(model):
    """The id column of the model's input: the one the training run used, else UserID."""
    return getattr(model.schema_, "id_column", None) or ID_COLUMN


class CustomerPropensityPredictor:
    """Score new sessions with a model trained by ``python -m propensity.train``.

    Parameters
    ----------
    model_dir : folder holding ``manifest.json`` and the model files (``ml_outputs``).
    allow_pickle : load the ``.pkl`` files instead of the safe model documents. Unpickling
        runs code from the file: only for files you trust.
    n_jobs : threads that read and write files (None or -1: all processors).

    Safe to share between threads: loading is serialised by a lock and scoring keeps no
    state on the predictor.
    """

    def __init__(self, model_dir: PathLike | None = "ml_outputs", allow_pickle: bool = False,
                 n_jobs: int | None = None) -> None:
        self.model_dir = None if model_dir is None else os.fspath(model_dir)
        self.allow_pickle = bool(allow_pickle)
        self.n_jobs = check_n_jobs(n_jobs)
        self.model: PropensityModel | None = None
        self.model_name: str | None = None
        self.manifest = None
        self._lock = threading.Lock()

    @classmethod
    def from_model(cls, model: PropensityModel, name: str | None = None,
                   n_jobs: int | None = None) -> CustomerPropensityPredictor:
        """A predictor around a model in memory (a fitted PropensityModel), e.g. the one a
        training run or ``fit_dask`` just made."""
        for attr in ("schema_", "proba_encoded", "threshold_"):
            if not hasattr(model, attr):
                raise TypeError(f"{type(model).__name__} is not a fitted PropensityModel "
                                f"(no {attr})")
        self = cls(model_dir=None, n_jobs=n_jobs)
        self.model, self.model_name = model, name or getattr(model, "model_name_", None)
        return self

    # ------------------------------------------------------------------ loading
    def load_model(self, name: str) -> PropensityModel:
        """Load the model ``name`` (e.g. 'random_forest') listed in the manifest."""
        with self._lock:
            manifest = _manifest.read(self.model_dir)
            entry = manifest["models"].get(name)
            if not isinstance(entry, dict):
                raise ModelNotFoundError(
                    f"model {name!r} is not in {self.model_dir}/{MANIFEST_NAME}; "
                    f"available: {sorted(manifest['models'])}")
            if self.allow_pickle:
                path = _manifest.verified_path(self.model_dir, manifest,
                                               entry.get("pickle_file"), "model pickle")
                with open(path, "rb") as f:
                    model = pickle.load(f)
            else:
                path = _manifest.verified_path(self.model_dir, manifest,
                                               entry.get("model_file"), "model file")
                try:
                    model = _load_document(path)
                except ValueError as exc:  # ModelFormatError: damaged or newer version
                    raise ModelIntegrityError(str(exc)) from None
            for attr in ("schema_", "proba_encoded", "threshold_"):
                if not hasattr(model, attr):
                    raise ModelIntegrityError(f"{path} does not hold a fitted propensity model "
                                              f"(no {attr})")
            self.model, self.model_name, self.manifest = model, name, manifest
            logger.info("loaded model %s from %s", name, path)
            return model

    def load_best_model(self) -> PropensityModel:
        """Load the model the manifest names best (highest validation F1)."""
        manifest = _manifest.read(self.model_dir)
        best = manifest.get("best_model")
        if not isinstance(best, str):
            raise ModelIntegrityError(f"{self.model_dir}/{MANIFEST_NAME} names no best_model")
        return self.load_model(best)

    def require_model(self) -> PropensityModel:
        """The loaded model; RuntimeError when none is loaded yet."""
        model = self.model
        if model is None:
            raise RuntimeError("no model loaded: call load_best_model() or load_model(name) first")
        return model

    def decision_threshold(self, threshold: float | None = None) -> float:
        """The threshold a prediction uses: ``threshold`` (checked to be in [0, 1]) or the
        loaded model's tuned one."""
        model = self.require_model()
        thr = float(model.threshold_) if threshold is None else float(threshold)
        if not 0.0 <= thr <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        return thr

    # ------------------------------------------------------------------ DataFrames
    def predict(self, df: DataFrame, threshold: float | None = None,
                segments: bool | tuple[float, float] = False, *,
                coerce: bool = False, fill_missing: int | None = None,
                timestamp: str | None = None, explain: int = 0) -> DataFrame:
        """Score a DataFrame of sessions.

        Returns a DataFrame with ``UserID, predicted_ordered, purchase_probability,
        prediction_timestamp`` (+ ``segment`` with ``segments``: True for High above 0.5,
        Medium from 0.1 to 0.5, Low below 0.1, or other ``(low, high)`` edges). Without an id
        column the index stands in.
        Values are checked with the same rules as a file's (the model's schema).
        ``timestamp`` (ISO text) stands in for the current time. ``explain=k`` adds
        ``reason_1..reason_k``, the input columns pushing each score up most (exact SHAP
        contributions, :meth:`PropensityModel.explain`; ties in column order), and
        ``reason_1_contribution..reason_k_contribution``.
        """
        import pandas as pd  # here only: scoring files needs no pandas (start-up time)

        model = self.require_model()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        segments = segment_spec(segments)
        thr = self.decision_threshold(threshold)
        fill = _check_fill(fill_missing)
        k = check_explain(explain, model)
        try:
            E, stats = model.schema_.encode(df, where="input DataFrame", coerce=coerce,
                                            fill_missing=fill, row_label=_frame_rows(df))
        except DataError as exc:
            raise InputDataError(str(exc)) from None
        _warn_coerced(stats.n_coerced)
        proba = model.proba_encoded(E) if len(df) else np.zeros(0)
        idc = id_column_of(model)
        ids = df[idc].to_numpy() if idc in df.columns else df.index.to_numpy()
        out = pd.DataFrame({
            "UserID": ids,
            "predicted_ordered": (proba >= thr).astype(np.int64),
            "purchase_probability": proba,
            "prediction_timestamp": timestamp or _now_iso(),
        })
        if segments:
            out["segment"] = segment_of(proba, segments)
        if k:
            idx, val = model.reasons_encoded(E, k) if len(df) else \
                (np.zeros((0, k), np.int32), np.zeros((0, k)))
            names = np.asarray(model.input_columns_, dtype=object)
            for r in range(k):
                out[f"reason_{r + 1}"] = names[idx[:, r]]
            for r in range(k):
                out[f"reason_{r + 1}_contribution"] = val[:, r]
        return out

    # ------------------------------------------------------------------ files
    def predict_to_file(self, df: DataFrame, output_path: PathLike, threshold: float | None = None,
                        segments: bool | tuple[float, float] = False,
                        **kwargs: Any) -> int:
        """Score a DataFrame into a predictions CSV: :meth:`predict`, then the same
        header, writer and temporary-file-and-rename as :meth:`predict_from_file`.
        Returns the number of rows."""
        explain = kwargs.get("explain") or 0
        _check_explain_output(explain, output_path)
        segments = segment_spec(segments)
        out = self.predict(df, threshold, segments, **kwargs)
        with AtomicOutput(output_path) as f, \
                _predictions_output(f, output_path, segments, explain) as sink:
            _write_frame(sink, out)
        return len(out)

    def predict_from_file(self, input_path: PathLike | BinaryIO, output_path: PathLike,
                          chunksize: int = 100_000, threshold: float | None = None,
                          segments: bool | tuple[float, float] = False,
                          coerce: bool = False,
                          fill_missing: int | None = None, drift_report: PathLike | None = None,
                          progress: Callable[[int], object] | None = None,
                          sep: str = ",", encoding: str = "utf-8", explain: int = 0) -> dict:
        """Score a CSV file (``'-'`` for stdin, or a binary file object) into a
        predictions CSV (``'-'`` for stdout).

        The input may be gzip-compressed (found by its bytes, whatever its name); a
        ``output_path`` ending in ``.gz`` is written gzip-compressed. ``sep`` is the
        input's delimiter (one character; '\\t' for a tab); ``encoding`` the input's
        text encoding, converted to UTF-8 as it is read (the output is always UTF-8).
        Without it, input that is not UTF-8 is refused naming the line and byte.

        Memory is bounded by ``chunksize`` (rows per block). The output is written to a
        temporary file beside ``output_path`` and renamed on success; on any error no
        output file is left. ``coerce`` clips binary values other than 0/1 (a warning
        counts them); ``fill_missing=0`` fills empty binary cells; ``drift_report`` names
        a JSON file for the population stability index of every feature and of the
        scores. ``progress`` is called with the number of rows of each block. ``explain=k``
        adds the reason columns of :meth:`predict` to a CSV output (explained block by
        block). Returns a summary dict: ``rows``, ``n_coerced``, ``n_filled``,
        ``n_unseen``, ``model``, ``threshold``, ``sha256`` (of the output file's bytes, as
        written) and, with ``drift_report``, ``drift`` (the report).
        """
        model = self.require_model()
        thr = self.decision_threshold(threshold)
        segments = segment_spec(segments)
        k = check_explain(explain, model)
        _check_explain_output(k, output_path)
        chunksize = int(chunksize)
        if chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, got {chunksize}")
        fill = _check_fill(fill_missing)
        sep = check_sep(sep)
        codec = check_encoding(encoding)
        src_name = None if hasattr(input_path, "read") else input_path
        parquet_in = input_format(src_name) == PARQUET
        if parquet_in and (sep != "," or codec != "utf-8"):
            raise ValueError("sep and encoding are for CSV text; a Parquet input has neither")
        if parquet_in and k:
            raise ValueError("explain reads CSV inputs; score a Parquet input without it")
        if output_path != "-":
            folder = os.path.dirname(os.path.abspath(os.fspath(output_path)))
            if not os.path.isdir(folder):
                raise InputDataError(f"output folder {folder!r} does not exist")
        model_files = []
        if self.model_dir is not None and os.path.isdir(self.model_dir):
            model_files = [("the model file", os.path.join(self.model_dir, f))
                           for f in sorted(os.listdir(self.model_dir))
                           if os.path.isfile(os.path.join(self.model_dir, f))]
        refuse_same_files([("--output_file", output_path), ("--drift-report", drift_report)],
                          [("--input_file", src_name)] + model_files)
        drift = _DriftAccumulator(model) if drift_report is not None else None
        timestamp = _now_iso()

        src: BinaryIO | None
        if parquet_in:
            src, close_src, where = None, False, repr(os.fspath(cast(PathLike, input_path)))
        elif hasattr(input_path, "read"):
            src, close_src, where = cast(BinaryIO, input_path), False, "input stream"
        elif input_path == "-":
            src, close_src, where = sys.stdin.buffer, False, "standard input"
        else:
            where = repr(os.fspath(input_path))
            try:
                src, close_src = open(input_path, "rb"), True
            except FileNotFoundError:
                raise InputDataError(f"input file {input_path!r} not found") from None
            except IsADirectoryError:
                raise InputDataError(f"input path {input_path!r} is a folder, not a file") from None
        summary = {"rows": 0, "n_coerced": 0, "n_filled": 0, "n_unseen": 0,
                   "model": self.model_name, "threshold": thr}
        try:
            with AtomicOutput(output_path, background=True, direct=True, digest=True) as raw, \
                    _predictions_output(raw, output_path, segments, k) as out:
                if parquet_in:
                    self._stream_parquet(model, input_path, out, thr, segments, coerce, fill,
                                         chunksize, timestamp, drift, progress, summary, where)
                else:
                    self._stream(model, src, out, thr, segments, coerce, fill, chunksize, sep,
                                 encoding, timestamp, drift, progress, summary, where, k)
                if drift is not None:
                    out.sync()  # the predictions are on disk before the report replaces its file
                    report = drift.report()
                    atomic_write_bytes(drift_report, json.dumps(report, indent=2).encode() + b"\n")
                    summary["drift"] = report
                    if report["drifted"]:
                        logger.warning("data drift: PSI > %.1f for %s (report: %s)", PSI_ALERT,
                                       ", ".join(report["drifted"]), drift_report)
        finally:
            if close_src and src is not None:
                src.close()
        summary["sha256"] = raw.hexdigest()
        _warn_coerced(summary["n_coerced"])
        if summary["n_filled"]:
            logger.info("filled %d empty cell(s)", summary["n_filled"])
        if summary["n_unseen"]:
            native = any(c.native for c in model.schema_.columns)
            logger.info("%d category value(s) without a category of the model's own %s",
                        summary["n_unseen"], "scored as 'other'" if native
                        else "set no category")
        return summary

    def _stream_parquet(self, model, path, out, thr, segments, coerce, fill, chunksize,
                        timestamp, drift, progress, summary, where):
        """A Parquet input, a record batch of ``chunksize`` rows at a time, through the
        schema's value rules (the same as a CSV block's)."""
        from ..io.parquet import ParquetInput, id_blob
        try:
            src = ParquetInput(path, where)
            schema = model.schema_
            _, missing = schema.locate(src.names, where)
            schema.warn_missing(missing, where)
            idc = id_column_of(model)
            wanted = [c for c in schema.names if c in src.names]
            ids = idc if idc in src.names else None
            row = 1
            ts = timestamp.encode()
            for df, id_array in src.batches(columns=wanted, batch_rows=chunksize,
                                            id_column=ids):
                first = row
                E, stats = schema.encode(df, where=where, coerce=coerce,
                                         fill_missing=None if fill < 0 else fill, warn=False,
                                         row_label=lambda i: f"data row {first + i}")
                n = len(df)
                if n:
                    proba = model.proba_encoded(E)
                    pred = (proba >= thr).astype(np.uint8)
                    if hasattr(out, "add"):            # a Parquet output
                        out.add(id_array if id_array is not None else
                                [str(first - 1 + i) for i in range(n)], pred, proba, timestamp)
                    elif id_array is not None:
                        blob, spans = id_blob(id_array)
                        out.write(_core.csv_format(pred, proba, PROBA_DIGITS, ts, segments,
                                                   blob, spans, n_threads=self.n_jobs))
                    else:
                        out.write(_core.csv_format(pred, proba, PROBA_DIGITS, ts, segments,
                                                   first_row_number=first - 1,
                                                   n_threads=self.n_jobs))
                    if drift is not None:
                        drift.add(E, proba)
                    summary["rows"] += n
                    summary["n_coerced"] += stats.n_coerced
                    summary["n_filled"] += stats.n_filled
                    summary["n_unseen"] += stats.n_unseen
                    if progress is not None:
                        progress(n)
                row += n
        except InputDataError:
            raise
        except DataError as exc:
            raise InputDataError(str(exc)) from None

    def _stream(self, model, src, out, thr, segments, coerce, fill, chunksize, sep, encoding,
                timestamp, drift, progress, summary, where, explain=0):
        reader = None
        try:
            reader = open_reader(src, min(max(chunksize * 64, 1 << 16), 256 << 20),
                                 where=where, encoding=encoding)
            self._stream_blocks(model, reader, out, thr, segments, coerce, fill, sep, timestamp,
                                drift, progress, summary, where, explain)
        except InputDataError:
            raise
        except DataError as exc:   # the reader's: gzip, encoding, a line too long
            raise InputDataError(str(exc)) from None
        finally:
            if reader is not None:
                reader.close()

    def _stream_blocks(self, model, reader, out, thr, segments, coerce, fill, sep, timestamp,
                       drift, progress, summary, where, explain=0):
        head = reader.header_line()
        if head is None:
            warnings.warn(f"{where} is empty: the output holds only the header", UserWarning,
                          stacklevel=3)
            return
        try:
            names = parse_header(head, sep, where)
        except DataError as exc:
            raise InputDataError(str(exc)) from None
        schema = model.schema_
        try:
            feature_field, missing = schema.locate(names, where, sep)
        except DataError as exc:
            raise InputDataError(str(exc)) from None
        schema.warn_missing(missing, where)
        idc = id_column_of(model)
        id_field = names.index(idc) if idc in names else -1
        ts = timestamp.encode()
        reason_text = reason_names(model.input_columns_) if explain else None
        reasons = ReasonCache(model, explain) if explain else None
        line, row = 2, 1
        # buffers reused from block to block: the parser's outputs, and a ring of output
        # texts (the writer thread holds at most out.depth + 1 of them at once)
        X = span = None
        by_rows = hasattr(out, "add")
        texts = [bytearray() for _ in range(getattr(out, "depth", 0) + 2)]
        n_blocks = 0
        while True:
            data, eof = reader.next_block()
            try:
                r = _core.csv_parse(data, schema=schema.capsule, delimiter=sep,
                                    n_fields=len(names), id_field=id_field,
                                    feature_field=feature_field, fill_missing=fill,
                                    coerce=coerce, final=eof, first_line=line, first_row=row,
                                    n_threads=self.n_jobs, out_X=X, out_span=span)
                X, span = r["X"], r["id_span"]
                n = r["n_rows"]
                if n:
                    E = X[:n]
                    proba = model.proba_encoded(E)
                    pred = (proba >= thr).astype(np.uint8)
                    buf = texts[n_blocks % len(texts)]  # the core grows it as needed
                    n_blocks += 1
                    extra = {}
                    if explain:  # CSV outputs only (_check_explain_output)
                        idx, val = reasons(E)
                        extra = dict(reason_col=idx, reason_value=val,
                                     reason_names=reason_text[0],
                                     reason_name_start=reason_text[1],
                                     reason_digits=REASON_DIGITS)
                    if by_rows:                         # a Parquet output
                        row_ids = (_span_ids(data, span[:n]) if id_field >= 0 else
                                   [str(row - 1 + i) for i in range(n)])
                        out.add(row_ids, pred, proba, timestamp)
                    elif id_field >= 0:
                        size = _core.csv_format(pred, proba, PROBA_DIGITS, ts, segments, data,
                                                span[:n], n_threads=self.n_jobs, out=buf,
                                                **extra)
                    else:
                        size = _core.csv_format(pred, proba, PROBA_DIGITS, ts, segments,
                                                first_row_number=row - 1, n_threads=self.n_jobs,
                                                out=buf, **extra)
                    if not by_rows:
                        text = memoryview(buf)[:size]
            except ValueError as exc:
                raise InputDataError(f"{where}: {exc}") from None
            finally:
                data.release()
            if n:
                if not by_rows:
                    out.write(text)
                if drift is not None:
                    drift.add(E, proba)
                summary["rows"] += n
                for k in ("n_coerced", "n_filled", "n_unseen"):
                    summary[k] += r[k]
                if progress is not None:
                    progress(n)
            reader.consume(r["consumed"], r["n_lines"])
            line += r["n_lines"]
            row += n
            if eof:
                break


# ---------------------------------------------------------------------- internals
def _frame_rows(df):
    def describe(pos):
        label = df.index[pos]
        label = label.item() if isinstance(label, np.generic) else label
        return f"row {pos} (0-based position; index label {label!r})"
    return describe


@contextlib.contextmanager
def _predictions_output(raw, path, segments, explain=0):
    """Where prediction rows go, by the output's name: CSV text (gzip-compressed for
    .gz), its header written first, or Parquet (.parquet / .pq) rows
    (:class:`propensity.io.parquet.ParquetPredictions`, its footer written when the
    block ends cleanly)."""
    if output_format(path) == PARQUET:
        from ..io.parquet import ParquetPredictions
        rows = ParquetPredictions(raw, segments)
        try:
            yield rows
        except BaseException:
            rows.abandon()
            raise
        rows.finish()
        return
    with text_sink(raw, path) as out:
        out.write(header_line(segments, explain))
        yield out


def _write_frame(out, frame):
    """A predictions DataFrame (as :meth:`CustomerPropensityPredictor.predict` returns)
    to a Parquet or CSV output."""
    if hasattr(out, "add"):
        ids = [str(v.item() if isinstance(v, np.generic) else v) for v in frame["UserID"]]
        ts = str(frame["prediction_timestamp"].iloc[0]) if len(frame) else ""
        out.add(ids, frame["predicted_ordered"].to_numpy(np.uint8),
                frame["purchase_probability"].to_numpy(np.float64), ts)
        return
    out.write(format_predictions(frame))


def _span_ids(data, spans):
    """The ids of a block's records (raw spans, quotes removed) as text: an Arrow string
    array gathered by numpy when no id is quoted, else a list."""
    spans = np.asarray(spans, dtype=np.int64)
    raw_all = np.frombuffer(data, dtype=np.uint8)
    n = spans.shape[0]
    if n and not (raw_all[spans[:, 0][spans[:, 1] > 0]] == ord('"')).any():
        import pyarrow as pa
        lens = spans[:, 1]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        total = int(offsets[-1])
        if total < 2 ** 31:
            gather = np.arange(total, dtype=np.int64) + np.repeat(spans[:, 0] - offsets[:-1],
                                                                 lens)
            text = raw_all[gather].tobytes()
            return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)),
                                               pa.py_buffer(text))
    out = []
    for a, n in spans.tolist():
        raw = bytes(data[a:a + n])
        if raw.startswith(b'"'):   # '""' is a quote; text after the closing quote is kept
            end = 1
            while True:
                end = raw.find(b'"', end)
                if end < 0 or raw[end + 1:end + 2] != b'"':
                    break
                end += 2
            raw = (raw[1:].replace(b'""', b'"') if end < 0 else
                   raw[1:end].replace(b'""', b'"') + raw[end + 1:])
        out.append(raw.decode("utf-8", "replace"))   # not UTF-8: refused by the reader next
    return out


class ReasonCache:
    """The reasons of a stream's rows (:meth:`PropensityModel.reasons_encoded`), each
    distinct encoded row explained once for the whole stream, not once per block: session
    rows repeat across blocks. A row's reasons do not depend on the rows explained with
    it, so the output is the same; at most ``max_rows`` distinct rows are kept (about
    100 bytes each), later ones are explained block by block."""

    def __init__(self, model, k, max_rows=200_000):
        self.model, self.k, self.max_rows = model, int(k), int(max_rows)
        self.slot = {}
        self.idx = np.zeros((0, self.k), dtype=np.int32)
        self.val = np.zeros((0, self.k))

    def __call__(self, E):
        rows, inverse = self.model.distinct_encoded(E)
        if inverse is None:  # rows that do not repeat
            return self.model.reasons_encoded(E, self.k)
        keys = [r.tobytes() for r in rows]
        slots = np.fromiter((self.slot.get(key, -1) for key in keys), dtype=np.int64,
                            count=len(keys))
        new = np.flatnonzero(slots < 0)
        idx = np.empty((rows.shape[0], self.k), dtype=np.int32)
        val = np.empty((rows.shape[0], self.k))
        old = slots >= 0
        idx[old], val[old] = self.idx[slots[old]], self.val[slots[old]]
        if new.size:
            ni, nv = self.model.reasons_encoded(np.ascontiguousarray(rows[new]), self.k)
            idx[new], val[new] = ni, nv
            room = min(new.size, self.max_rows - len(self.slot))
            if room > 0:
                base = self.idx.shape[0]
                self.idx = np.concatenate([self.idx, ni[:room]])
                self.val = np.concatenate([self.val, nv[:room]])
                for j in range(room):
                    self.slot[keys[new[j]]] = base + j
        return idx[inverse], val[inverse]


def reason_columns(k):
    """The reason columns :meth:`CustomerPropensityPredictor.predict` adds for explain=k."""
    return [f"reason_{r + 1}" for r in range(k)] + \
        [f"reason_{r + 1}_contribution" for r in range(k)]


def check_explain(explain, model):
    """The number of reasons asked for: 0 (None or 0) .. the model's input columns."""
    if explain is None:
        return 0
    m = len(model.input_columns_)
    if isinstance(explain, bool) or not isinstance(explain, (int, np.integer)) or \
            not 0 <= explain <= m:
        raise ValueError(f"explain must be an int in [0, {m}] (the model's input columns), "
                         f"got {explain!r}")
    if explain and not hasattr(getattr(model, "estimator_", None), "shap_values"):
        raise ValueError(f"explain: the model's estimator "
                         f"{type(getattr(model, 'estimator_', None)).__name__} cannot explain "
                         f"its scores (no shap_values)")
    return int(explain)


def _check_explain_output(explain, path):
    if explain and output_format(path) == PARQUET:
        raise ValueError("explain writes its reason columns to CSV outputs; a Parquet output "
                         "has none (score to a .csv or .csv.gz file)")


def reason_names(names):
    """Column names as the C formatter takes them: (UTF-8 bytes one after another, the
    int64 offsets of each)."""
    encoded = [str(c).encode("utf-8") for c in names]
    starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=starts[1:])
    return b"".join(encoded), starts


def header_line(segments, explain=0):
    """The header of a predictions CSV (with ``explain`` reason columns)."""
    return (",".join(OUTPUT_COLUMNS + (["segment"] if segments else []) +
                     reason_columns(explain)) + "\n").encode()


def format_predictions(frame):
    """The rows of a predictions DataFrame (as :meth:`CustomerPropensityPredictor.predict`
    returns) as CSV bytes, through the one writer of predictions (the C core's)."""
    ids = [str(v.item() if isinstance(v, np.generic) else v).encode("utf-8")
           for v in frame["UserID"].to_numpy(dtype=object)]
    n = len(ids)
    spans = np.zeros((n, 2), dtype=np.int64)
    if n:
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        spans[1:, 0] = np.cumsum(lens)[:-1]
        spans[:, 1] = lens
    ts = frame["prediction_timestamp"].iloc[0] if n else ""
    extra = {}
    k = sum(1 for c in frame.columns if c.startswith("reason_") and
            not c.endswith("_contribution"))
    if k:
        reasons = frame[[f"reason_{r + 1}" for r in range(k)]].to_numpy(dtype=object)
        names, col = np.unique(reasons.astype(str), return_inverse=True)
        blob, starts = reason_names(names.tolist()) if names.size else (b"", np.zeros(2, np.int64))
        extra = dict(reason_col=np.ascontiguousarray(col.reshape(n, k), dtype=np.int32),
                     reason_value=np.ascontiguousarray(
                         frame[[f"reason_{r + 1}_contribution" for r in range(k)]],
                         dtype=np.float64),
                     reason_names=blob, reason_name_start=starts, reason_digits=REASON_DIGITS)
    return _core.csv_format(frame["predicted_ordered"].to_numpy().astype(np.uint8),
                            np.ascontiguousarray(frame["purchase_probability"], dtype=np.float64),
                            PROBA_DIGITS, str(ts).encode(), "segment" in frame.columns,
                            b"".join(ids), spans, **extra)


def _check_fill(fill_missing):
    if fill_missing is None:
        return -1
    if isinstance(fill_missing, bool) or fill_missing not in (0, 1):
        raise ValueError(f"fill_missing must be None, 0 or 1, got {fill_missing!r}")
    return int(fill_missing)


def _warn_coerced(n):
    if n:
        warnings.warn(f"coerce: {n} value(s) other than 0/1 were clipped to 0/1", UserWarning,
                      stacklevel=3)


def _bin_index(values, edges):
    idx = np.searchsorted(edges, values, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def psi(expected, actual, eps=1e-4):
    """Population stability index of two distributions over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


class _DriftAccumulator:
    """Counts per bin of every profiled feature and of the scores, block by block."""

    def __init__(self, model):
        profile = getattr(model, "training_profile_", None)
        if not isinstance(profile, dict) or "features" not in profile:
            raise ValueError("the model has no training_profile_; a drift report is not possible")
        self.columns = [str(c) for c in model.input_columns_]
        self.features = {}
        self.categories = {}   # native category columns: (j, k, expected, counts)
        for j, col in enumerate(model.schema_.columns):
            prof = profile["features"].get(col.name)
            if col.native:
                k = len(col.categories)
                expected = np.asarray(prof["fractions"], dtype=np.float64) if prof and \
                    len(prof.get("fractions", ())) == k + 2 else None
                self.categories[col.name] = (j, k, expected, np.zeros(k + 2, dtype=np.int64))
        for j, c in enumerate(self.columns):
            prof = profile["features"].get(c)
            if prof and c not in self.categories:
                edges = np.asarray(prof["edges"], dtype=np.float64)
                self.features[c] = (j, edges, np.asarray(prof["fractions"], dtype=np.float64),
                                    np.zeros(len(edges) - 1, dtype=np.int64))
        score = profile.get("score")
        self.score = None
        if score:
            edges = np.asarray(score["edges"], dtype=np.float64)
            self.score = (edges, np.asarray(score["fractions"], dtype=np.float64),
                          np.zeros(len(edges) - 1, dtype=np.int64))
        self.n = 0

    def _add_scores(self, proba):
        if self.score is not None and len(proba):
            edges, _, counts = self.score
            counts += np.bincount(_bin_index(proba, edges), minlength=len(counts))

    def add(self, E, proba):
        """Count a block of encoded inputs (E, as the schema gives) and its scores."""
        for j, edges, _, counts in self.features.values():
            vals = np.asarray(E[:, j], dtype=np.float64)
            counts += np.bincount(_bin_index(vals, edges), minlength=len(counts))
        from .model import category_bins
        for j, k, _, counts in self.categories.values():
            counts += np.bincount(category_bins(E[:, j], k), minlength=k + 2)
        self._add_scores(proba)
        self.n += len(proba)

    def report(self):
        feats = {}
        for c, (_, edges, expected, counts) in self.features.items():
            total = counts.sum()
            actual = counts / total if total else counts.astype(float)
            feats[c] = {"psi": psi(expected, actual) if total else None,
                        "expected": expected.tolist(), "actual": actual.tolist()}
        for c, (_, k, expected, counts) in self.categories.items():
            # the rows whose value has no category of the model's own ("other": unseen at
            # training, or beyond the training run's cap), and the missing ones
            total = counts.sum()
            actual = counts / total if total else counts.astype(float)
            feats[c] = {"psi": psi(expected, actual) if total and expected is not None
                        else None,
                        "n_unseen": int(counts[k]), "n_missing": int(counts[k + 1]),
                        "unseen_share": float(actual[k]) if total else None,
                        "expected_unseen_share": (float(expected[k]) if expected is not None
                                                  else None)}
        out = {"n_rows": int(self.n), "psi_alert": PSI_ALERT, "features": feats}
        drifted = [c for c, v in feats.items() if v["psi"] is not None and v["psi"] > PSI_ALERT]
        if self.score is not None:
            edges, expected, counts = self.score
            total = counts.sum()
            actual = counts / total if total else counts.astype(float)
            value = psi(expected, actual) if total else None
            out["score"] = {"psi": value, "edges": edges.tolist(), "expected": expected.tolist(),
                            "actual": actual.tolist()}
            if value is not None and value > PSI_ALERT:
                drifted.append("score")
        out["drifted"] = drifted
        return out
