"""The exploration notebook runs from top to bottom without an error.

The kernel is the interpreter running the tests (a kernelspec written into a temporary
folder), with the package this test imports first on its path, so the test works in a
fresh virtual environment and with an in-place build alike.
"""
import importlib
import json
import os
import subprocess
import sys

import pytest

import propensity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "exploration.ipynb")
BUILDER = os.path.join(ROOT, "notebooks", "build_notebook.py")
CELL_TIMEOUT = 120   # seconds per cell
KERNEL_NAME = "propensity-test-kernel"


def _require(*modules):
    """Import the notebook tooling or fail loudly: CI installs it with the test extra."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        pytest.fail(f"the notebook test needs {', '.join(missing)}: "
                    f"pip install '.[test]' (or '.[notebook]')", pytrace=False)


def _kernel_manager(tmp_path):
    """A kernel manager whose kernel runs sys.executable with this test's propensity."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(propensity.__file__)))
    pythonpath = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH"))
                                 if p)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "propensity test kernel",
        "language": "python",
        "env": {"PYTHONPATH": pythonpath, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


def test_notebook_is_built_from_the_generator_and_stripped():
    _require("nbformat")
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.get('id')} has committed outputs"
            assert cell.execution_count is None
    check = subprocess.run([sys.executable, BUILDER, "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _point_at_csv(nb, tmp_path):
    """Do what an analyst does: set DATA_PATH (and the sample size) in the settings cell
    to a CSV of their own, here 12,000 generated sessions sampled down to 10,000."""
    from propensity.datasets import make_sessions

    csv = tmp_path / "my_sessions.csv"
    make_sessions(12_000, seed=3).to_csv(csv, index=False)
    settings = [c for c in nb.cells if c.cell_type == "code" and "DATA_PATH = None" in c.source]
    assert len(settings) == 1, "the notebook must have exactly one settings cell"
    lines = settings[0].source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("DATA_PATH ="):
            lines[i] = f"DATA_PATH = {str(csv)!r}"
        elif line.startswith("SAMPLE_ROWS ="):
            lines[i] = "SAMPLE_ROWS = 10_000"
    settings[0].source = "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["embedded", "own_csv"])
def test_notebook_executes(tmp_path, data):
    _require("nbformat", "nbclient", "ipykernel", "jupyter_client")
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(NOTEBOOK, as_version=4)
    if data == "own_csv":
        _point_at_csv(nb, tmp_path)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=CELL_TIMEOUT,
                            allow_errors=False,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"a notebook cell failed:\n{exc}", pytrace=False)

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the figures were drawn (one PNG per plotting cell), none left open as text only
    images = [o for c in code for o in c.outputs
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    plotting_cells = [c for c in code if "plt.show()" in c.source]
    assert len(images) >= len(plotting_cells)
    text = "".join(o.get("text", "") for c in code for o in c.outputs
                   if o.output_type == "stream")
    if data == "own_csv":
        assert "10,000 sessions from " in text and "my_sessions.csv" in text
    else:
        assert "sessions from built-in stand-in data" in text
    # the notebook cleaned up after itself: nothing written into its working folder
    assert list(workdir.iterdir()) == []
