"""propensity: customer purchase-propensity models on a fast C core.

Train with ``python -m propensity.train``; score with ``python -m propensity.predict``
or :class:`CustomerPropensityPredictor`.
"""
import logging as _logging

__version__ = "0.1.0"

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

from ._core_loader import _core  # noqa: E402,F401  (loads OpenBLAS, then the C core)
from .learn.base import load_model  # noqa: E402
from .learn.forest import RandomForestClassifier  # noqa: E402
from .learn.gbdt import GradientBoostingClassifier  # noqa: E402
from .learn.linear import LogisticRegression  # noqa: E402
from .learn.features import InteractionFeatureTransformer  # noqa: E402
from .scoring.model import PropensityModel  # noqa: E402
from .scoring.predictor import CustomerPropensityPredictor  # noqa: E402

__all__ = [
    "__version__",
    "load_model",
    "RandomForestClassifier",
    "GradientBoostingClassifier",
    "LogisticRegression",
    "InteractionFeatureTransformer",
    "PropensityModel",
    "CustomerPropensityPredictor",
]
