"""Packaging: one version source, a licence, an sdist that carries what the build needs,
no build-machine path in the extension's RUNPATH, tomli before Python 3.11."""
import os
import shutil
import subprocess
import sys
import tarfile
import types

import pytest

import propensity
from propensity.training import tuning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tuning._toml().load(f)


def test_version_is_written_once():
    meta = _pyproject()
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "propensity.__version__"}
    from importlib.metadata import PackageNotFoundError, version
    try:
        assert version("propensity") == propensity.__version__
    except PackageNotFoundError:  # an in-place build that was never installed
        pass


def test_license_file_matches_pyproject():
    meta = _pyproject()
    # the table form: the SPDX string needs setuptools >= 77, and `python setup.py
    # build_ext --inplace` runs on whatever setuptools the environment has
    assert meta["project"]["license"] == {"text": "BSD-3-Clause"}
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("BSD 3-Clause License")
    assert "the propensity developers" in text and "Neither the name" in text


def test_extension_runpath_has_no_build_machine_path():
    readelf = shutil.which("readelf")
    if readelf is None or not sys.platform.startswith("linux"):
        pytest.skip("readelf (binutils) is not installed")
    dyn = subprocess.run([readelf, "-d", propensity._core.__file__], capture_output=True,
                         text=True, check=True).stdout
    paths = [line.split("[", 1)[1].rstrip("]") for line in dyn.splitlines()
             if "(RPATH)" in line or "(RUNPATH)" in line]
    assert paths == ["$ORIGIN/../scipy_openblas32/lib"], paths


def test_sdist_carries_the_c_sources_headers_and_licence(tmp_path):
    pytest.importorskip("scipy_openblas32")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", "*.so", "*.o", ".git", "ml_outputs",
        ".venv*", "bin"))
    res = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir",
                          str(tmp_path / "dist")], cwd=src, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("propensity-*.tar.gz")
    assert sdist.name == f"propensity-{propensity.__version__}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    headers = sorted(f"csrc/include/propensity/{h}"
                     for h in os.listdir(os.path.join(ROOT, "csrc", "include", "propensity")))
    sources = sorted(f"csrc/{c}" for c in os.listdir(os.path.join(ROOT, "csrc"))
                     if c.endswith(".c"))
    assert headers and sources
    missing = [n for n in headers + sources + ["LICENSE", "README.md", "setup.py",
                                               "pyproject.toml", "propensity/__init__.py",
                                               "propensity/data/session_model.json"]
               if n not in names]
    assert missing == []
    assert not any(n.endswith((".so", ".o")) for n in names)


def test_toml_reader_is_tomli_before_python_3_11(monkeypatch):
    if sys.version_info >= (3, 11):
        import tomllib
        assert tuning._toml() is tomllib
    fake = types.ModuleType("tomli")
    monkeypatch.setitem(sys.modules, "tomli", fake)
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    assert tuning._toml() is fake
