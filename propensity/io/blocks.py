"""The one way a CSV file is read: blocks of bytes for the C reader.

:class:`BlockReader` fills one reusable buffer from a binary stream; the C reader
(``_core.csv_parse``) parses the whole records of a block and says how many bytes it
consumed, and the unconsumed tail (a partial record) moves to the front for the next
read. :class:`PrefetchReader` gives the same blocks from a regular file, the next one read
on a thread while the current one is parsed (the predictor's input). The predictor and the
training run both read this way, so a file gets the same verdict (the same rows, the same
error naming the same line) from either.
"""
import csv
import os
import queue
import stat
import threading

from ..errors import DataError


class BlockReader:
    """Reads a binary stream into one reusable buffer: blocks of about ``size`` bytes
    whose unconsumed tail (a partial record) is moved to the front for the next read.
    ``bytes_read`` counts the bytes taken from the stream so far; ``limit`` (optional)
    is the most it reads (a file's size when it was opened: a file that keeps growing
    is then read to that size, not forever)."""

    def __init__(self, src, size, limit=None):
        self.src = src
        self.buf = bytearray(size)
        self.filled = 0
        self.eof = False
        self.bytes_read = 0
        self.limit = limit
        self._stalled = False      # the last parse consumed nothing of a full buffer

    def close(self):
        pass

    def _fill(self):
        if self.eof:
            return
        if self.filled == len(self.buf):
            if not self._stalled:                  # full, and not parsed yet: read later
                return
            self.buf.extend(bytes(len(self.buf)))  # a record longer than the buffer
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
            self._stalled = True                   # a header longer than the buffer
            self._fill()
        end = nl if nl >= 0 else self.filled
        if not self.buf[:end].strip() and not self.buf[:self.filled].strip():
            return None                            # the header first: no copy of the block
        head = bytes(self.buf[:end])
        self.consume(end + 1 if nl >= 0 else self.filled)
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

    def consume(self, n):
        self._stalled = n == 0
        rest = self.filled - n
        if rest:
            self.buf[:rest] = self.buf[n:self.filled]
        self.filled = rest


def open_reader(src, size):
    """A block reader of the input: a regular file is read ahead on a thread
    (:class:`PrefetchReader`), other streams as they come (:class:`BlockReader`)."""
    try:
        regular = stat.S_ISREG(os.fstat(src.fileno()).st_mode) and hasattr(src, "readinto")
    except (AttributeError, OSError, ValueError):  # no file descriptor (e.g. BytesIO)
        regular = False
    return PrefetchReader(src, size) if regular else BlockReader(src, size)


class PrefetchReader:
    """The blocks of :class:`BlockReader` from a regular file, the next one read on a
    thread while the caller works on the current one (reads of a regular file do not
    block for long, so the thread always ends: at the end of the file or at
    :meth:`close`). Two buffers take turns; each keeps ``HEAD`` bytes before its chunk,
    where the unconsumed tail of the block before is copied, so that a block is one
    contiguous view as before. A longer tail (a record longer than ``HEAD``) goes with
    the next chunk into a buffer of its own."""

    HEAD = 1 << 16

    def __init__(self, src, size):
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
                merged = bytearray(carry + n)
                merged[:carry] = old[self.start:self.end]
                merged[carry:] = buf[self.HEAD:self.HEAD + n]
                self.free.put(buf)
                if self._standard(old):
                    self.free.put(old)
                self.cur, self.start, self.end = merged, 0, carry + n

    def consume(self, n):
        self.start += n

    def header_line(self):
        """The first line (without its line end), or None for an empty input."""
        while True:
            self._fetch()
            nl = self.cur.find(b"\n", self.start, self.end)
            if nl >= 0 or self.eof:
                break
        self.unread = True
        if not bytes(self.cur[self.start:self.end]).strip():
            return None
        end = nl if nl >= 0 else self.end
        head = bytes(self.cur[self.start:end])
        self.consume(end + 1 - self.start if nl >= 0 else self.end - self.start)
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
                        f"UTF-8 CSV")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: the header is not UTF-8 text ({exc}); wrong encoding?") from None
    if text.count('"') % 2:
        raise DataError(f"{where}: the header line has an unclosed quote")
    return [c for c in next(csv.reader([text], delimiter=sep))]
