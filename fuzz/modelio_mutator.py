"""Structure-aware mutations of propensity model documents, for fuzzing the loader.

A model document ends in a sha256 of everything before it, so a plain byte mutator
stops at the checksum. Every mutation here rebuilds the document (header length,
padding) and recomputes the checksum, so it reaches the header parser, the array
checks of :func:`propensity.io.modelio.loads` and each estimator's ``_from_document``
validation, and then scoring.

``mutate(doc, fdp)`` takes a ``FuzzedDataProvider``-like object (atheris's, or
:class:`RandomProvider` for seeded runs in the test suite) and returns new bytes.
``check_one(data, X)`` is the property: loading either succeeds (and then scoring
either succeeds with probabilities in [0, 1] or raises ValueError) or raises
ValueError (ModelFormatError is one) - never another exception, a crash or a hang.
"""
import copy
import hashlib
import json
import random
import struct

import numpy as np

PREFIX = struct.Struct("<8sHHQ")

HOSTILE_JSON = [
    None, True, False, 0, -1, 1, 2, 255, 256, 2**31, 2**63, -2**63, 2**64 + 1, 10**30,
    0.5, -0.0, 1e308, -1e308, 1e-320, {"__float__": "nan"}, {"__float__": "inf"},
    {"__float__": "-inf"}, "", "x", "\u00e9\u0000", "<f8", "|u1", "|O", "<U4", [], [0], [-1],
    [2**40], [1, 2, 3, 4, 5], [[1]], {}, {"a": 1}, "random_forest", "LogisticRegression",
]


def split(doc):
    """(major, minor, header dict, blob bytes) of a valid document."""
    magic, major, minor, hlen = PREFIX.unpack_from(doc, 0)
    header = json.loads(doc[PREFIX.size:PREFIX.size + hlen])
    start = PREFIX.size + hlen
    start += (-start) % 8
    return major, minor, header, doc[start:-32]


def build(header, blob, major=1, minor=0, raw_header=None, magic=b"PROPMDL\0"):
    hbytes = raw_header if raw_header is not None else json.dumps(
        header, sort_keys=True, separators=(",", ":")).encode()
    head = PREFIX.pack(magic, major, minor, len(hbytes)) + hbytes
    head += b"\0" * ((-len(head)) % 8)
    body = head + blob
    return body + hashlib.sha256(body).digest()


def reseal(body):
    """Recompute the checksum of a document's body (everything but the last 32 bytes)."""
    return body + hashlib.sha256(body).digest()


