"""The versioned model document: how every propensity model is saved and loaded.

Layout (all integers little-endian)::

    magic        8 bytes   b"PROPMDL\\0"
    major, minor 2 x u16   format version
    header_len   u64       length of the JSON header
    header       JSON      {"format", "format_version", "estimator", "params",
                            "meta", "arrays": [{"name","dtype","shape","offset","nbytes"}]}
    padding      to a multiple of 8
    blob         the arrays' bytes, each at its offset (relative to the blob)
    sha256       32 bytes  checksum of everything before it

Loading never executes code: it checks the magic, the version (an unknown major
version is refused), every length and offset against the file size, the dtypes
against a whitelist and the checksum, before any array is built. Each estimator
then validates its own arrays (indices, sizes) in ``_from_document``.
"""
import hashlib
import json
import math
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"PROPMDL\0"
FORMAT_NAME = "propensity-model"
FORMAT_VERSION = (1, 0)
_PREFIX = struct.Struct("<8sHHQ")
_ALLOWED_DTYPES = {"<f8", "<f4", "<i8", "<i4", "|u1", "<u4", "<u8", "|i1", "<u2", "<i2"}
_MAX_HEADER = 64 << 20


from ..errors import ModelFormatError  # noqa: E402,F401


@dataclass
class Document:
    estimator: str
    params: dict
    meta: dict
    arrays: dict
    format_version: tuple


def jsonable(value):
    """Convert parameters and metadata to plain JSON types (tuples -> lists, NumPy scalars)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _unjson(value):
    if isinstance(value, dict):
        if set(value) == {"__float__"} and value["__float__"] in ("inf", "-inf", "nan"):
            return float(value["__float__"])
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def dumps(estimator, params, meta, arrays):
    """Serialise to bytes. ``arrays`` maps names to NumPy arrays of whitelisted dtypes.

    The document is joined once from its parts (the checksum computed over the parts
    first), so a deep forest's arrays are copied once, not held several times."""
    entries, parts, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        arr = arr.astype(dt, copy=False)
        if dt.str not in _ALLOWED_DTYPES:
            raise TypeError(f"array {name!r} has dtype {arr.dtype}, which a model document cannot hold")
        pad = (-offset) % 8
        offset += pad
        entries.append({"name": str(name), "dtype": dt.str, "shape": list(arr.shape),
                        "offset": offset, "nbytes": int(arr.nbytes)})
        parts += [b"\0" * pad, arr.reshape(-1).view(np.uint8).data]
        offset += arr.nbytes
    header = json.dumps({
        "format": FORMAT_NAME, "format_version": list(FORMAT_VERSION),
        "estimator": estimator, "params": jsonable(params), "meta": jsonable(meta),
        "arrays": entries,
    }, allow_nan=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION[0], FORMAT_VERSION[1], len(header)) + header
    head += b"\0" * ((-len(head)) % 8)
    parts.insert(0, head)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    parts.append(digest.digest())
    return b"".join(parts)


def _fail(msg):
    raise ModelFormatError(f"invalid model document: {msg}")


def loads(data):
    """Parse and validate a model document; returns a :class:`Document`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("a model document is bytes")
    data = bytes(data)
    if len(data) < _PREFIX.size + 32:
        _fail(f"file too short ({len(data)} bytes)")
    magic, major, minor, header_len = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        _fail("not a propensity model file (bad magic bytes)")
    if major != FORMAT_VERSION[0]:
        _fail(f"format version {major}.{minor} is not supported by this propensity "
              f"(reads {FORMAT_VERSION[0]}.x); upgrade propensity to load it")
    body, digest = data[:-32], data[-32:]
    if header_len > _MAX_HEADER or _PREFIX.size + header_len > len(body):
        _fail("header length exceeds the file (truncated?)")
    if hashlib.sha256(body).digest() != digest:
        _fail("checksum mismatch (the file is corrupted or truncated)")
    try:
        header = json.loads(body[_PREFIX.size:_PREFIX.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"header is not valid JSON ({exc})")
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        _fail("header does not describe a propensity model")
    for key, typ in (("estimator", str), ("params", dict), ("meta", dict), ("arrays", list)):
        if not isinstance(header.get(key), typ):
            _fail(f"header field {key!r} is missing or has the wrong type")
    blob_start = _PREFIX.size + header_len
    blob_start += (-blob_start) % 8
    blob = memoryview(body)[blob_start:]
    arrays = {}
    for entry in header["arrays"]:
        if not isinstance(entry, dict):
            _fail("array entry is not an object")
        name, dtype, shape = entry.get("name"), entry.get("dtype"), entry.get("shape")
        offset, nbytes = entry.get("offset"), entry.get("nbytes")
        if not isinstance(name, str) or name in arrays:
            _fail(f"bad or duplicate array name {name!r}")
        if not isinstance(dtype, str) or dtype not in _ALLOWED_DTYPES:
            _fail(f"array {name!r} has a disallowed dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 4
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape)):
            _fail(f"array {name!r} has an invalid shape {shape!r}")
        for val, what in ((offset, "offset"), (nbytes, "nbytes")):
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                _fail(f"array {name!r} has an invalid {what}")
        dt = np.dtype(dtype)
        if math.prod(shape) * dt.itemsize != nbytes:
            _fail(f"array {name!r}: shape {shape} does not match its {nbytes} bytes")
        if offset + nbytes > len(blob):
            _fail(f"array {name!r} extends past the end of the file")
        arr = np.frombuffer(blob[offset:offset + nbytes], dtype=dt).reshape(shape).copy()
        arrays[name] = arr.astype(dt.newbyteorder("="), copy=False)
    params, meta = _unjson(header["params"]), _unjson(header["meta"])
    if not isinstance(params, dict) or not isinstance(meta, dict):  # {"__float__": ...}
        _fail("header field 'params' or 'meta' is not an object")
    return Document(header["estimator"], params, meta, arrays, (major, minor))


