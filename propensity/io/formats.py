"""File formats by name: which format a path means, and the gzip writer of outputs.

Inputs are CSV text -- plain, or gzip data found by its first bytes whatever the name
(:func:`propensity.io.blocks.open_reader`) -- or Parquet, by the extension ``.parquet``
or ``.pq`` (:mod:`propensity.io.parquet`). Outputs are CSV, gzip-compressed CSV when the
name ends in ``.gz``, or Parquet by the same extensions.
"""
import contextlib
import os
import zlib

CSV, GZIP, PARQUET = "csv", "gzip", "parquet"
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_LEVEL = 6


def _name(path):
    if path is None or path == "-" or hasattr(path, "read") or hasattr(path, "write"):
        return ""
    return os.fspath(path).lower()


def input_format(path):
    """PARQUET for a name ending in .parquet / .pq, else CSV (plain or gzip: the reader
    tells them apart by their bytes)."""
    return PARQUET if _name(path).endswith(PARQUET_SUFFIXES) else CSV


def output_format(path):
    """PARQUET (.parquet / .pq), GZIP (.gz) or CSV for an output path ('-': CSV)."""
    name = _name(path)
    if name.endswith(PARQUET_SUFFIXES):
        return PARQUET
    return GZIP if name.endswith(".gz") else CSV


class GzipSink:
    """Writes gzip data of what it is given to ``out`` (anything with ``write``, e.g. an
    :class:`~propensity.io.fileio.AtomicOutput`), a block at a time; :meth:`finish`
    writes the end of the gzip stream."""

    def __init__(self, out, level=GZIP_LEVEL):
        self.out = out
        self.depth = getattr(out, "depth", 0)
        self._z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data):
        packed = self._z.compress(data)
        if packed:
            self.out.write(packed)

    def finish(self):
        self.out.write(self._z.flush())


@contextlib.contextmanager
def text_sink(out, path):
    """``out`` itself for a CSV output, a :class:`GzipSink` around it for a ``.gz``
    path; the gzip stream is ended when the block ends cleanly."""
    if output_format(path) != GZIP:
        yield out
        return
    sink = GzipSink(out)
    yield sink
    sink.finish()
