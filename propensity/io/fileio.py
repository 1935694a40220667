"""Crash-safe output and file checksums: the one way propensity writes a file
(:class:`AtomicOutput`) and a folder of outputs (:func:`prepare_output_folder`, then
:func:`swap_in_folder`), shared by the model documents, the training run, the predictor
and the stand-in data CLI."""
import contextlib
import errno
import hashlib
import logging
import mmap
import os
import re
import queue
import shutil
import stat
import sys
import tempfile
import threading

from ..errors import OutputError, SameFileError, TrainingError

logger = logging.getLogger(__name__)

UMASK = os.umask(0)  # read once: os.umask is process-wide, not thread-safe to probe later
os.umask(UMASK)


class _DirectWrites:
    """Writes to a file descriptor opened for O_DIRECT (no copy into the page cache):
    the data is staged in a page-aligned buffer and written in whole pages; what is
    left at the end (less than a page) is written without O_DIRECT by :meth:`finish`.
    Where the file system refuses direct writes, every write is an ordinary one."""

    PAGE = 4096
    SIZE = 8 << 20  # bytes staged at most

    def __init__(self, fd):
        self.fd, self.flags, self.direct = fd, None, False
        try:
            import fcntl
            self.flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, self.flags | os.O_DIRECT)
            self.direct = True
        except (ImportError, AttributeError, OSError):
            pass
        self.buf = mmap.mmap(-1, self.SIZE) if self.direct else None
        self.fill = 0

    def _plain(self):
        """Leave O_DIRECT: the rest is written through the page cache."""
        import fcntl
        fcntl.fcntl(self.fd, fcntl.F_SETFL, self.flags)
        self.direct = False

    def _write(self, view):
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self.direct:
                    raise
                self._plain()  # the file system takes no direct writes after all
                continue
            view = view[n:]
            if view and self.direct and n % self.PAGE:
                self._plain()  # a short write left the offset unaligned

    def write(self, data):
        mv = memoryview(data).cast("B")
        if not self.direct:
            self._write(mv)
            return
        with memoryview(self.buf) as buf:
            while mv:
                n = min(len(mv), self.SIZE - self.fill)
                buf[self.fill:self.fill + n] = mv[:n]
                self.fill += n
                mv = mv[n:]
                whole = self.fill - self.fill % self.PAGE
                if whole:
                    self._write(buf[:whole])
                    rest = self.fill - whole
                    buf[:rest] = buf[whole:self.fill]
                    self.fill = rest
                    if not self.direct:  # fell back: the rest goes as it comes
                        self._write(buf[:self.fill])
                        self.fill = 0
                        self._write(mv)
                        return

    def finish(self):
        if self.buf is None:
            return
        if self.fill:
            if self.direct:
                self._plain()
            with memoryview(self.buf) as buf:
                self._write(buf[:self.fill])
            self.fill = 0
        self.buf.close()
        self.buf = None


# paths that name a descriptor of this process: written through a copy of it (same
# offset, as a shell redirection would), never replaced
_OWN_FD = re.compile(r"^/(?:dev/fd/(\d+)|dev/std(in|out|err)|proc/(?:self|thread-self)/fd/(\d+))$")
_OTHER_FD = re.compile(r"^/proc/\d+/fd/\d+$")
_STD_FD = {"in": 0, "out": 1, "err": 2}


def output_error(path, exc):
    """OutputError naming ``path`` for an OSError met while writing it."""
    if isinstance(exc, OutputError):
        return exc
    return OutputError(exc.errno, f"cannot write {path}: {exc.strerror or exc}")


