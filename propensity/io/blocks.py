"""The one way a CSV file is read: blocks of bytes for the C reader.

:class:`BlockReader` fills one reusable buffer from a binary stream; the C reader
(``_core.csv_parse``) parses the whole records of a block and says how many bytes it
consumed, and the unconsumed tail (a partial record) moves to the front for the next
read. :class:`PrefetchReader` gives the same blocks from a regular file, the next one read
on a thread while the current one is parsed (the predictor's input). The predictor and the
training run both read this way, so a file gets the same verdict (the same rows, the same
error naming the same line) from either.

:func:`open_reader` puts the input's bytes into that shape: gzip data (found by its first
bytes) is decompressed and text of another encoding converted to UTF-8 as they are read;
every consumed block is checked to be UTF-8 (the C core's ``utf8_invalid``), and a header
or record longer than the limits below is an error naming the line, not a buffer that
grows without end.
"""
import codecs
import csv
import gzip
import io
import os
import queue
import stat
import threading
import zlib

from .._core_loader import _core
from ..errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_HEADER_BYTES = 4 << 20   # a first line longer than this is not a CSV header
MAX_RECORD_BYTES = 64 << 20  # nor a data line (record) longer than this a CSV row


class _Lines:
    """What both readers know of the text they give: the line the buffered bytes start
    at, the checks that name it (a line too long, bytes that are not UTF-8) and
    ``where`` (the input's name in messages)."""

    def __init__(self, where):
        self.where = where or "input"
        self.line = 1              # the line the unconsumed bytes start at

    def check_length(self, pending):
        """DataError when ``pending`` bytes without a complete record (or header line)
        exceed the limit: a file without line ends (``/dev/zero``) or not a CSV."""
        if self.line == 1 and pending > MAX_HEADER_BYTES:
            raise DataError(f"{self.where}: the header line is longer than {MAX_HEADER_BYTES} "
                            f"bytes (no line end found); is this a CSV file?")
        if pending > MAX_RECORD_BYTES:
            raise DataError(f"{self.where}: line {self.line} is longer than {MAX_RECORD_BYTES} "
                            f"bytes (no line end found); is this a CSV file?")

    def check_text(self, view, lines):
        """DataError naming the line and byte when ``view`` (whole records, ``lines``
        line ends, starting at :attr:`line`) is not UTF-8; then advances the line."""
        bad = _core.utf8_invalid(view)
        if bad >= 0:
            raise DataError(not_utf8(self.where, bytes(view[:bad + 1]), self.line))
        self.line += lines


def not_utf8(where, text, line):
    """The message for bytes ``text`` (starting at ``line``) whose last byte is the first
    that is not UTF-8."""
    before = text[:-1]
    line += before.count(b"\n")
    col = len(before) - (before.rfind(b"\n") + 1) + 1
    return (f"{where}: line {line} is not UTF-8 text (byte 0x{text[-1]:02X} at byte {col} "
            f"of the line); pass --encoding with the file's encoding (e.g. --encoding "
            f"latin-1) or save it as UTF-8")


