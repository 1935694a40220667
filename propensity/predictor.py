"""Batch scoring with a trained model: :class:`CustomerPropensityPredictor`.

Loads the best model named by ``ml_outputs/manifest.json`` (checksum verified, the safe
model document, never a pickle unless ``allow_pickle=True``) and scores DataFrames or
CSV files of any size.

Files of session data (every model input a 0/1 column) take the fast path: the C core
parses blocks of a few MB cut at record ends (quoted ids with embedded newlines work),
each distinct row pattern is scored once and cached, and the C core formats the output
rows. Other models (generic CSVs with an encoding to replay) stream through pandas.
Either way memory stays bounded, output goes to a temporary file in the target folder
that is renamed on success, and no partial output is left behind after an error.
"""
import csv
import datetime
import json
import logging
import os
import pickle
import queue
import sys
import tempfile
import threading
import warnings

import numpy as np
import pandas as pd

from . import _core
from ._base import load_model as _load_document
from ._fileio import atomic_write_bytes, file_sha256

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "propensity-manifest"
MANIFEST_VERSION = 1
ID_COLUMN = "UserID"
OUTPUT_COLUMNS = ["UserID", "predicted_ordered", "purchase_probability", "prediction_timestamp"]
PROBA_DIGITS = 6
PSI_ALERT = 0.2


class PredictorError(Exception):
    """Base class of the errors the predictor raises on bad models or bad input."""


class ModelNotFoundError(PredictorError, FileNotFoundError):
    """The model folder, its manifest or a model file is missing."""


class ModelIntegrityError(PredictorError, ValueError):
    """A checksum mismatch, a malformed manifest or model, or a newer format version."""


class InputDataError(PredictorError, ValueError):
    """The input cannot be scored: no known feature column, a bad value, wrong delimiter
    or encoding, a truncated last line. The message names the column, row and value."""


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def segment_of(proba):
    """High (p > 0.5), Medium (0.1 <= p <= 0.5), Low (p < 0.1)."""
    proba = np.asarray(proba, dtype=np.float64)
    return np.where(proba > 0.5, "High", np.where(proba >= 0.1, "Medium", "Low")).astype(object)