def output_target(path):
    """How :class:`AtomicOutput` writes ``path``, as ``cp`` or ``sort -o`` would:
    ``("replace", real)`` for a regular file or a new path (a temporary file beside
    ``real``, the path with every link followed, renamed over it: a link stays a link),
    ``("stream", fd_or_path)`` for a character device, FIFO, socket or a descriptor path
    such as ``/dev/stdout`` (written straight through; an ``int`` is a descriptor of this
    process). OutputError for a folder or a path that cannot be looked up."""
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):  # the link chain: a descriptor path anywhere on it is a stream
        m = _OWN_FD.match(p)
        if m:
            fd = _STD_FD[m.group(2)] if m.group(2) else int(m.group(1) or m.group(3))
            return "stream", fd
        if _OTHER_FD.match(p) or not os.path.islink(p):
            break
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise output_error(path, exc) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(errno.EISDIR, f"cannot write {path}: it is a folder")
        if not stat.S_ISREG(st.st_mode):
            return "stream", p
    return "replace", os.path.realpath(p)


class AtomicOutput:
    """The one way propensity writes a file. A regular file (or a new path) is written
    to a temporary file beside it, flushed, fsynced and renamed over it when the
    ``with`` block ends cleanly; removed on any error, so the path never holds half a
    file. A link is followed (the temporary file and the rename are in the target's
    folder; the link stays); the file keeps its permissions (a new one gets 0666 less
    the umask). A character device, FIFO or ``/dev/stdout``-like path is written straight
    through (:func:`output_target`); ``'-'`` is standard output.

    ``background=True`` writes on a thread (file writes release the GIL), so writing one
    block overlaps with producing the next; at most ``depth`` blocks wait.
    ``direct=True`` (binary mode, a regular file) writes the file with O_DIRECT where the
    file system allows it: no copy of every byte into the page cache, which for a large
    output costs about as much CPU as producing it; the file is fsynced before the
    rename either way. ``digest=True`` (binary mode) keeps the SHA-256 of the bytes
    written (:meth:`hexdigest`), on the writing thread: a file written with O_DIRECT is
    not in the page cache, and hashing it afterwards reads it back from the disk (the
    training run's 219 MB test predictions: 0.5 s). Every failure to write (a folder, a
    missing or unwritable folder, a full disk, the file-size limit) raises
    :class:`OutputError` naming the path."""

    def __init__(self, path, mode="wb", *, background=False, depth=2, direct=False,
                 digest=False, **kwargs):
        self.path = path if path == "-" else os.fspath(path)
        if digest and mode != "wb":
            raise ValueError(f"AtomicOutput(digest=True) hashes bytes: mode 'wb', not {mode!r}")
        self.sha256 = hashlib.sha256() if digest else None
        self.mode, self.kwargs = mode, kwargs
        self.background, self.depth = background, depth
        self.direct = bool(direct) and mode == "wb" and not kwargs and hasattr(os, "O_DIRECT")
        self.tmp = self.f = self.thread = self.error = None
        self.raw = None
        self.target = self.keep_mode = None

    def __enter__(self):
        if self.path == "-":
            self.f = sys.stdout.buffer if "b" in self.mode else sys.stdout
        else:
            try:
                self._open()
            except OSError as exc:
                raise output_error(self.path, exc) from None
        if self.background:
            self.queue = queue.Queue(maxsize=self.depth)
            self.thread = threading.Thread(target=self._drain, name="propensity-writer",
                                           daemon=True)
            self.thread.start()
        return self

    def _open(self):
        how, target = output_target(self.path)
        if how == "stream":
            if target in (1, 2):  # what Python buffered for the same descriptor goes first
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    (sys.stdout if target == 1 else sys.stderr).flush()
            fd = os.dup(target) if isinstance(target, int) else \
                os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            self.f = os.fdopen(fd, self.mode, **self.kwargs)
            return
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            raise OutputError(errno.ENOENT, f"cannot write {self.path}: the folder "
                                            f"{folder} does not exist")
        with contextlib.suppress(FileNotFoundError):
            self.keep_mode = stat.S_IMODE(os.stat(target).st_mode)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.",
                                        suffix=".part", dir=folder)
        self.target = target
        self.f = os.fdopen(fd, self.mode, **self.kwargs)
        if self.direct:
            self.raw = _DirectWrites(fd)

    def _drain(self):
        while True:
            data = self.queue.get()
            if data is None:
                return
            if self.error is None:
                try:
                    self._put(data)
                except BaseException as exc:  # reported by write() or __exit__
                    self.error = exc
            del data  # a caller may reuse (and resize) the buffer once it is written

    def _put(self, data):
        if self.sha256 is not None:
            self.sha256.update(data)
        try:
            if self.raw is not None:
                self.raw.write(data)
            else:
                self.f.write(data)
            return
        except OSError as exc:
            err = output_error(self.path, exc)
        # raised outside the handler: the error kept (and raised later) holds no frame of
        # the failed write, whose views of the staging buffer would keep it from closing
        raise err

    def write(self, data):
        if self.error is not None:
            raise self.error
        if self.thread is not None:
            self.queue.put(data)
        else:
            self._put(data)

    def hexdigest(self):
        """The SHA-256 of every byte written so far (``digest=True``), once the blocks
        given are written (after :meth:`sync` or the ``with`` block)."""
        if self.sha256 is None:
            raise ValueError(f"{self.path}: AtomicOutput(digest=True) keeps the digest")
        return self.sha256.hexdigest()

    def sync(self):
        """Wait until every block given so far is written, flushed and (for a regular
        file) fsynced; raises the write error if there was one. Later writes go on
        without the thread. Used before writing a companion file, so that a failure of
        this one leaves the other as it was."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        if self.error is not None:
            raise self.error
        try:
            if self.raw is not None:
                self.raw.finish()
                self.raw = None
            self.f.flush()
            if self.tmp is not None:
                os.fsync(self.f.fileno())
        except OSError as exc:
            self.error = output_error(self.path, exc)
        if self.error is not None:
            raise self.error

    def __exit__(self, exc_type, exc, tb):
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        try:
            if self.path == "-":
                if self.error is None:
                    self.f.flush()
            else:
                try:
                    if exc_type is None and self.error is None:
                        self.f.flush()
                        if self.raw is not None:
                            self.raw.finish()
                        if self.tmp is not None:
                            os.fsync(self.f.fileno())
                except OSError as err:
                    self.error = output_error(self.path, err)
                finally:
                    if self.raw is not None and self.raw.buf is not None:
                        with contextlib.suppress(BufferError):  # freed with its last view
                            self.raw.buf.close()
                    try:
                        self.f.close()
                    except OSError as err:  # a text file's last buffered bytes
                        if self.error is None and exc_type is None:
                            self.error = output_error(self.path, err)
            if self.error is not None and exc_type is None:
                raise self.error
            if exc_type is None and self.tmp is not None:
                os.chmod(self.tmp, self.keep_mode if self.keep_mode is not None
                         else 0o666 & ~UMASK)
                os.replace(self.tmp, self.target)
                self.tmp = None
        finally:
            if self.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp)
        return False


@contextlib.contextmanager
def atomic_open(path, mode="wb", **kwargs):
    """``with atomic_open(path) as f``: a file object written through :class:`AtomicOutput`."""
    with AtomicOutput(path, mode, **kwargs) as out:
        yield out.f


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, "wb") as f:
        f.write(data)


HASH_BLOCK = 16 << 20   # bytes read and hashed at a time by file_sha256


def file_sha256(path):
    """Hex SHA-256 of a file's bytes, read in HASH_BLOCK blocks into one buffer. Reading
    and hashing release the GIL, but each block takes it back: with 1 MiB blocks, beside a
    thread drawing figures (which holds the GIL up to its 5 ms switch interval), the
    training run's 219 MB test predictions took 0.54 s to hash instead of 0.14 s."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        # no bigger than the file (plus a byte to see its end): a small file's buffer
        # need not be 16 MB of zeros
        buf = memoryview(bytearray(min(HASH_BLOCK, os.fstat(f.fileno()).st_size + 1)))
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# a folder of outputs: written into a temporary sibling, swapped in at the end
# ---------------------------------------------------------------------------------------
def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_stale(output_dir):
    """Remove the temporary folders of runs that died (their PID is in the name). A run
    killed between its two renames left the previous outputs only in its ``.old-`` folder:
    that folder is renamed back instead."""
    parent, base = os.path.split(output_dir)
    pattern = re.compile(rf"^\.{re.escape(base)}\.(tmp|old)-(\d+)-")
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m is None or _pid_alive(int(m.group(2))):
            continue
        path = os.path.join(parent, name)
        if m.group(1) == "old" and not os.path.exists(output_dir):
            os.rename(path, output_dir)
            logger.warning("restored %s from the folder of an interrupted run", output_dir)
        else:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, left by an interrupted run", path)


