# The compiled C core (csrc/core_module.c). Its functions take and return NumPy arrays,
# dicts and plain numbers; they validate every argument themselves, so they are typed
# here as Any rather than restated.
from typing import Any

def __getattr__(name: str) -> Any: ...