class CustomerPropensityPredictor:
    """Score new sessions with a model trained by ``python -m propensity.train``.

    Parameters
    ----------
    model_dir : folder holding ``manifest.json`` and the model files (``ml_outputs``).
    allow_pickle : load the ``.pkl`` files instead of the safe model documents. Unpickling
        runs code from the file: only for files you trust.

    Safe to share between threads: loading is serialised by a lock and scoring keeps no
    state on the predictor.
    """

    def __init__(self, model_dir="ml_outputs", allow_pickle=False):
        self.model_dir = os.fspath(model_dir)
        self.allow_pickle = bool(allow_pickle)
        self.model = None
        self.model_name = None
        self.manifest = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading
    def _read_manifest(self):
        if not os.path.isdir(self.model_dir):
            raise ModelNotFoundError(
                f"model folder {self.model_dir!r} does not exist; train first with "
                f"`python -m propensity.train` or pass --model_dir")
        path = os.path.join(self.model_dir, MANIFEST_NAME)
        if not os.path.isfile(path):
            raise ModelNotFoundError(
                f"{path} not found: {self.model_dir!r} holds no trained models "
                f"(run `python -m propensity.train --output-dir {self.model_dir}`)")
        try:
            with open(path, "rb") as f:
                manifest = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelIntegrityError(f"{path} is not a valid manifest: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ModelIntegrityError(f"{path} is not a propensity manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise ModelIntegrityError(f"{path} has an invalid format_version {version!r}")
        if version > MANIFEST_VERSION:
            raise ModelIntegrityError(
                f"{path} has format version {version}, newer than this propensity reads "
                f"({MANIFEST_VERSION}); upgrade propensity to use these models")
        if not isinstance(manifest.get("models"), dict) or not isinstance(manifest.get("files"), dict):
            raise ModelIntegrityError(f"{path} lacks the 'models' or 'files' table")
        return manifest

    def _verified_file(self, manifest, filename, what):
        if not isinstance(filename, str) or os.path.basename(filename) != filename or filename in ("", ".", ".."):
            raise ModelIntegrityError(f"manifest names an invalid {what} {filename!r}")
        path = os.path.join(self.model_dir, filename)
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"{what} {path} listed in the manifest is missing")
        expected = manifest["files"].get(filename)
        if not isinstance(expected, str):
            raise ModelIntegrityError(f"manifest lists no sha256 checksum for {filename}")
        actual = file_sha256(path)
        if actual != expected.lower():
            raise ModelIntegrityError(
                f"checksum mismatch for {path}: the manifest records sha256 {expected[:16]}..., "
                f"the file has {actual[:16]}...; the file was modified or corrupted")
        return path

    def load_model(self, name):
        """Load the model ``name`` (e.g. 'random_forest') listed in the manifest."""
        with self._lock:
            manifest = self._read_manifest()
            entry = manifest["models"].get(name)
            if not isinstance(entry, dict):
                raise ModelNotFoundError(
                    f"model {name!r} is not in {self.model_dir}/{MANIFEST_NAME}; "
                    f"available: {sorted(manifest['models'])}")
            if self.allow_pickle:
                path = self._verified_file(manifest, entry.get("pickle_file"), "model pickle")
                with open(path, "rb") as f:
                    model = pickle.load(f)
            else:
                path = self._verified_file(manifest, entry.get("model_file"), "model file")
                try:
                    model = _load_document(path)
                except ValueError as exc:  # ModelFormatError: damaged or newer version
                    raise ModelIntegrityError(str(exc)) from None
            for attr in ("input_columns_", "predict_proba", "threshold_"):
                if not hasattr(model, attr):
                    raise ModelIntegrityError(f"{path} does not hold a fitted propensity model "
                                              f"(no {attr})")
            self.model, self.model_name, self.manifest = model, name, manifest
            logger.info("loaded model %s from %s", name, path)
            return model

    def load_best_model(self):
        """Load the model the manifest names best (highest validation F1)."""
        manifest = self._read_manifest()
        best = manifest.get("best_model")
        if not isinstance(best, str):
            raise ModelIntegrityError(f"{self.model_dir}/{MANIFEST_NAME} names no best_model")
        return self.load_model(best)

    def _require_model(self):
        model = self.model
        if model is None:
            raise RuntimeError("no model loaded: call load_best_model() or load_model(name) first")
        return model

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _threshold(model, threshold):
        thr = float(model.threshold_) if threshold is None else float(threshold)
        if not 0.0 <= thr <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        return thr

    @staticmethod
    def _columns(model, available, where):
        cols = [str(c) for c in model.input_columns_]
        seen, dups = set(), []
        for c in available:  # which copy holds the values would be a guess: refuse
            if c in seen and c not in dups and (c in cols or c == ID_COLUMN):
                dups.append(c)
            seen.add(c)
        if dups:
            raise InputDataError(
                f"{where} has duplicate column(s) {', '.join(repr(str(c)) for c in dups)}; "
                f"each feature column and {ID_COLUMN!r} must appear once")
        avail = set(available)
        present = [c for c in cols if c in avail]
        missing = [c for c in cols if c not in avail]
        if not present:
            shown = list(available)[:8]
            hint = ""
            if len(shown) == 1 and any(d in shown[0] for d in ";\t|"):
                hint = (" The header is a single column containing ';', tab or '|': "
                        "the file seems to use another delimiter than ','.")
            raise InputDataError(
                f"{where} has no known feature column; expected some of {cols[:5]}... "
                f"({len(cols)} features), found columns {shown}.{hint}")
        if missing:
            warnings.warn(
                f"{where} lacks {len(missing)} feature column(s), filled with 0: "
                f"{', '.join(missing)}", UserWarning, stacklevel=3)
        return cols, present, missing

    @staticmethod
    def _fast_eligible(model):
        cols = list(model.input_columns_)
        binary = set(getattr(model, "binary_columns_", []))
        return (not getattr(model, "encoding_", None) and 0 < len(cols) <= 64
                and all(c in binary for c in cols))

    # ------------------------------------------------------------------ DataFrames
    def predict(self, df, threshold=None, segments=False, *, coerce=False, fill_missing=None):
        """Score a DataFrame of sessions.

        Returns a DataFrame with ``UserID, predicted_ordered, purchase_probability,
        prediction_timestamp`` (+ ``segment``). Without a UserID column the index stands in.
        """
        model = self._require_model()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        thr = self._threshold(model, threshold)
        out, _ = self._score_frame(model, df, thr, segments, coerce, fill_missing,
                                   _frame_rows(df), "input DataFrame")
        return out

    def _score_frame(self, model, df, thr, segments, coerce, fill_missing, rowdesc, where,
                     columns=None, timestamp=None):
        n = len(df)
        if columns is None:
            columns = self._columns(model, [str(c) for c in df.columns], where)
        cols, present, _missing = columns
        binary = set(getattr(model, "binary_columns_", []))
        encoding = getattr(model, "encoding_", None) or {}
        binary -= set(encoding.get("boolean", ()))   # TRUE/FALSE text: the model replays it
        stats = {"n_coerced": 0, "n_filled": 0}
        if n == 0:
            proba = np.zeros(0)
            X = np.zeros((0, len(cols)), np.uint8)
        elif self._fast_eligible(model):
            X = np.zeros((n, len(cols)), dtype=np.uint8)
            for j, c in enumerate(cols):
                if c in present:
                    X[:, j] = _binary_values(df[c], c, coerce, fill_missing, rowdesc, stats)
            proba = _KeyScorer(model, len(cols)).score(_pack(X))
        else:
            frame = pd.DataFrame(index=df.index)
            for c in cols:
                if c not in present:
                    frame[c] = 0
                elif c in binary:
                    frame[c] = _binary_values(df[c], c, coerce, fill_missing, rowdesc, stats)
                else:
                    frame[c] = df[c]
            X = frame
            proba = np.asarray(model.predict_proba(frame), dtype=np.float64)[:, 1]
        pred = (proba >= thr).astype(np.int64)
        ids = df[ID_COLUMN].to_numpy() if ID_COLUMN in df.columns else df.index.to_numpy()
        out = pd.DataFrame({
            "UserID": ids,
            "predicted_ordered": pred,
            "purchase_probability": proba,
            "prediction_timestamp": timestamp or _now_iso(),
        })
        if segments:
            out["segment"] = segment_of(proba)
        return out, {"X": X, "proba": proba, **stats}

    # ------------------------------------------------------------------ files
    def predict_from_file(self, input_path, output_path, chunksize=100_000, threshold=None,
                          segments=False, coerce=False, fill_missing=None, drift_report=None,
                          progress=None, sep=","):
        """Score a CSV file (``'-'`` for stdin) into a predictions CSV (``'-'`` for stdout).

        Memory is bounded by ``chunksize`` (rows per block). The output is written to a
        temporary file beside ``output_path`` and renamed on success; on any error no
        output file is left. ``coerce`` clips values other than 0/1 (a warning counts
        them); ``fill_missing=0`` fills empty cells; ``drift_report`` names a JSON file for
        the population stability index of every feature and of the scores. ``progress``
        is called with the number of rows of each block. Returns a summary dict.
        """
        model = self._require_model()
        thr = self._threshold(model, threshold)
        chunksize = int(chunksize)
        if chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, got {chunksize}")
        if fill_missing is not None and fill_missing not in (0, 1):
            raise ValueError(f"fill_missing must be None, 0 or 1, got {fill_missing!r}")
        if not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n':
            raise ValueError(f"sep must be one character other than a quote or line end, got {sep!r}")
        drift = _DriftAccumulator(model) if drift_report is not None else None
        header = list(OUTPUT_COLUMNS) + (["segment"] if segments else [])
        timestamp = _now_iso()

        if input_path == "-":
            src, close_src = sys.stdin.buffer, False
        else:
            try:
                src, close_src = open(input_path, "rb"), True
            except FileNotFoundError:
                raise InputDataError(f"input file {input_path!r} not found") from None
            except IsADirectoryError:
                raise InputDataError(f"input path {input_path!r} is a folder, not a file") from None
        where = "standard input" if input_path == "-" else repr(os.fspath(input_path))
        summary = {"rows": 0, "n_coerced": 0, "n_filled": 0, "model": self.model_name,
                   "threshold": thr, "path": "c" if self._fast_eligible(model) else "pandas"}
        try:
            with _Output(output_path) as out:
                out.write((",".join(header) + "\n").encode())
                if summary["path"] == "c":
                    self._stream_c(model, src, out, thr, segments, coerce, fill_missing,
                                   chunksize, sep, timestamp, drift, progress, summary, where)
                else:
                    self._stream_pandas(model, src, out, thr, segments, coerce, fill_missing,
                                        chunksize, sep, timestamp, drift, progress, summary, where)
                if drift is not None:
                    report = drift.report()
                    atomic_write_bytes(drift_report, json.dumps(report, indent=2).encode() + b"\n")
                    summary["drift"] = report
                    if report["drifted"]:
                        logger.warning("data drift: PSI > %.1f for %s (report: %s)", PSI_ALERT,
                                       ", ".join(report["drifted"]), drift_report)
        finally:
            if close_src:
                src.close()
        if summary["n_coerced"]:
            warnings.warn(f"coerce: {summary['n_coerced']} value(s) other than 0/1 were clipped "
                          f"to 0/1", UserWarning, stacklevel=2)
        if summary["n_filled"]:
            logger.info("filled %d empty cell(s) with %s", summary["n_filled"], fill_missing)
        return summary

    def _stream_c(self, model, src, out, thr, segments, coerce, fill_missing, chunksize, sep,
                  timestamp, drift, progress, summary, where):
        reader = _BlockReader(src, min(max(chunksize * 64, 1 << 16), 256 << 20))
        head = reader.header_line()
        if head is None:
            warnings.warn(f"{where} is empty: the output holds only the header", UserWarning,
                          stacklevel=3)
            return
        names = _parse_header(head, sep, where)
        cols, present, _ = self._columns(model, names, where)
        first = {}
        for k, name in enumerate(names):
            first.setdefault(name, k)
        feature_field = np.array([first.get(c, -1) for c in cols], dtype=np.int64)
        id_field = first.get(ID_COLUMN, -1)
        names_blob = "\0".join(names).encode("utf-8")
        fill = -1 if fill_missing is None else int(fill_missing)
        scorer = _KeyScorer(model, len(cols))
        ts = timestamp.encode()
        line, row = 2, 1
        while True:
            data, eof = reader.next_block()
            try:
                r = _core.csv_parse(data, sep, len(names), id_field, feature_field, names_blob,
                                    fill, coerce, eof, line, row, True)
                n = r["n_rows"]
                if n:
                    proba = scorer.score(r["keys"][:n])
                    pred = (proba >= thr).astype(np.uint8)
                    if id_field >= 0:
                        text = _core.csv_format(pred, proba, PROBA_DIGITS, ts, segments, data,
                                                r["id_span"][:n])
                    else:
                        text = _core.csv_format(pred, proba, PROBA_DIGITS, ts, segments,
                                                first_row_number=row - 1)
            except ValueError as exc:
                raise InputDataError(f"{where}: {exc}") from None
            finally:
                data.release()
            if n:
                out.write(text)
                if drift is not None:
                    drift.add_binary(r["X"][:n], proba)
                summary["rows"] += n
                summary["n_coerced"] += r["n_coerced"]
                summary["n_filled"] += r["n_filled"]
                if progress is not None:
                    progress(n)
            line += r["n_lines"]
            row += n
            reader.consume(r["consumed"])
            if eof:
                break
        summary["distinct_rows_scored"] = scorer.n_scored

    def _stream_pandas(self, model, src, out, thr, segments, coerce, fill_missing, chunksize,
                       sep, timestamp, drift, progress, summary, where):
        try:
            reader = pd.read_csv(src, sep=sep, chunksize=chunksize, dtype={ID_COLUMN: str},
                                 keep_default_na=False, na_values=[""], encoding="utf-8")
        except pd.errors.EmptyDataError:
            warnings.warn(f"{where} is empty: the output holds only the header", UserWarning,
                          stacklevel=3)
            return
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputDataError(f"{where}: cannot read the CSV ({exc})") from None
        columns = None
        offset = 0
        try:
            for chunk in reader:
                if columns is None:
                    columns = self._columns(model, [str(c) for c in chunk.columns], where)
                res, stats = self._score_frame(
                    model, chunk, thr, segments, coerce, fill_missing,
                    _file_rows(offset), where, columns=columns, timestamp=timestamp)
                if ID_COLUMN not in chunk.columns:
                    res["UserID"] = np.arange(offset, offset + len(chunk))
                out.write(res.to_csv(header=False, index=False,
                                     float_format=f"%.{PROBA_DIGITS}f").encode("utf-8"))
                if drift is not None:
                    drift.add_frame(stats["X"], stats["proba"])
                summary["rows"] += len(chunk)
                summary["n_coerced"] += stats["n_coerced"]
                summary["n_filled"] += stats["n_filled"]
                offset += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputDataError(f"{where}: cannot read the CSV ({exc})") from None