def _paths(obj, prefix=()):
    """Every (path) to a value inside nested dicts / lists."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _set(obj, path, value):
    if not path:
        return value
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


def _hostile_value(fdp, old):
    choice = fdp.ConsumeIntInRange(0, 6)
    if choice == 0 and isinstance(old, (int, float)) and not isinstance(old, bool):
        return old + fdp.ConsumeIntInRange(-3, 3)
    if choice == 1 and isinstance(old, list) and old:
        return old[:fdp.ConsumeIntInRange(0, len(old) - 1)]
    if choice == 2 and isinstance(old, list):
        return old + old[:1] * fdp.ConsumeIntInRange(1, 3)
    if choice == 3 and isinstance(old, dict) and old:
        d = dict(old)
        d.pop(sorted(d)[fdp.ConsumeIntInRange(0, len(d) - 1)])
        return d
    if choice == 4 and isinstance(old, str):
        return old[:fdp.ConsumeIntInRange(0, len(old))] + fdp.ConsumeUnicodeNoSurrogates(4)
    # a copy: a later mutation may write into the value it placed, and a shared list or
    # dict of HOSTILE_JSON would then change for every later input (or contain itself)
    return copy.deepcopy(HOSTILE_JSON[fdp.ConsumeIntInRange(0, len(HOSTILE_JSON) - 1)])


_HOSTILE_F64 = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, 5e-324, 2.0**53, -2.0**63]
_HOSTILE_INT = [-1, 0, 1, 2, 127, 255, 2**15, 2**31 - 1, -2**31, 2**62]


def _mutate_array(fdp, header, blob):
    entries = [e for e in header.get("arrays", []) if isinstance(e, dict) and e.get("nbytes")]
    if not entries:
        return blob
    e = entries[fdp.ConsumeIntInRange(0, len(entries) - 1)]
    dt = np.dtype(e["dtype"])
    blob = bytearray(blob)
    n = e["nbytes"] // dt.itemsize
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        i = fdp.ConsumeIntInRange(0, n - 1)
        if dt.kind == "f":
            v = np.array([_HOSTILE_F64[fdp.ConsumeIntInRange(0, len(_HOSTILE_F64) - 1)]], dt)
        else:
            raw = _HOSTILE_INT[fdp.ConsumeIntInRange(0, len(_HOSTILE_INT) - 1)]
            v = np.array([raw], np.int64).astype(dt)  # wraps like C would
        at = e["offset"] + i * dt.itemsize
        blob[at:at + dt.itemsize] = v.tobytes()
    return bytes(blob)


def mutate(doc, fdp):
    """One mutation of the valid document ``doc`` (bytes), with a valid checksum."""
    major, minor, header, blob = split(doc)
    kind = fdp.ConsumeIntInRange(0, 9)
    if kind <= 3:  # a header value (params, meta, array entries, format fields)
        paths = _paths(header)
        for _ in range(1 + (kind == 3)):
            path = paths[fdp.ConsumeIntInRange(0, len(paths) - 1)]
            try:
                old = header
                for k in path:
                    old = old[k]
                header = _set(header, path, _hostile_value(fdp, old))
            except (KeyError, IndexError, TypeError):
                pass
        return build(header, blob, major, minor)
    if kind <= 5:  # array values: NaN / inf / out-of-range indices
        for _ in range(1 + (kind == 5)):
            blob = _mutate_array(fdp, header, blob)
        return build(header, blob, major, minor)
    if kind == 6:  # raw bytes anywhere in the header or blob
        body = bytearray(doc[:-32])
        for _ in range(fdp.ConsumeIntInRange(1, 8)):
            i = fdp.ConsumeIntInRange(0, len(body) - 1)
            body[i] = fdp.ConsumeIntInRange(0, 255)
        return reseal(bytes(body))
    if kind == 7:  # truncate or extend, checksum of what is left
        body = doc[:-32]
        cut = fdp.ConsumeIntInRange(0, len(body) + 64)
        body = body[:cut] if cut <= len(body) else body + bytes(cut - len(body))
        return reseal(body)
    if kind == 8:  # version and magic
        major = fdp.ConsumeIntInRange(0, 3)
        minor = fdp.ConsumeIntInRange(0, 65535)
        magic = b"PROPMDL\0" if fdp.ConsumeBool() else fdp.ConsumeBytes(8).ljust(8, b"\0")
        return build(header, blob, major, minor, magic=magic)
    # header bytes: not JSON, not UTF-8, a JSON non-object, a huge declared length
    sub = fdp.ConsumeIntInRange(0, 3)
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if sub == 0:
        raw = raw[:fdp.ConsumeIntInRange(0, len(raw))]
    elif sub == 1:
        raw = raw.replace(b'"', b"\xff", 1)
    elif sub == 2:
        raw = b"[1, 2]"
    else:
        doc2 = bytearray(build(header, blob, major, minor))
        struct.pack_into("<Q", doc2, 12, fdp.ConsumeIntInRange(0, 2**64 - 1))
        return reseal(bytes(doc2[:-32]))
    return build(header, blob, major, minor, raw_header=raw)


def check_one(data, X):
    """Load ``data`` and score ``X``; only ValueError may escape. Returns what happened."""
    from propensity.io import modelio as _modelio
    from propensity.learn.base import BaseEstimator

    try:
        _modelio.loads(data)
        est = BaseEstimator.from_bytes(data)
    except ValueError:
        return "refused"
    try:
        p = est.predict_proba(X)
    except ValueError:
        return "loaded, scoring refused"
    p = np.asarray(p)
    assert p.shape == (X.shape[0], 2), p.shape
    assert np.all((p >= 0) & (p <= 1)), "probabilities outside [0, 1]"
    return "loaded and scored"


class RandomProvider:
    """The few FuzzedDataProvider methods ``mutate`` uses, driven by random.Random."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def ConsumeIntInRange(self, lo, hi):
        return self.r.randint(lo, hi)

    def ConsumeBool(self):
        return self.r.random() < 0.5

    def ConsumeBytes(self, n):
        return bytes(self.r.randrange(256) for _ in range(n))

    def ConsumeUnicodeNoSurrogates(self, n):
        return "".join(chr(self.r.choice([0x41, 0xe9, 0x2603, 0x0, 0x22, 0x5c])) for _ in range(n))


def seed_documents():
    """Small real model documents of every estimator that exists in this checkout."""
    import propensity
    from propensity.datasets import make_sessions

    df = make_sessions(600, seed=3)
    y = df["ordered"].to_numpy()
    X = df.drop(columns=["UserID", "ordered"]).to_numpy(np.uint8)
    docs = {}
    for name, kw in (("LogisticRegression", {"C": 1.0}),
                     ("RandomForestClassifier", {"n_estimators": 3, "max_depth": 4, "random_state": 0}),
                     ("GradientBoostingClassifier", {"n_estimators": 3, "max_depth": 3, "random_state": 0})):
        cls = getattr(propensity, name, None)
        if cls is not None:
            docs[name] = cls(**kw).fit(X, y).to_bytes()
    return docs, X[:50]
