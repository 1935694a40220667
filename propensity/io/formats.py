"""File formats by name: which format a path means, and the gzip writer of outputs.

Inputs are CSV text -- plain, or gzip data found by its first bytes whatever the name
(:func:`propensity.io.blocks.open_reader`) -- or Parquet, by the extension ``.parquet``
or ``.pq`` (:mod:`propensity.io.parquet`). Outputs are CSV, gzip-compressed CSV when the
name ends in ``.gz``, or Parquet by the same extensions.
"""
import collections
import contextlib
import os
import zlib

CSV, GZIP, PARQUET = "csv", "gzip", "parquet"
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_LEVEL = 1   # fast: most of a predictions file's size goes at level 1 already


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
    :class:`~propensity.io.fileio.AtomicOutput`): each write is compressed as a gzip
    member of its own on a pool of threads (zlib releases the GIL) and the members are
    written in order, so a large output is compressed by all cores at once. A file of
    several members is one gzip file to every reader (gzip -d, Python's gzip, pandas).
    At most ``threads`` blocks are in flight; :meth:`finish` writes what is left and
    :meth:`close` stops the threads."""

    def __init__(self, out, level=GZIP_LEVEL, threads=None):
        from concurrent.futures import ThreadPoolExecutor
        self.out = out
        self.depth = getattr(out, "depth", 0)
        self.level = level
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="propensity-gzip")
        self._pending = collections.deque()

    def _pack(self, data):
        z = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return z.compress(data) + z.flush()

    def write(self, data):
        # a copy: the caller may reuse its buffer once write returns
        self._pending.append(self._pool.submit(self._pack, bytes(data)))
        while len(self._pending) > self.threads:
            self.out.write(self._pending.popleft().result())

    def finish(self):
        while self._pending:
            self.out.write(self._pending.popleft().result())

    def close(self):
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


@contextlib.contextmanager
def text_sink(out, path):
    """``out`` itself for a CSV output, a :class:`GzipSink` around it for a ``.gz``
    path; the gzip data is completed when the block ends cleanly."""
    if output_format(path) != GZIP:
        yield out
        return
    sink = GzipSink(out)
    try:
        yield sink
        sink.finish()
    finally:
        sink.close()
