"""Crash-safe output and file checksums: the one way propensity writes a file
(:class:`AtomicOutput`) and a folder of outputs (:func:`prepare_output_folder`, then
:func:`swap_in_folder`), shared by the model documents, the training run, the predictor
and the stand-in data CLI."""
import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import queue
import sys
import tempfile
import threading

from ..errors import TrainingError

logger = logging.getLogger(__name__)

UMASK = os.umask(0)  # read once: os.umask is process-wide, not thread-safe to probe later
os.umask(UMASK)


class AtomicOutput:
    """The one way propensity writes a file: a temporary file beside ``path``, flushed,
    fsynced, given the usual permissions (0666 less the umask) and renamed over
    ``path`` when the ``with`` block ends cleanly; removed on any error, so ``path``
    never holds half a file. ``'-'`` writes to standard output instead.

    ``background=True`` writes on a thread (file writes release the GIL), so writing one
    block overlaps with producing the next; at most ``depth`` blocks wait.
    Raises OSError naming ``path`` when its folder cannot be written."""

    def __init__(self, path, mode="wb", *, background=False, depth=2, **kwargs):
        self.path = path if path == "-" else os.fspath(path)
        self.mode, self.kwargs = mode, kwargs
        self.background, self.depth = background, depth
        self.tmp = self.f = self.thread = self.error = None

    def __enter__(self):
        if self.path == "-":
            self.f = sys.stdout.buffer if "b" in self.mode else sys.stdout
        else:
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                raise FileNotFoundError(errno.ENOENT, f"cannot write {self.path}: the folder "
                                        f"{folder} does not exist")
            try:
                fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.",
                                                suffix=".part", dir=folder)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self.f = os.fdopen(fd, self.mode, **self.kwargs)
        if self.background:
            self.queue = queue.Queue(maxsize=self.depth)
            self.thread = threading.Thread(target=self._drain, name="propensity-writer",
                                           daemon=True)
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
            del data  # a caller may reuse (and resize) the buffer once it is written

    def write(self, data):
        if self.error is not None:
            raise self.error
        if self.thread is not None:
            self.queue.put(data)
        else:
            self.f.write(data)

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
                        os.fsync(self.f.fileno())
                finally:
                    self.f.close()
            if self.error is not None and exc_type is None:
                raise self.error
            if exc_type is None and self.tmp is not None:
                os.chmod(self.tmp, 0o666 & ~UMASK)
                os.replace(self.tmp, self.path)
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


def file_sha256(path):
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
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
    output_dir = os.path.abspath(os.fspath(output_dir))
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
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(tmp, name))
                else:
                    shutil.copy2(src, os.path.join(tmp, name))
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