class BlockReader(_Lines):
    """Reads a binary stream into one reusable buffer: blocks of about ``size`` bytes
    whose unconsumed tail (a partial record) is moved to the front for the next read.
    ``bytes_read`` counts the bytes taken from the stream so far; ``limit`` (optional)
    is the most it reads (a file's size when it was opened: a file that keeps growing
    is then read to that size, not forever)."""

    def __init__(self, src, size, limit=None, where=None):
        self.src = src
        self.buf = bytearray(size)
        self.size = size
        self.filled = 0
        self.eof = False
        self.bytes_read = 0
        self.limit = limit
        self._stalled = False      # the last parse consumed nothing of a full buffer
        _Lines.__init__(self, where)

    def close(self):
        pass

    def _fill(self):
        if self.eof:
            return
        if self.filled == len(self.buf):
            if not self._stalled:                  # full, and not parsed yet: read later
                return
            self.check_length(self.filled)         # a record longer than the buffer
            self.buf.extend(bytes(len(self.buf)))
        self._stalled = False
        room = len(self.buf) - self.filled
        if self.limit is not None:
            room = min(room, self.limit - self.bytes_read)
        with memoryview(self.buf) as mv:
            window = mv[self.filled:self.filled + room]
            n = self.src.readinto(window) if room and hasattr(self.src, "readinto") else None
            if n is None and room:                 # streams without readinto
                more = self.src.read(room)
                n = len(more)
                window[:n] = more
            window.release()
        n = n or 0
        if n == 0:
            self.eof = True
        self.filled += n
        self.bytes_read += n

    def header_line(self):
        """The first line (without its line end), or None for an empty input."""
        self._fill()
        while True:
            nl = self.buf.find(b"\n", 0, self.filled)
            if nl >= 0 or self.eof:
                break
            self.check_length(self.filled)
            self._stalled = True                   # a header longer than the buffer
            self._fill()
        end = nl if nl >= 0 else self.filled
        if not self.buf[:end].strip() and not self.buf[:self.filled].strip():
            return None                            # the header first: no copy of the block
        head = bytes(self.buf[:end])
        self._drop(end + 1 if nl >= 0 else self.filled)
        self.line = 2                              # parse_header judges the header's text
        return head

    def fill_to(self, size):
        """Buffer at least ``size`` bytes (fewer at the end of the input); returns the
        buffered bytes as a memoryview (release it) and whether the input ended."""
        if len(self.buf) < size:
            self.buf.extend(bytes(size - len(self.buf)))
        while self.filled < size and not self.eof:
            self._stalled = True
            self._fill()
        return memoryview(self.buf)[:self.filled], self.eof

    def next_block(self):
        """A memoryview of the buffered bytes (release it) and whether the input ended."""
        self._fill()
        return memoryview(self.buf)[:self.filled], self.eof

    def consume(self, n, lines=0):
        """Drop the first ``n`` buffered bytes (``lines`` line ends), once checked to be
        UTF-8 text (see :meth:`_Lines.check_text`)."""
        if n:
            with memoryview(self.buf) as mv, mv[:n] as done:
                self.check_text(done, lines)
        self._drop(n)

    def _drop(self, n):
        self._stalled = n == 0
        rest = self.filled - n
        if rest:
            self.buf[:rest] = self.buf[n:self.filled]
        self.filled = rest


def check_encoding(encoding):
    """The codec name of ``encoding`` ('utf-8' for any spelling of it); ValueError for
    an unknown one."""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252, "
                         f"utf-16)") from None


def open_reader(src, size, *, where=None, encoding="utf-8", limit=None, prefetch=True):
    """A block reader of the input ``src`` (a binary stream) as UTF-8 text.

    gzip data (found by its first bytes, whatever the name) is decompressed as it is
    read; with an ``encoding`` other than UTF-8 the text is converted to UTF-8 as it is
    read. Otherwise every block is checked to be UTF-8 (a message names the line and
    byte that is not). A regular file is read ahead on a thread (:class:`PrefetchReader`,
    unless ``prefetch`` is False), other streams as they come (:class:`BlockReader`,
    reading at most ``limit`` bytes of a plain regular file). The reader's
    ``transformed`` is True when the bytes given are not the file's own."""
    where = where or "input"
    codec = check_encoding(encoding)
    src, magic = _peek(src, 4)
    if magic.startswith(PARQUET_MAGIC):
        raise DataError(f"{where} is a Parquet file, not CSV text; give it the extension "
                        f".parquet (or .pq)")
    stream = src
    if magic.startswith(GZIP_MAGIC):
        stream = _Gunzip(stream, where)
    if codec != "utf-8":
        stream = _Transcoder(stream, codec, where)
    transformed = stream is not src
    try:
        regular = stat.S_ISREG(os.fstat(src.fileno()).st_mode) and hasattr(src, "readinto")
    except (AttributeError, OSError, ValueError):  # no file descriptor (e.g. BytesIO)
        regular = False
    if regular and prefetch and not transformed:
        reader = PrefetchReader(stream, size, where=where)
    else:
        reader = BlockReader(stream, size, limit=None if transformed or not regular else limit,
                             where=where)
    reader.transformed = transformed
    reader.source = src
    return reader


def source_position(reader):
    """Bytes of the input file read so far (for a decompressed or converted input, of
    the file itself, not of the text given): what a progress bar of the file's size
    shows."""
    if getattr(reader, "transformed", False):
        try:
            return reader.source.tell()
        except (AttributeError, OSError, ValueError):
            pass
    return reader.bytes_read