def prepare_output_folder(output_dir):
    """``(output_dir, tmp)``: the output folder with links followed (a link to a folder
    stays a link: the folder it names is the one replaced) and a new temporary sibling to
    write the outputs into. TrainingError when the folder cannot be written."""
    output_dir = os.path.realpath(os.path.abspath(os.fspath(output_dir)))
    parent = os.path.dirname(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise TrainingError(f"output folder {output_dir} exists and is not a folder")
    try:
        os.makedirs(parent, exist_ok=True)
        clean_stale(output_dir)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-{os.getpid()}-",
                               dir=parent)
    except OSError as exc:
        raise TrainingError(f"cannot write the output folder {output_dir}: "
                            f"{exc.strerror or exc}") from None
    if os.path.isdir(output_dir) and not os.access(output_dir, os.W_OK | os.X_OK):
        shutil.rmtree(tmp, ignore_errors=True)
        raise TrainingError(f"cannot write the output folder {output_dir}: permission denied")
    return output_dir, tmp


def swap_in_folder(tmp, output_dir, owned=()):
    """Replace ``output_dir`` by ``tmp``; files of the old folder whose names are not in
    ``owned`` (the run's own outputs) are the user's and are carried over."""
    old = None
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            src = os.path.join(output_dir, name)
            if name not in owned and not name.startswith(".") \
                    and not os.path.exists(os.path.join(tmp, name)):
                if os.path.isdir(src) and not os.path.islink(src):
                    shutil.copytree(src, os.path.join(tmp, name), symlinks=True)
                else:  # a link is carried over as a link
                    shutil.copy2(src, os.path.join(tmp, name), follow_symlinks=False)
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-{os.getpid()}-",
                               dir=os.path.dirname(output_dir))
        os.rmdir(old)
        os.rename(output_dir, old)
    try:
        os.rename(tmp, output_dir)
    except BaseException:
        if old is not None:
            os.rename(old, output_dir)
        raise
    os.chmod(output_dir, 0o755 & ~UMASK)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def refuse_same_files(outputs, inputs, folders=()):
    """SameFileError when an output names the same file as an input or as another output,
    or an input lies inside one of the output ``folders`` (folders a run replaces whole).

    ``outputs``, ``inputs`` and ``folders`` are ``(label, path)`` pairs (``None`` and
    ``'-'`` are skipped). Existing files are compared by device and inode, links followed;
    an output that does not exist yet clashes with another output of the same resolved
    path."""
    def ident(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def named(pairs):
        return [(label, os.fspath(p)) for label, p in pairs
                if p is not None and not (isinstance(p, str) and p == "-")
                and isinstance(p, (str, os.PathLike))]

    outs, ins = named(outputs), named(inputs)
    for i, (olabel, opath) in enumerate(outs):
        oid = ident(opath)
        others = ins + outs[:i]
        for label, path in others:
            same = (oid is not None and oid == ident(path)) or (
                os.path.realpath(opath) == os.path.realpath(path))
            if same:
                raise SameFileError(f"{olabel} {opath!r} is the same file as {label} {path!r}; "
                                    f"writing it would destroy the other: choose another path")
    for flabel, folder in named(folders):
        real = os.path.realpath(folder)
        for label, path in ins:
            rp = os.path.realpath(path)
            if rp == real or os.path.commonpath([rp, real]) == real:
                raise SameFileError(f"{label} {path!r} is inside {flabel} {folder!r}, which "
                                    f"the run replaces: move it or choose another folder")
