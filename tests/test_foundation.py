"""The package imports, the core loads with OpenBLAS, and the shared plumbing works:
model documents, parameter handling and input validation."""
import pickle

import numpy as np
import pandas as pd
import pytest

import propensity
from propensity.io import modelio as _modelio
from propensity.io.fileio import atomic_write_bytes, file_sha256
from propensity.learn.base import BaseEstimator, register_estimator, load_model
from propensity.learn.validation import (check_X, check_y, check_sample_weight,
                                    resolve_class_weight, check_n_jobs)


def test_core_loads_and_reports_build():
    info = propensity._core.build_info()
    assert info["max_bins"] == 256 and info["missing_bin"] == 255
    assert propensity._core.resolve_threads(3) == 3
    assert propensity._core.resolve_threads(0) >= 1


def _arrays():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(5, 3)), "b": np.arange(7, dtype=np.int32),
            "c": np.array([1, 2, 255], dtype=np.uint8), "empty": np.zeros((0, 4))}


def test_document_roundtrip_is_exact():
    data = _modelio.dumps("X", {"p": (1, 2), "q": None}, {"m": float("inf")}, _arrays())
    doc = _modelio.loads(data)
    assert doc.estimator == "X" and doc.params == {"p": [1, 2], "q": None}
    assert doc.meta == {"m": float("inf")}
    for k, v in _arrays().items():
        assert doc.arrays[k].dtype == v.dtype and np.array_equal(doc.arrays[k], v)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d[:10], "too short"),
    (lambda d: b"NOTAMODEL" + d[9:], "magic"),
    (lambda d: d[:-40] + d[-8:], "checksum|exceeds"),
    (lambda d: d[:8] + (9).to_bytes(2, "little") + d[10:], "version 9"),
    (lambda d: d[:100] + bytes([d[100] ^ 0xFF]) + d[101:], "checksum"),
])
def test_document_rejects_damage(mutate, match):
    data = _modelio.dumps("X", {}, {}, _arrays())
    with pytest.raises(_modelio.ModelFormatError, match=match):
        _modelio.loads(mutate(data))


def test_document_rejects_disallowed_dtype_even_with_valid_checksum():
    import hashlib, json, struct
    header = json.dumps({"format": "propensity-model", "format_version": [1, 0],
                         "estimator": "X", "params": {}, "meta": {},
                         "arrays": [{"name": "o", "dtype": "|O", "shape": [1],
                                     "offset": 0, "nbytes": 8}]}).encode()
    body = struct.pack("<8sHHQ", b"PROPMDL\0", 1, 0, len(header)) + header
    body += b"\0" * ((-len(body)) % 8) + b"\0" * 8
    with pytest.raises(_modelio.ModelFormatError, match="disallowed dtype"):
        _modelio.loads(body + hashlib.sha256(body).digest())


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # write fails midway
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("block", [None, 1000, 2304000])
def test_file_sha256_matches_hashlib(tmp_path, monkeypatch, block):
    """One read block, many (the last one short) and a file of exactly one block."""
    import hashlib
    from propensity.io import fileio
    if block is not None:
        monkeypatch.setattr(fileio, "HASH_BLOCK", block)
    data = bytes(range(256)) * 9000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("direct", [False, True])
