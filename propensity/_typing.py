"""Type aliases of the public API (annotations only; nothing here runs at scoring time)."""
from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
import numpy.typing as npt

#: What the estimators take as X or y: a NumPy array, a list of rows, a pandas
#: DataFrame or Series (anything ``numpy.asarray`` accepts).
ArrayLike = npt.ArrayLike
#: A float64 array, e.g. probabilities.
FloatArray = npt.NDArray[np.float64]
#: A file or folder path.
PathLike = Union[str, "os.PathLike[str]"]
#: A pandas DataFrame (pandas ships no type information the checks use).
DataFrame = Any
#: A Dask DataFrame.
DaskDataFrame = Any
