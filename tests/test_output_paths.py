"""Outputs are written the way ``cp`` or ``sort -o`` would: a regular file (or a new path)
through a temporary file renamed over it, a link followed (the link stays), a device,
FIFO or descriptor path straight through; a folder or an unwritable folder is an
OutputError naming the path. Every other file is left as it was (inode and bytes)."""
import errno
import os
import stat
import threading

import pytest

from propensity.errors import OutputError
from propensity.io.fileio import AtomicOutput, atomic_write_bytes, output_target

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mknod of device nodes needs root")


def snapshot(*folders):
    """{path: (inode, mode, bytes or link target)} of every entry of ``folders``."""
    out = {}
    for folder in folders:
        for name in os.listdir(folder):
            p = os.path.join(folder, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                body = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                body = open(p, "rb").read()
            else:
                body = None
            out[p] = (st.st_ino, st.st_mode, body)
    return out


def changed(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def test_regular_file_is_replaced_keeping_its_permissions(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    other = tmp_path / "other.csv"
    other.write_bytes(b"keep")
    before = snapshot(tmp_path)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert changed(before, snapshot(tmp_path)) == [str(target)]


def test_symlink_is_followed_and_stays_a_link(tmp_path):
    links, data = tmp_path / "links", tmp_path / "data"
    links.mkdir()
    data.mkdir()
    real = data / "pred.csv"
    real.write_bytes(b"old")
    link = links / "pred.csv"
    link.symlink_to(real)
    assert output_target(link) == ("replace", str(real))
    before = snapshot(links, data)
    with AtomicOutput(link, background=True, direct=True) as out:
        out.write(b"new rows\n")
    assert os.readlink(link) == str(real) and real.read_bytes() == b"new rows\n"
    # only the target changed (a new inode in its own folder); the link is untouched
    assert changed(before, snapshot(links, data)) == [str(real)]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "pred.csv"
    link.symlink_to("made.csv")
    atomic_write_bytes(link, b"x")
    assert link.is_symlink() and (tmp_path / "made.csv").read_bytes() == b"x"


def test_fifo_is_written_straight_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    ino = os.stat(fifo).st_ino
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    payload = b"row\n" * 50_000  # more than a pipe buffer holds
    with AtomicOutput(fifo, background=True, direct=True) as out:
        out.write(payload)
    reader.join()
    assert got == [payload]
    st = os.lstat(fifo)
    assert stat.S_ISFIFO(st.st_mode) and st.st_ino == ino
    assert os.listdir(tmp_path) == ["pipe"]


def test_descriptor_paths_write_to_the_descriptor(tmp_path):
    """/dev/fd/N, /proc/self/fd/N and a link to one write to descriptor N of this
    process (a copy of it: the same pipe, the same offset), not to a new file."""
    r, w = os.pipe()
    link = tmp_path / "to_fd"
    link.symlink_to(f"/proc/self/fd/{w}")
    paths = [f"/dev/fd/{w}", f"/proc/self/fd/{w}", str(link)]
    try:
        for path in paths:
            assert output_target(path) == ("stream", w)
            with AtomicOutput(path) as out:
                out.write(path.encode() + b"\n")
        os.close(w)
        w = None
        with os.fdopen(r, "rb") as f:
            r = None
            assert f.read().decode().splitlines() == paths
    finally:
        for fd in (r, w):
            if fd is not None:
                os.close(fd)
    assert link.is_symlink() and os.listdir(tmp_path) == ["to_fd"]


@needs_root
def test_character_devices_are_written_not_replaced(tmp_path):
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    link = tmp_path / "link_to_null"
    link.symlink_to(null)
    before = snapshot(tmp_path)
    for path in (null, link):
        with AtomicOutput(path, background=True, direct=True) as out:
            out.write(b"discarded\n" * 1000)
    with pytest.raises(OutputError, match=r"cannot write .*full: No space left on device") as exc:
        with AtomicOutput(full) as out:
            out.write(b"x" * 100_000)
    assert exc.value.errno == errno.ENOSPC
    assert changed(before, snapshot(tmp_path)) == []
    assert stat.S_ISCHR(os.lstat(null).st_mode) and stat.S_ISCHR(os.lstat(full).st_mode)


def test_a_folder_is_refused(tmp_path):
    folder = tmp_path / "outdir"
    folder.mkdir()
    (folder / "x").write_bytes(b"x")
    before = snapshot(tmp_path, folder)
    with pytest.raises(OutputError, match="cannot write .*outdir: it is a folder"):
        atomic_write_bytes(folder, b"new")
    assert changed(before, snapshot(tmp_path, folder)) == []


def test_an_unwritable_folder_is_named(tmp_path):
    if ROOT:  # root writes anywhere on a normal file system; /sys refuses even root
        target = "/sys/propensity-output-test.csv"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
        target = str(ro / "out.csv")
    with pytest.raises(OutputError, match=f"cannot write {target}: Permission denied"):
        atomic_write_bytes(target, b"x")
    assert not os.path.exists(target)


def test_a_missing_folder_and_a_file_as_folder_are_named(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(OutputError, match="the folder .*nope does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "out.csv", b"x")
    with pytest.raises(OutputError, match="cannot write .*afile/out.csv: Not a directory"):
        atomic_write_bytes(tmp_path / "afile" / "out.csv", b"x")
    assert (tmp_path / "afile").read_bytes() == b"x"


def test_training_keeps_links_the_user_left_in_the_output_folder(tmp_path):
    """A symlinked --output-dir is followed (the folder it names is replaced, the link
    stays) and a user's link inside the folder is carried over as a link."""
    from propensity import train
    from propensity.datasets import make_sessions

    data = tmp_path / "train.csv"
    make_sessions(2000, seed=3).to_csv(data, index=False)
    real = tmp_path / "runs" / "today"
    real.mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    (real / "notes_link").symlink_to(tmp_path / "notes.txt")
    link = tmp_path / "ml_outputs"
    link.symlink_to(real)
    code = train.main(["--train-file", str(data), "--output-dir", str(link), "--models",
                       "logistic_regression", "--cv-folds", "2", "--quiet"])
    assert code == 0
    assert os.readlink(link) == str(real) and (real / "manifest.json").is_file()
    assert os.readlink(real / "notes_link") == str(tmp_path / "notes.txt")
    assert sorted(os.listdir(tmp_path)) == ["ml_outputs", "notes.txt", "runs", "train.csv"]
    assert os.listdir(tmp_path / "runs") == ["today"]