# ---------------------------------------------------------------------- internals
def _frame_rows(df):
    def describe(pos):
        return f"row {pos} (0-based position; index label {df.index[pos]!r})"
    return describe


def _file_rows(offset):
    def describe(pos):
        return f"data row {offset + pos + 1} (1-based, header excluded)"
    return describe


def _binary_values(series, name, coerce, fill_missing, rowdesc, stats):
    """A 0/1 column as uint8; errors name the column, the row and the value."""
    arr = series.to_numpy()
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype.kind in "iu":
        ok = (arr == 0) | (arr == 1)
        if ok.all():
            return arr.astype(np.uint8)
        values = arr.astype(np.float64)
        missing = np.zeros(len(arr), dtype=bool)
    else:
        if arr.dtype.kind == "f":
            values = arr.astype(np.float64)
        else:
            text = series.astype("string")
            stripped = text.str.strip()
            values = pd.to_numeric(stripped.replace("", pd.NA), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)
            bad_text = np.isnan(values) & stripped.notna().to_numpy() & (
                stripped.fillna("").to_numpy(dtype=object) != "")
            bad_text &= ~stripped.fillna("").str.lower().isin(["nan"]).to_numpy()
            if bad_text.any():
                i = int(np.flatnonzero(bad_text)[0])
                raise InputDataError(
                    f"column {name!r}, {rowdesc(i)}: value {str(arr[i])[:40]!r} is not a number "
                    f"(this column must hold 0 or 1)")
        missing = np.isnan(values)
    if missing.any():
        if fill_missing is None:
            i = int(np.flatnonzero(missing)[0])
            raise InputDataError(
                f"column {name!r}, {rowdesc(i)}: empty cell (fill_missing=0 / --fill-missing 0 "
                f"fills empty cells with 0)")
        values = np.where(missing, float(fill_missing), values)
        stats["n_filled"] += int(missing.sum())
    bad = (values != 0) & (values != 1)
    if bad.any():
        if not coerce:
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                f"column {name!r}, {rowdesc(i)}: value {_show(arr[i])} is not 0 or 1 "
                f"(coerce=True / --coerce clips values to 0/1)")
        stats["n_coerced"] += int(bad.sum())
        values = np.where(bad, (values >= 0.5).astype(np.float64), values)
    return values.astype(np.uint8)


