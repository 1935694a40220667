"""Import the compiled core after making OpenBLAS available.

``python -m propensity.train`` run in the project's root folder after ``pip install .``
imports this package from the source tree (Python puts the working folder first on
sys.path), where no compiled core was built. Then the core of the installed copy of the
same version is used: its folder is added to this package's ``__path__``.
"""
import importlib.machinery
import os
import sys

from ._openblas import preload as _preload

# OpenMP threads that finish a parallel region sleep instead of spinning, unless the
# user chose a policy. The learners run many short regions (one per node of a tree);
# with libgomp's default spinning, a waiting thread burns a core the other thread or
# another process needs: measured on 2 cores with a second process busy, boosting on
# 25k distinct rows took 6.1 s with 2 spinning threads, 0.25 s with 2 sleeping ones and
# 0.27 s with one. Read by libgomp when it loads, i.e. on the import of the core below.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

_preload()


def _installed_core_folder(package):
    here = os.path.realpath(os.path.dirname(package.__file__))
    for entry in sys.path:
        folder = os.path.join(entry or os.getcwd(), "propensity")
        if not os.path.isdir(folder) or os.path.realpath(folder) == here:
            continue
        names = os.listdir(folder)
        if any(n.startswith("_core.") and n.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
               for n in names):
            return folder
    return None


try:
    from . import _core  # noqa: E402
except ImportError as exc:
    _pkg = sys.modules[__package__]
    _folder = _installed_core_folder(_pkg)
    if _folder is None:
        raise ImportError(
            "propensity's compiled core is missing: install the package (pip install .) "
            "or build it in place (python setup.py build_ext --inplace)") from exc
    from importlib import metadata as _metadata

    _installed: str | None
    try:
        _installed = _metadata.version("propensity")
    except _metadata.PackageNotFoundError:
        _installed = None
    if _installed != _pkg.__version__:
        raise ImportError(
            f"propensity {_pkg.__version__} is imported from the source tree "
            f"{os.path.dirname(_pkg.__file__ or '')}, which has no compiled core, and the installed "
            f"copy is version {_installed}: reinstall (pip install .) or build in place "
            f"(python setup.py build_ext --inplace)") from exc
    _pkg.__path__.append(_folder)
    from . import _core  # noqa: E402

__all__ = ["_core"]
