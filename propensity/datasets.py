"""Calibrated stand-in for the customer-propensity data set (website sessions).

The real training file (455,401 sessions, 23 binary behaviour columns, target `ordered`)
is not available; :func:`make_sessions` generates sessions that behave like it. Every
session walks a shopping funnel:

1. the device, drawn as a category (mobile, computer or tablet; about 0.3 % of sessions
   use two devices, none uses no device);
2. then each column in funnel order -- location, returning visitor, homepage, browsing
   (list size, sort, image picker, promo banner, size charts, wishlist), basket (add from
   list / detail, basket icon, mini-basket), account, sign-in, checkout, delivery and
   returns checks, and finally the order -- is drawn with a probability that is a
   logistic function of everything the session did before it;
3. `ordered` is possible only after `saw_checkout` (the real data's structural zero).

Each conditional is the maximum-entropy one that reproduces the column's rate and its
joint rate with every earlier column in the published statistics; the parameters were
fitted offline (scripts/calibrate_datasets.py) and ship as package data
(data/session_model.json), beside the targets themselves (data/calibration.json).

    python -m propensity.datasets --rows 455401 --seed 0 --out sessions.csv

Large files (the command line, :func:`write_sessions_csv`) are generated and written in
chunks of ``CHUNK_ROWS`` (1,000,000) rows, so memory stays bounded (about 0.4 GB) at any
row count; 100M rows (8.4 GB) take a few minutes. Chunk ``i`` holds rows
``i * CHUNK_ROWS ...`` and is ``make_sessions(n_i, seed, testing, chunk=i,
row_offset=i * CHUNK_ROWS)``:

- chunk 0 is drawn from the random stream of ``make_sessions(n, seed, testing)``
  (``SeedSequence([seed, testing])``), so a file of up to ``CHUNK_ROWS`` rows holds exactly
  ``make_sessions(n, seed, testing)`` and a larger file starts with
  ``make_sessions(CHUNK_ROWS, seed, testing)``;
- chunk ``i >= 1`` is drawn from its own stream, ``SeedSequence([seed, testing, i])``
  (``testing`` as 0/1);
- the UserID serials of chunk ``i`` are a permutation of its own rows
  ``row_offset ... row_offset + n_i - 1``, and the serial scramble is a bijection, so the
  UserIDs are unique over the whole file (and training and testing files never share one).

Every row of such a file has the same length (a 35-character UserID and 24 one-digit
values: 84 bytes), so a chunk is formatted as one byte matrix rather than through pandas.
The file is written to a temporary file beside the target and renamed at the end: a failure
leaves no partial file.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from importlib import resources

import numpy as np
import pandas as pd

from . import _layout
from ._cli import bounded_int
from ._typing import DataFrame, PathLike
from .io.fileio import AtomicOutput, atomic_open

logger = logging.getLogger(__name__)

# the column layout, re-exported here for users of the generator
FEATURES, TARGET, ID_COLUMN, COLUMNS = _layout.FEATURES, _layout.TARGET, _layout.ID_COLUMN, _layout.COLUMNS

N_ROWS = 455401            # sessions in the real training file
N_ROWS_TESTING = 151655    # sessions in the real testing file (the next day)

# UserID layout: groups of lowercase letters and digits, e.g. 9d24-25k4-47889d24-25k4-494b-398124
_ID_GROUPS = (4, 4, 8, 4, 4, 6)
_ID_ALPHABET = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_ID_SERIAL_GROUP = 2               # the 8-character group carries a scrambled serial
_ID_SERIAL_SPACE = 36 ** 8
_ID_SERIAL_MUL = 5_000_011     # coprime to 36: i -> (i*MUL + ADD) is a bijection mod 36**8
_ID_SERIAL_ADD = 1_234_567_890_123
_ID_TESTING_OFFSET = 1 << 40       # testing rows use another serial range than training
_MAX_ROWS = _ID_TESTING_OFFSET
_ID_WIDTH = sum(_ID_GROUPS) + len(_ID_GROUPS) - 1

CHUNK_ROWS = 1_000_000             # rows per chunk of write_sessions_csv and the CLI


def _load_json(name):
    with resources.files("propensity").joinpath("data", name).open("r") as f:
        return json.load(f)


def load_calibration() -> dict:
    """The published statistics of the real data set (package data calibration.json):
    n_rows, columns, ones (count of 1s per column), target_counts, bivariate (per feature:
    support_1, support_0, rate_when_1, rate_when_0), correlation (matrix in `columns`
    order) and model_evaluation (the previous pipeline's validation metrics)."""
    return _load_json("calibration.json")


@functools.lru_cache(maxsize=1)
def _model():
    """The fitted funnel chain as arrays: device categories, chain order, biases, a
    lower-triangular weight matrix and the gate column of each step (-1 for none)."""
    doc = _load_json("session_model.json")
    dev = doc["devices"]
    order = [d for d in ("device_mobile", "device_computer", "device_tablet")]
    order += [s["column"] for s in doc["chain"]]
    if sorted(order) != sorted(FEATURES + [TARGET]):
        raise ValueError("session_model.json does not cover the real columns")
    pos = {c: i for i, c in enumerate(order)}
    k = len(order)
    cat_bits = np.zeros((len(dev["categories"]), k), dtype=np.float32)
    for r, names in enumerate(dev["categories"]):
        cat_bits[r, [pos[n] for n in names]] = 1.0
    cat_p = np.asarray(dev["probabilities"], dtype=np.float64)
    first = 3
    bias = np.zeros(k, dtype=np.float32)
    weights = np.zeros((k, k), dtype=np.float32)       # weights[j, :j]
    gates = np.full(k, -1, dtype=np.int64)
    for j, step in enumerate(doc["chain"], start=first):
        bias[j] = step["bias"]
        weights[j, :j] = step["weights"]
        if step["gate"] is not None:
            gates[j] = pos[step["gate"]]
    out_index = np.array([pos[c] for c in FEATURES + [TARGET]])
    return cat_bits, cat_p / cat_p.sum(), first, bias, weights, gates, out_index


def _user_id_bytes(rng, n, testing, row_offset=0):
    """n distinct UserIDs as an (n, 35) ASCII array: random groups of [0-9a-z], one group a
    bijective scramble of a random permutation of the row numbers row_offset ...
    row_offset + n - 1 (unique by construction, not by chance)."""
    buf = np.empty((n, _ID_WIDTH), dtype=np.uint8)
    rand = _ID_ALPHABET[rng.integers(0, 36, size=(n, sum(_ID_GROUPS)), dtype=np.uint8)]
    serial = rng.permutation(n).astype(np.uint64)
    serial += np.uint64((_ID_TESTING_OFFSET if testing else 0) + row_offset)
    # serial < 2**41 < 36**8 < 2**41.4 and MUL < 2**22.3: the product fits in uint64
    space = np.uint64(_ID_SERIAL_SPACE)
    serial = (serial * np.uint64(_ID_SERIAL_MUL) % space + np.uint64(_ID_SERIAL_ADD)) % space
    # base-36 digits, most significant first, from two halves that fit in int64 quickly
    half = 36 ** 4
    digits = np.empty((n, 8), dtype=np.uint8)
    for h, part in enumerate(((serial // np.uint64(half)).astype(np.int64),
                              (serial % np.uint64(half)).astype(np.int64))):
        for d in range(3, -1, -1):
            digits[:, 4 * h + d] = _ID_ALPHABET[part % 36]
            part //= 36
    col = src = 0
    for g, size in enumerate(_ID_GROUPS):
        if g:
            buf[:, col] = ord("-")
            col += 1
        if g == _ID_SERIAL_GROUP:
            buf[:, col:col + size] = digits
        else:
            buf[:, col:col + size] = rand[:, src:src + size]
            src += size
        col += size
    return buf


def _strings(buf):
    """Rows of an (n, width) ASCII array as a pandas string array of the default string
    dtype (what read_csv gives): zero-copy through pyarrow when it backs that dtype,
    else through Python str objects."""
    n, width = buf.shape
    dtype = pd.Series([""]).dtype
    if getattr(dtype, "storage", None) == "pyarrow" and n * width < 2 ** 31:
        import pyarrow as pa
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(buf.reshape(-1))])
        return pd.array(arr, dtype=dtype)
    return buf.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def make_sessions(n_rows: int = N_ROWS, seed: int = 0, testing: bool = False, *, chunk: int = 0,
                  row_offset: int = 0) -> DataFrame:
    """Generate `n_rows` website sessions calibrated to the real training data.

    Parameters
    ----------
    n_rows : int, default 455401
        Number of sessions (rows), >= 1.
    seed : int, default 0
        Seed of the generator; the same (n_rows, seed, testing) gives the same frame.
    testing : bool, default False
        Mimic testing_sample.csv: sessions of the next day from the same behaviour model,
        drawn from another random stream (other sessions and UserIDs than the training
        frame of the same seed), with `ordered` present and 0 on every row.
    chunk : int, default 0, keyword-only
        Random stream: 0 is ``SeedSequence([seed, testing])``, ``i >= 1`` is
        ``SeedSequence([seed, testing, i])`` (chunk ``i`` of :func:`write_sessions_csv`).
    row_offset : int, default 0, keyword-only
        Number of the first row: the UserID serials are a permutation of ``row_offset ...
        row_offset + n_rows - 1``, so frames of disjoint row ranges share no UserID.

    Returns
    -------
    pandas.DataFrame
        Columns UserID (str, unique), the 23 features in the real order, ordered; the
        features and `ordered` are uint8 0/1.
    """
    data, ids = _session_arrays(n_rows, seed, testing, chunk, row_offset)
    frame = pd.DataFrame(data, columns=FEATURES + [TARGET], copy=False)
    frame.insert(0, ID_COLUMN, _strings(ids))
    return frame


