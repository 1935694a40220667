"""The model families the training pipeline trains, and their estimator classes."""
from .forest import RandomForestClassifier
from .gbdt import GradientBoostingClassifier
from .linear import LogisticRegression

FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")

_CLASSES = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "gradient_boosting": GradientBoostingClassifier,
}

# Parameters whose smaller settings a fitted estimator scores as a prefix of its largest
# fit (predict_proba_prefix): one fit per fold serves all of them in the grid search.
_PREFIX: dict[type, tuple[str, ...]] = {
    RandomForestClassifier: ("n_estimators", "max_depth", "min_samples_split"),
    GradientBoostingClassifier: ("n_estimators",),
}


def estimator_class(family):
    """The estimator class of a model family."""
    try:
        return _CLASSES[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r}; choose from {list(FAMILIES)}") from None


def prefix_params(cls):
    """Parameters the fitted estimator can score as a prefix of a larger fit."""
    return _PREFIX.get(cls, ())