def _peek(src, n):
    """``(stream, first n bytes)``: the stream still gives every byte (a stream that
    cannot seek back is wrapped so that those bytes come first)."""
    try:
        if src.seekable():
            pos = src.tell()
            head = src.read(n)
            src.seek(pos)
            return src, head
    except (AttributeError, OSError, ValueError):
        pass
    head = b""
    while len(head) < n:
        more = src.read(n - len(head))
        if not more:
            break
        head += more
    return _Prefixed(head, src), head


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``src``."""

    def __init__(self, prefix, src):
        self.prefix, self.src = prefix, src

    def readable(self):
        return True

    def readinto(self, b):
        if self.prefix:
            n = min(len(b), len(self.prefix))
            b[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        if hasattr(self.src, "readinto"):
            return self.src.readinto(b)
        more = self.src.read(len(b))
        b[:len(more)] = more
        return len(more)


class _Gunzip(io.RawIOBase):
    """The decompressed bytes of gzip data (several members too), read as asked: memory
    stays bounded. Truncated or damaged data is a DataError naming the input."""

    def __init__(self, src, where):
        self.gz = gzip.GzipFile(fileobj=src, mode="rb")
        self.where = where

    def readable(self):
        return True

    def readinto(self, b):
        try:
            return self.gz.readinto(b)
        except EOFError:
            raise DataError(f"{self.where}: the gzip data is truncated (it ends before its "
                            f"end marker)") from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{self.where}: the gzip data is damaged ({exc})") from None


class _Transcoder(io.RawIOBase):
    """Text of ``encoding`` read from ``src`` and given as UTF-8, a chunk at a time.
    Bytes that are not text of that encoding are a DataError naming the byte."""

    CHUNK = 1 << 20

    def __init__(self, src, encoding, where):
        self.src, self.encoding, self.where = src, encoding, where
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self.out, self.pos, self.offset, self.done = b"", 0, 0, False

    def readable(self):
        return True

    def readinto(self, b):
        while self.pos >= len(self.out) and not self.done:
            raw = self.src.read(self.CHUNK)
            self.done = not raw
            try:
                text = self.decoder.decode(raw, final=self.done)
            except UnicodeError as exc:   # UnicodeDecodeError, or utf-16 without a BOM
                at = self.offset + max(getattr(exc, "start", 0), 0) + 1
                raise DataError(f"{self.where}: byte {at} of the input is not "
                                f"{self.encoding} text ({getattr(exc, 'reason', exc)}); is "
                                f"--encoding right?") from None
            self.offset += len(raw)
            self.out, self.pos = text.encode("utf-8", "surrogatepass"), 0
        n = min(len(b), len(self.out) - self.pos)
        b[:n] = self.out[self.pos:self.pos + n]
        self.pos += n
        return n


class PrefetchReader(_Lines):
    """The blocks of :class:`BlockReader` from a regular file, the next one read on a
    thread while the caller works on the current one (reads of a regular file do not
    block for long, so the thread always ends: at the end of the file or at
    :meth:`close`). Two buffers take turns; each keeps ``HEAD`` bytes before its chunk,
    where the unconsumed tail of the block before is copied, so that a block is one
    contiguous view as before. A longer tail (a record longer than ``HEAD``) goes with
    the next chunk into a buffer of its own."""

    HEAD = 1 << 16

    def __init__(self, src, size, where=None):
        _Lines.__init__(self, where)
        self.src, self.size = src, size
        self.free, self.ready = queue.Queue(), queue.Queue()
        for _ in range(2):
            self.free.put(bytearray(self.HEAD + size))
        self.cur = bytearray(0)
        self.start = self.end = 0  # the current block: cur[start:end]
        self.eof = False
        self.unread = False  # the current block was fetched by header_line, not yet given
        self.thread = threading.Thread(target=self._run, name="propensity-reader", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            buf = self.free.get()
            if buf is None:
                return
            try:
                with memoryview(buf) as mv:
                    n = self.src.readinto(mv[self.HEAD:])
            except BaseException as exc:  # raised by the caller's next_block
                self.ready.put((buf, exc))
                return
            self.ready.put((buf, n or 0))
            if not n:
                return

    def _standard(self, buf):
        return len(buf) == self.HEAD + self.size

    def next_block(self):
        """A memoryview of the current block (release it) and whether the input ended."""
        if self.unread:
            self.unread = False
        else:
            self._fetch()
        return memoryview(self.cur)[self.start:self.end], self.eof

    def _fetch(self):
        """The next chunk after the unconsumed tail of the current block."""
        if not self.eof:
            buf, n = self.ready.get()
            if isinstance(n, BaseException):
                raise n
            carry = self.end - self.start
            old = self.cur
            if n == 0:
                self.eof = True
            elif carry <= self.HEAD:
                if carry:
                    buf[self.HEAD - carry:self.HEAD] = old[self.start:self.end]
                self.cur, self.start, self.end = buf, self.HEAD - carry, self.HEAD + n
                if self._standard(old):
                    self.free.put(old)
            else:
                self.check_length(carry)
                merged = bytearray(carry + n)
                merged[:carry] = old[self.start:self.end]
                merged[carry:] = buf[self.HEAD:self.HEAD + n]
                self.free.put(buf)
                if self._standard(old):
                    self.free.put(old)
                self.cur, self.start, self.end = merged, 0, carry + n

    def consume(self, n, lines=0):
        """Drop the first ``n`` bytes of the block (``lines`` line ends), once checked to
        be UTF-8 text (see :meth:`_Lines.check_text`)."""
        if n:
            with memoryview(self.cur) as mv, mv[self.start:self.start + n] as done:
                self.check_text(done, lines)
        self.start += n

    def header_line(self):
        """The first line (without its line end), or None for an empty input."""
        while True:
            self.check_length(self.end - self.start)
            self._fetch()
            nl = self.cur.find(b"\n", self.start, self.end)
            if nl >= 0 or self.eof:
                break
        self.unread = True
        if not bytes(self.cur[self.start:self.end]).strip():
            return None
        end = nl if nl >= 0 else self.end
        head = bytes(self.cur[self.start:end])
        self.start = end + 1 if nl >= 0 else self.end
        self.line = 2                              # parse_header judges the header's text
        return head

    def close(self):
        """Stop the thread (it may be filling a buffer: that read ends soon)."""
        self.free.put(None)
        self.thread.join()


def parse_header(head, sep, where):
    """The column names of a header line (bytes, without its line end); DataError naming
    ``where`` for text that is not UTF-8 or an unclosed quote."""
    if head.endswith(b"\r"):
        head = head[:-1]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if b"\0" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{where} is not UTF-8 text (it looks like UTF-16); save it as "
                        f"UTF-8 CSV or pass --encoding utf-16")
    bad = _core.utf8_invalid(head)
    if bad >= 0:
        raise DataError(not_utf8(where, head[:bad + 1], 1))
    text = head.decode("utf-8")
    if text.count('"') % 2:
        raise DataError(f"{where}: the header line has an unclosed quote")
    return [c for c in next(csv.reader([text], delimiter=sep))]


DELIMITERS = (",", ";", "\t", "|")


def other_delimiter(names, sep):
    """The delimiter a header seems to use instead of ``sep``: when its columns (as
    split by ``sep``) are one name holding ``;``, tab, ``|`` or ``,``, the one of those
    it holds most of; else None."""
    if len(names) != 1:
        return None
    counts = {d: names[0].count(d) for d in DELIMITERS if d != sep}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def delimiter_hint(names, sep):
    """A sentence for a message about a header that seems to use another delimiter than
    ``sep`` (see :func:`other_delimiter`), or ''."""
    d = other_delimiter(names, sep)
    if d is None:
        return ""
    shown = "\\t" if d == "\t" else d
    said = "',' (comma)" if sep == "," else f"'{sep}'"
    return (f" The header is a single column holding '{shown}': the file seems to use "
            f"'{shown}' as its delimiter, not {said}; pass --sep '{shown}'.")


def check_sep(sep):
    """The one-character delimiter ``sep`` ('\\t' and 'tab' mean a tab); ValueError
    for anything else (a quote, a line end, more than one character)."""
    if isinstance(sep, str) and sep.lower() in ("\\t", "tab"):
        sep = "\t"
    if not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n\0' or ord(sep) > 127:
        raise ValueError(f"sep must be one ASCII character other than a quote or line end "
                         f"(e.g. ',', ';', '|' or '\\t'), got {sep!r}")
    return sep