def _session_arrays(n_rows, seed, testing, chunk=0, row_offset=0):
    """The sessions of :func:`make_sessions` as arrays: (uint8 (n, 24) column-major 0/1
    values in the output order, uint8 (n, 35) ASCII UserIDs)."""
    n = _check_count("n_rows", n_rows, 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    chunk = _check_count("chunk", chunk, 0)
    row_offset = _check_count("row_offset", row_offset, 0)
    if row_offset + n > _MAX_ROWS:
        raise ValueError(f"n_rows must be <= {_MAX_ROWS - row_offset}"
                         + (f" (row_offset {row_offset})" if row_offset else "")
                         + f", got {n}")
    cat_bits, cat_p, first, bias, weights, gates, out_index = _model()
    k = len(bias)
    entropy = [int(seed), 1 if testing else 0] + ([chunk] if chunk else [])
    rng = np.random.default_rng(np.random.SeedSequence(entropy))

    # Column-major so that X[:, :j] is one contiguous block for the matrix-vector product.
    X = np.empty((n, k), dtype=np.float32, order="F")
    device = np.searchsorted(np.cumsum(cat_p), rng.random(n), side="right")
    np.minimum(device, len(cat_p) - 1, out=device)
    for c in range(first):
        np.take(cat_bits[:, c], device, out=X[:, c])
    del device
    # u < sigmoid(eta)  <=>  logit(u) < eta
    u = rng.random((n, k - first), dtype=np.float32)
    np.clip(u, np.float32(1e-7), np.float32(1 - 1e-7), out=u)
    logit_u = np.log(u / (np.float32(1) - u))
    del u
    for j in range(first, k):
        eta = X[:, :j] @ weights[j, :j]
        eta += bias[j]
        x = X[:, j]
        np.less(logit_u[:, j - first], eta, out=x, casting="unsafe")
        if gates[j] >= 0:
            x *= X[:, gates[j]]
    del logit_u, eta
    # Column-major uint8 in the output order: pandas keeps it as its block without a copy.
    data = np.empty((n, k), dtype=np.uint8, order="F")
    for i, src in enumerate(out_index):
        data[:, i] = X[:, src]
    del X
    if testing:
        data[:, -1] = 0
    ids = _user_id_bytes(rng, n, testing, row_offset)
    logger.debug("generated %d sessions (seed %d, testing=%s, chunk %d)", n, seed, testing,
                 chunk)
    return data, ids


def _csv_block(data, ids):
    """CSV lines of a chunk as one (n, 84) byte matrix: UserID, then ',0' or ',1' per
    column, then a line end (every row has the same length)."""
    n, k = data.shape
    w = ids.shape[1]
    out = np.empty((n, w + 2 * k + 1), dtype=np.uint8)
    out[:, :w] = ids
    out[:, w:w + 2 * k:2] = ord(",")
    values = out[:, w + 1:w + 2 * k:2]
    values[...] = data
    values += ord("0")
    out[:, -1] = ord("\n")
    return out


def write_sessions_csv(path: PathLike, n_rows: int, seed: int = 0, testing: bool = False, *,
                       chunk_rows: int = CHUNK_ROWS, progress: bool = False) -> int:
    """Write ``n_rows`` sessions as CSV to ``path``, generated and written ``chunk_rows`` at a
    time (memory bounded by one chunk): chunk ``i`` is ``make_sessions(n_i, seed, testing,
    chunk=i, row_offset=i * chunk_rows)`` (see the module docstring), so a file of at most
    ``chunk_rows`` rows is ``make_sessions(n_rows, seed, testing)``, written as pandas
    ``to_csv(index=False)`` writes it. Written through a temporary file and a rename (a
    failure leaves no partial file); ``progress`` reports rows on stderr. Returns the
    number of rows. Raises OSError naming the path."""
    n = _check_count("n_rows", n_rows, 1)
    chunk_rows = _check_count("chunk_rows", chunk_rows, 1)
    if n > _MAX_ROWS:
        raise ValueError(f"n_rows must be <= {_MAX_ROWS}, got {n}")
    header = (",".join([ID_COLUMN, *FEATURES, TARGET]) + "\n").encode("ascii")
    t0 = time.perf_counter()
    # the writer thread writes chunk i while chunk i + 1 is generated
    with AtomicOutput(path, "wb", background=True, depth=1) as out:
        out.write(header)
        for i, start in enumerate(range(0, n, chunk_rows)):
            data, ids = _session_arrays(min(chunk_rows, n - start), seed, testing, chunk=i,
                                        row_offset=start)
            block = _csv_block(data, ids)
            del data, ids
            out.write(block)
            del block
            if progress:
                done = min(n, start + chunk_rows)
                secs = time.perf_counter() - t0
                print(f"\r{done:,}/{n:,} rows, {done / max(secs, 1e-9):,.0f} rows/s",
                      end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return n


def write_csv_atomic(frame: DataFrame, path: PathLike) -> None:
    """Write `frame` as CSV to `path` through a temporary file in the same folder and a
    rename, so a failure never leaves a partial file. Raises OSError naming the path."""
    with atomic_open(path, "w", newline="") as f:
        frame.to_csv(f, index=False)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m propensity.datasets",
        description="Generate stand-in website sessions calibrated to the real "
                    "customer-propensity data and write them as CSV.",
        epilog=f"The file is generated and written in chunks of {CHUNK_ROWS:,} rows "
               "(bounded memory; 100M rows, 8.4 GB, take minutes) through a temporary file "
               "renamed at the end. Chunk 0 is make_sessions(n, seed, testing), so a file of "
               f"up to {CHUNK_ROWS:,} rows holds exactly the rows of the library call; chunk "
               "i >= 1 is drawn from the derived seed SeedSequence([seed, testing, i]), with "
               "its own range of UserID serials (UserIDs unique over the whole file).")
    ap.add_argument("--rows", type=bounded_int(1, " row"), default=N_ROWS,
                    help=f"number of sessions (default {N_ROWS})")
    ap.add_argument("--seed", type=bounded_int(0), default=0, help="random seed (default 0)")
    ap.add_argument("--testing", action="store_true",
                    help="next-day sessions like testing_sample.csv (ordered all 0)")
    ap.add_argument("--out", required=True, help="output CSV file")
    args = ap.parse_args(argv)
    if args.rows > _MAX_ROWS:
        ap.error(f"argument --rows: must be at most {_MAX_ROWS}, got {args.rows}")
    try:
        n = write_sessions_csv(args.out, args.rows, seed=args.seed, testing=args.testing,
                               progress=args.rows > CHUNK_ROWS and sys.stderr.isatty())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} sessions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