def _show(value):
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value[:40]) if isinstance(value, str) else str(value)


def _pack(X):
    """Rows of 0/1 (at most 64 columns) -> uint64 keys, bit j = column j."""
    keys = np.zeros(X.shape[0], dtype=np.uint64)
    for j in range(X.shape[1]):
        keys |= X[:, j].astype(np.uint64) << np.uint64(j)
    return keys


class _KeyScorer:
    """Scores each distinct row pattern once and remembers it across blocks: a sorted
    array of the keys seen with their probabilities (memory grows with the number of
    distinct patterns, not with the rows)."""

    def __init__(self, model, n_features):
        self.model = model
        self.shifts = np.arange(n_features, dtype=np.uint64)
        self.keys = np.zeros(0, dtype=np.uint64)
        self.proba = np.zeros(0)
        self.n_scored = 0

    def _model_proba(self, keys):
        X = ((keys[:, None] >> self.shifts[None, :]) & np.uint64(1)).astype(np.uint8)
        proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        self.n_scored += len(keys)
        return np.ascontiguousarray(proba[:, 1])

    def _lookup(self, keys):
        if len(self.keys) == 0:
            return np.zeros(len(keys), dtype=np.intp), np.zeros(len(keys), dtype=bool)
        idx = np.searchsorted(self.keys, keys)
        np.minimum(idx, len(self.keys) - 1, out=idx)
        return idx, self.keys[idx] == keys

    def score(self, keys):
        idx, hit = self._lookup(keys)
        if not hit.all():
            new = np.unique(keys[~hit])
            merged = np.concatenate([self.keys, new])
            order = np.argsort(merged, kind="stable")
            self.proba = np.concatenate([self.proba, self._model_proba(new)])[order]
            self.keys = merged[order]
            idx, hit = self._lookup(keys)
        return self.proba[idx]


