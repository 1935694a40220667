"""The binding (csrc/core_module.c): argument checks that once let bad input crash the core.

Cases that crashed the interpreter before their fix run in a subprocess, so a
regression fails one test instead of killing the session.
"""
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from propensity import _core
from conftest import package_env



def _run_isolated(code):
    env = package_env()
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())


# offset + length wrapped around int64 in the bounds check, which then passed, and the
# formatter read far outside id_buf (SIGSEGV)
@pytest.mark.parametrize("span", [[2**63 - 4, 10], [3, 2**63 - 2], [2**62, 2**62]])
def test_csv_format_rejects_overflowing_id_span(span):
    proc = _run_isolated(f"""
        import numpy as np
        from propensity import _core
        try:
            _core.csv_format(np.zeros(1, np.uint8), np.array([0.5]), 4, b"ts", False,
                             b"abcdef", np.array([{span!r}], dtype=np.int64))
        except ValueError as exc:
            print("ValueError:", exc)
        """)
    assert proc.returncode == 0, proc.stderr
    assert "ValueError: id_span row 0 is outside id_buf" in proc.stdout


def test_csv_format_id_span_at_the_end_of_id_buf_is_accepted():
    out = _core.csv_format(np.zeros(2, np.uint8), np.array([0.25, 1.0]), 2, b"T", False,
                           b"abcdef", np.array([[4, 2], [6, 0]], dtype=np.int64))
    assert out == b"ef,0,0.25,T\n,0,1.00,T\n"
    with pytest.raises(ValueError, match="outside id_buf"):
        _core.csv_format(np.zeros(1, np.uint8), np.array([0.5]), 2, b"T", False, b"abcdef",
                         np.array([[4, 3]], dtype=np.int64))


# bins and compress passed any n_threads >= 1 to OpenMP's num_threads(): libgomp exits
# the process when it cannot create that many threads (logreg already capped at 1024).
# OMP_THREAD_LIMIT keeps the pre-fix behaviour of this test harmless (2 threads, no error).
@pytest.mark.parametrize("call", [
    "_core.bin_fit(X, 255, 100, 0, 10**6)",
    "_core.bin_transform(X, e, k, 10**6)",
    "_core.compress_rows(X.astype(np.uint8), None, None, 10**6)",
])
def test_thread_count_above_1024_is_rejected(call):
    env_code = f"""
        import numpy as np
        from propensity import _core
        X = np.arange(12.0).reshape(6, 2) % 3
        e, k = _core.bin_fit(X, 255, 100, 0, 1)
        try:
            {call}
            print("accepted")
        except ValueError as exc:
            print("ValueError:", exc)
        """
    env = dict(package_env(), OMP_THREAD_LIMIT="2")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(env_code)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    assert "ValueError: n_threads must be in [1, 1024]" in proc.stdout


def test_small_thread_counts_still_agree():
    X = np.arange(12.0).reshape(6, 2) % 3
    e, k = _core.bin_fit(X, 255, 100, 0, 1)
    assert np.array_equal(_core.bin_transform(X, e, k, 1), _core.bin_transform(X, e, k, 2))


def test_csv_format_into_a_bytearray_grows_it_and_returns_the_length():
    pred = np.array([0, 1], dtype=np.uint8)
    proba = np.array([0.25, 0.75])
    want = _core.csv_format(pred, proba, 6, b"T", False)
    buf = bytearray(3)
    n = _core.csv_format(pred, proba, 6, b"T", False, out=buf)
    assert bytes(buf[:n]) == want and len(buf) >= n
    again = _core.csv_format(pred, proba, 6, b"T", False, out=buf)   # large enough now
    assert again == n and bytes(buf[:n]) == want
    with pytest.raises(TypeError, match="bytearray"):
        _core.csv_format(pred, proba, 6, b"T", False, out=memoryview(bytearray(100)))
    view = memoryview(buf)                          # exported: cannot be resized
    with pytest.raises(BufferError):
        _core.csv_format(np.zeros(1000, np.uint8), np.zeros(1000), 6, b"T", False, out=buf)
    view.release()
