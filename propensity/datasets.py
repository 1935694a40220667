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
"""
import argparse
import functools
import json
import logging
import sys
from importlib import resources

import numpy as np
import pandas as pd

from . import _layout
from ._cli import bounded_int
from .io.fileio import atomic_open

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


def _load_json(name):
    with resources.files("propensity").joinpath("data", name).open("r") as f:
        return json.load(f)


def load_calibration():
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


def _user_ids(rng, n, testing):
    """n distinct UserIDs: random groups of [0-9a-z], one group a bijective scramble of a
    random permutation of the row numbers (unique by construction, not by chance)."""
    width = sum(_ID_GROUPS) + len(_ID_GROUPS) - 1
    buf = np.empty((n, width), dtype=np.uint8)
    rand = _ID_ALPHABET[rng.integers(0, 36, size=(n, sum(_ID_GROUPS)), dtype=np.uint8)]
    serial = rng.permutation(n).astype(np.uint64)
    serial += np.uint64(_ID_TESTING_OFFSET if testing else 0)
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
    return _strings(buf)


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


def make_sessions(n_rows=N_ROWS, seed=0, testing=False):
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

    Returns
    -------
    pandas.DataFrame
        Columns UserID (str, unique), the 23 features in the real order, ordered; the
        features and `ordered` are uint8 0/1.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)):
        raise TypeError(f"n_rows must be an integer, got {type(n_rows).__name__}")
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    if n_rows > _MAX_ROWS:
        raise ValueError(f"n_rows must be <= {_MAX_ROWS}, got {n_rows}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n = int(n_rows)
    cat_bits, cat_p, first, bias, weights, gates, out_index = _model()
    k = len(bias)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1 if testing else 0]))

    # Column-major so that X[:, :j] is one contiguous block for the matrix-vector product.
    X = np.empty((n, k), dtype=np.float32, order="F")
    device = np.searchsorted(np.cumsum(cat_p), rng.random(n), side="right")
    np.minimum(device, len(cat_p) - 1, out=device)
    for c in range(first):
        np.take(cat_bits[:, c], device, out=X[:, c])
    # u < sigmoid(eta)  <=>  logit(u) < eta
    u = rng.random((n, k - first), dtype=np.float32)
    np.clip(u, np.float32(1e-7), np.float32(1 - 1e-7), out=u)
    logit_u = np.log(u / (np.float32(1) - u))
    for j in range(first, k):
        eta = X[:, :j] @ weights[j, :j]
        eta += bias[j]
        x = X[:, j]
        np.less(logit_u[:, j - first], eta, out=x, casting="unsafe")
        if gates[j] >= 0:
            x *= X[:, gates[j]]
    # Column-major uint8 in the output order: pandas keeps it as its block without a copy.
    data = np.empty((n, k), dtype=np.uint8, order="F")
    for i, src in enumerate(out_index):
        data[:, i] = X[:, src]
    if testing:
        data[:, -1] = 0
    frame = pd.DataFrame(data, columns=FEATURES + [TARGET], copy=False)
    frame.insert(0, ID_COLUMN, _user_ids(rng, n, testing))
    logger.debug("generated %d sessions (seed %d, testing=%s)", n, seed, testing)
    return frame


def write_csv_atomic(frame, path):
    """Write `frame` as CSV to `path` through a temporary file in the same folder and a
    rename, so a failure never leaves a partial file. Raises OSError naming the path."""
    with atomic_open(path, "w", newline="") as f:
        frame.to_csv(f, index=False)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m propensity.datasets",
        description="Generate stand-in website sessions calibrated to the real "
                    "customer-propensity data and write them as CSV.")
    ap.add_argument("--rows", type=bounded_int(1, " row"), default=N_ROWS,
                    help=f"number of sessions (default {N_ROWS})")
    ap.add_argument("--seed", type=bounded_int(0), default=0, help="random seed (default 0)")
    ap.add_argument("--testing", action="store_true",
                    help="next-day sessions like testing_sample.csv (ordered all 0)")
    ap.add_argument("--out", required=True, help="output CSV file")
    args = ap.parse_args(argv)
    frame = make_sessions(args.rows, seed=args.seed, testing=args.testing)
    try:
        write_csv_atomic(frame, args.out)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(frame)} sessions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