class _BlockReader:
    """Reads a binary stream into one reusable buffer: blocks of about ``size`` bytes
    whose unconsumed tail (a partial record) is moved to the front for the next read."""

    def __init__(self, src, size):
        self.src = src
        self.buf = bytearray(size)
        self.filled = 0
        self.eof = False

    def _fill(self):
        if self.eof:
            return
        if self.filled == len(self.buf):           # a record longer than the buffer
            self.buf.extend(bytes(len(self.buf)))
        with memoryview(self.buf) as mv:
            n = self.src.readinto(mv[self.filled:]) if hasattr(self.src, "readinto") else None
            if n is None:                          # streams without readinto
                more = self.src.read(len(self.buf) - self.filled)
                n = len(more)
                mv[self.filled:self.filled + n] = more
        if n == 0:
            self.eof = True
        self.filled += n

    def header_line(self):
        """The first line (without its line end), or None for an empty input."""
        self._fill()
        while True:
            nl = self.buf.find(b"\n", 0, self.filled)
            if nl >= 0 or self.eof:
                break
            self._fill()
        if not bytes(self.buf[:self.filled]).strip():
            return None
        end = nl if nl >= 0 else self.filled
        head = bytes(self.buf[:end])
        self.consume(end + 1 if nl >= 0 else self.filled)
        return head

    def next_block(self):
        """A memoryview of the buffered bytes (release it) and whether the input ended."""
        self._fill()
        return memoryview(self.buf)[:self.filled], self.eof

    def consume(self, n):
        rest = self.filled - n
        if rest:
            self.buf[:rest] = self.buf[n:self.filled]
        self.filled = rest


