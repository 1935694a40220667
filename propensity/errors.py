"""Every exception propensity raises on purpose, in one place.

``PropensityError`` is the base of all of them. Each also derives from the built-in
exception a caller would catch without knowing propensity (``ValueError`` for bad data,
``FileNotFoundError`` for a missing model), so ``except ValueError`` keeps working.
With scikit-learn installed, ``NotFittedError`` and ``DataConversionWarning`` are
scikit-learn's own classes (``sklearn.exceptions``); without it, and in the package's
own commands (:mod:`propensity._sklearn`), local ones.
"""
from . import _sklearn


class PropensityError(Exception):
    """Base class of propensity's errors."""


class DataError(PropensityError, ValueError):
    """The data is unusable; the message names the file (or frame), column and row."""


class PredictorError(PropensityError):
    """Base class of the errors the predictor raises on bad models or bad input."""


class InputDataError(PredictorError, DataError):
    """The input cannot be scored: no known feature column, a bad value, wrong delimiter
    or encoding, a truncated last line. The message names the column, row and value."""


class ModelNotFoundError(PredictorError, FileNotFoundError):
    """The model folder, its manifest or a model file is missing."""


class ModelIntegrityError(PredictorError, ValueError):
    """A checksum mismatch, a malformed manifest or model, or a newer format version."""


class SameFileError(PropensityError, ValueError):
    """An output would overwrite an input, a model file or another output: the same file
    (device and inode, links followed) under two names."""


class OutputError(PropensityError, OSError):
    """An output cannot be written: its path is a folder, its folder is missing or not
    writable, the disk is full, the file-size limit is reached. The message names the
    path; whatever was at the path before is left as it was."""

    def __str__(self):
        return self.strerror if self.strerror else super().__str__()


class TrainingError(PropensityError, RuntimeError):
    """The run failed for a reason other than bad input data (e.g. output folder)."""


try:  # scikit-learn's own classes when it is installed, so ``except NotFittedError`` and
    # scikit-learn's checks see the real thing (it derives from ValueError and AttributeError)
    if not _sklearn.wanted():   # the package's own commands (see propensity._sklearn)
        raise ImportError("not in the package's commands")
    from sklearn.exceptions import DataConversionWarning, NotFittedError
except ImportError:
    class NotFittedError(PropensityError, ValueError, AttributeError):  # type: ignore[no-redef]
        """A method that needs a fitted model was called before fit."""

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """The input was converted to another shape or type (e.g. a column-shaped y raveled)."""


class ModelFormatError(PropensityError, ValueError):
    """A model document is malformed, truncated, corrupted or of an unknown version."""


class PartitionError(DataError):
    """One partition of a Dask input is unusable; ``partition`` is its number (0-based)."""

    def __init__(self, partition, message):
        super().__init__(f"partition {partition}: {message}")
        self.partition = partition

    def __reduce__(self):  # travels from a worker to the client
        msg = str(self).split(": ", 1)[1] if ": " in str(self) else str(self)
        return (type(self), (self.partition, msg))
