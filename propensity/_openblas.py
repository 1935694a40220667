"""Make OpenBLAS (from the scipy-openblas32 wheel) visible before the C core loads.

The extension is linked against ``libscipy_openblas`` with an rpath relative to
its installed location. Loading the library here first, with RTLD_GLOBAL, also
covers in-place development builds, where that relative path does not hold.
"""
import ctypes
import os

_handle = None


def preload():
    global _handle
    if _handle is not None:
        return _handle
    try:
        import scipy_openblas32
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ImportError(
            "propensity needs the scipy-openblas32 package (pip install scipy-openblas32)"
        ) from exc
    path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True))
    _handle = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    return _handle