def _parse_header(head, sep, where):
    if head.endswith(b"\r"):
        head = head[:-1]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if b"\0" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputDataError(f"{where} is not UTF-8 text (it looks like UTF-16); save it as "
                             f"UTF-8 CSV")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{where}: the header is not UTF-8 text ({exc}); wrong encoding?") from None
    if text.count('"') % 2:
        raise InputDataError(f"{where}: the header line has an unclosed quote")
    return [c for c in next(csv.reader([text], delimiter=sep))]


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
        for j, c in enumerate(self.columns):
            prof = profile["features"].get(c)
            if prof:
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

    def add_binary(self, X, proba):
        n = X.shape[0]
        ones = X.sum(axis=0, dtype=np.int64)
        for j, edges, _, counts in self.features.values():
            b0, b1 = _bin_index(np.array([0.0, 1.0]), edges)
            counts[b0] += n - ones[j]
            counts[b1] += ones[j]
        self._add_scores(proba)
        self.n += n

    def add_frame(self, frame, proba):
        for c, (j, edges, _, counts) in self.features.items():
            col = frame[c] if hasattr(frame, "columns") else frame[:, j]
            vals = pd.to_numeric(pd.Series(np.asarray(col)), errors="coerce").to_numpy(np.float64)
            vals = vals[~np.isnan(vals)]
            counts += np.bincount(_bin_index(vals, edges), minlength=len(counts))
        self._add_scores(proba)
        self.n += len(proba)

    def report(self):
        feats = {}
        for c, (_, edges, expected, counts) in self.features.items():
            total = counts.sum()
            actual = counts / total if total else counts.astype(float)
            feats[c] = {"psi": psi(expected, actual) if total else None,
                        "expected": expected.tolist(), "actual": actual.tolist()}
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


class _Output:
    """A binary output stream: stdout for '-', else a temporary file in the target folder
    renamed to the target on success and removed on any error.

    Writes happen on a background thread (file writes release the GIL), so writing one
    block overlaps with parsing and scoring the next; at most ``depth`` blocks wait."""

    def __init__(self, path, depth=2):
        self.path = path
        self.tmp = None
        self.f = None
        self.queue = queue.Queue(maxsize=depth)
        self.error = None
        self.thread = None

    def __enter__(self):
        if self.path == "-":
            self.f = sys.stdout.buffer
        else:
            target = os.path.abspath(os.fspath(self.path))
            folder = os.path.dirname(target)
            if not os.path.isdir(folder):
                raise InputDataError(f"output folder {folder!r} does not exist")
            fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.",
                                            suffix=".part", dir=folder)
            self.f = os.fdopen(fd, "wb", buffering=1 << 20)
            self.target = target
        self.thread = threading.Thread(target=self._drain, name="propensity-writer", daemon=True)
        self.thread.start()
        return self

    def _drain(self):
        while True:
            data = self.queue.get()
            if data is None:
                return
            if self.error is None:
                try:
                    self.f.write(data)
                except BaseException as exc:  # reported by write() or __exit__
                    self.error = exc

    def write(self, data):
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def __exit__(self, exc_type, exc, tb):
        self.queue.put(None)
        self.thread.join()
        try:
            if self.path == "-":
                if self.error is None:
                    self.f.flush()
            else:
                self.f.close()
            if self.error is not None and exc_type is None:
                raise self.error
            if exc_type is None and self.path != "-":
                os.chmod(self.tmp, 0o666 & ~_UMASK)
                os.replace(self.tmp, self.target)
                self.tmp = None
        finally:
            if self.tmp is not None:
                try:
                    os.unlink(self.tmp)
                except OSError:
                    pass
        return False


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask is process-wide, not thread-safe to probe later
