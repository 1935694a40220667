"""Import the compiled core after making OpenBLAS available."""
from ._openblas import preload as _preload

_preload()

from . import _core  # noqa: E402

__all__ = ["_core"]
