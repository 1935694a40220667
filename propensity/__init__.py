"""propensity: customer purchase-propensity models on a fast C core.

Train with ``python -m propensity.train``; score with ``python -m propensity.predict``
or :class:`CustomerPropensityPredictor`.
"""
import logging as _logging

from ._core_loader import _core  # noqa: F401  (loads OpenBLAS, then the C core)

from .forest import RandomForestClassifier  # noqa: E402
from .gbdt import GradientBoostingClassifier  # noqa: E402

__version__ = "0.1.0"

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = ["__version__", "RandomForestClassifier", "GradientBoostingClassifier"]