def test_direct_output_writes_the_same_bytes(tmp_path, background, direct):
    """AtomicOutput(direct=True): O_DIRECT writes of whole pages from a staging buffer,
    the tail at the end; pieces of every size (empty, under a page, over the buffer).
    digest=True: the SHA-256 of the bytes written, equal to the file's."""
    import hashlib
    from propensity.io.fileio import AtomicOutput, _DirectWrites
    rng = np.random.default_rng(0)
    pieces = [b"", b"x", bytes(4095), rng.bytes(4096), rng.bytes(5000),
              rng.bytes(_DirectWrites.SIZE + 123), bytearray(rng.bytes(70001)),
              memoryview(rng.bytes(3 * 4096)), b"tail"]
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with AtomicOutput(target, background=background, direct=direct, digest=True) as out:
        for piece in pieces:
            out.write(piece)
    assert target.read_bytes() == b"".join(bytes(p) for p in pieces)
    assert out.hexdigest() == hashlib.sha256(target.read_bytes()).hexdigest()
    with AtomicOutput(tmp_path / "plain.csv") as plain:
        plain.write(b"x")
    with pytest.raises(ValueError, match="digest=True"):
        plain.hexdigest()
    (tmp_path / "plain.csv").unlink()
    with pytest.raises(ValueError, match="mode 'wb', not 'w'"):   # text is not hashed
        AtomicOutput(tmp_path / "text.csv", "w", digest=True)
    assert not (tmp_path / "text.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with pytest.raises(RuntimeError):
        with AtomicOutput(target, direct=True) as out:
            out.write(rng.bytes(10000))
            raise RuntimeError("stop")
    assert target.read_bytes() == b"".join(bytes(p) for p in pieces)


def test_direct_output_falls_back_when_the_file_system_refuses(tmp_path, monkeypatch):
    """A file system that refuses direct writes (EINVAL): the same bytes, written through
    the page cache."""
    import errno as _errno
    import os as _os
    from propensity.io import fileio
    real_write, calls = _os.write, []

    def refusing(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(_errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(fileio.os, "write", refusing)
    data = [bytes(range(256)) * 40, b"y" * 9000, b"z" * 100]
    target = tmp_path / "out.csv"
    with fileio.AtomicOutput(target, direct=True) as out:
        for piece in data:
            out.write(piece)
    assert target.read_bytes() == b"".join(data)
    assert len(calls) >= 3


def test_atomic_open_names_an_unwritable_folder(tmp_path):
    from propensity.io.fileio import atomic_open
    with pytest.raises(OSError, match="cannot write .*missing"):
        with atomic_open(tmp_path / "missing" / "x.csv", "w") as f:
            f.write("never")


@register_estimator
class _Toy(BaseEstimator):
    def __init__(self, *, alpha=1.0, beta=None):
        self.alpha = alpha
        self.beta = beta

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.coef_ = np.asarray(X, dtype=float).sum(axis=0)
        return self

    def _to_document(self):
        return {"note": "toy"}, {"coef": self.coef_, "classes": self.classes_}

    @classmethod
    def _from_document(cls, params, meta, arrays):
        est = cls(**params)
        est.coef_, est.classes_ = arrays["coef"], arrays["classes"]
        return est


def test_params_repr_and_errors():
    est = _Toy(alpha=2.0)
    assert est.get_params() == {"alpha": 2.0, "beta": None}
    assert repr(est) == "_Toy(alpha=2.0)"
    est.set_params(beta=3)
    assert est.beta == 3
    with pytest.raises(ValueError, match="Invalid parameter 'gamma'"):
        est.set_params(gamma=1)


def test_save_load_and_pickle_go_through_the_document(tmp_path):
    est = _Toy(alpha=0.5).fit([[1, 2], [3, 4]], [0, 1])
    path = tmp_path / "toy.model"
    est.save(path)
    back = load_model(path)
    assert isinstance(back, _Toy) and back.alpha == 0.5
    assert np.array_equal(back.coef_, est.coef_)
    state = est.__getstate__()
    assert set(state) == {"__propensity_document__"}
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.coef_, est.coef_) and again.alpha == 0.5
    unfitted = pickle.loads(pickle.dumps(_Toy(alpha=7)))
    assert unfitted.alpha == 7


def test_sklearn_clone_works_on_base_estimator():
    sklearn_base = pytest.importorskip("sklearn.base")
    est = _Toy(alpha=3.0)
    c = sklearn_base.clone(est)
    assert c is not est and c.get_params() == est.get_params()


def test_check_X_keeps_uint8_and_rejects_bad_input():
    df = pd.DataFrame({"a": np.array([0, 1], dtype=np.uint8), "b": [True, False]})
    arr, names = check_X(df)
    assert arr.dtype == np.uint8 and names == ["a", "b"]
    arr, _ = check_X(np.array([[1, 2]], dtype=np.int64))
    assert arr.dtype == np.float64 and arr.flags.c_contiguous
    with pytest.raises(ValueError, match="column 'b' has an infinite value at row 1"):
        check_X(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, np.inf]}))
    with pytest.raises(TypeError, match="column 's' has non-numeric dtype"):
        check_X(pd.DataFrame({"s": ["x", "y"]}))
    with pytest.raises(ValueError, match="2-dimensional"):
        check_X(np.zeros(3))
    with pytest.raises(ValueError, match="0 rows"):
        check_X(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="duplicate column names"):
        check_X(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    nan_ok, _ = check_X(np.array([[np.nan, 1.0]]))
    assert np.isnan(nan_ok[0, 0])


def test_check_y_and_weights():
    y, classes = check_y(["no", "yes", "yes"])
    assert y.tolist() == [0, 1, 1] and classes.tolist() == ["no", "yes"]
    with pytest.raises(ValueError, match="binary; found 3 classes"):
        check_y([0, 1, 2])
    with pytest.raises(ValueError, match="single class"):
        check_y([1, 1])
    with pytest.raises(ValueError, match="X has 2 rows but y has 3"):
        check_y([0, 1, 1], n_samples=2)
    with pytest.raises(ValueError, match="negative"):
        check_sample_weight([1, -1], 2)
    w = resolve_class_weight("balanced", np.array([0, 1]), np.array([0, 0, 0, 1], np.uint8))
    assert np.allclose(w, [4 / 6, 2.0])
    w = resolve_class_weight({1: 5}, np.array([0, 1]), np.array([0, 1], np.uint8))
    assert w.tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match="class 7"):
        resolve_class_weight({7: 1}, np.array([0, 1]), np.array([0, 1], np.uint8))
    assert check_n_jobs(None) == 0 and check_n_jobs(-1) == 0 and check_n_jobs(2) == 2
    with pytest.raises(ValueError):
        check_n_jobs(0)


def test_module_commands_work_from_the_project_root():
    """`python -m propensity.train` in the project root imports the source tree (the
    working folder comes first on sys.path); after `pip install .` it has no compiled core
    of its own and must use the installed one."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for module in ("propensity.train", "propensity.predict"):
        proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=root,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "usage:" in proc.stdout
