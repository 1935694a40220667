"""Regression tests from the code review of the binding sections of csrc/core_module.c.

Cases that crashed the interpreter before their fix run in a subprocess, so a
regression fails one test instead of killing the session.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from propensity import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_isolated(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


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
