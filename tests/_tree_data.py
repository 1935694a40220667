"""Small data sets shared by the tree tests."""
import numpy as np


def funnel(n=20000, p=12, seed=0):
    """Binary funnel-like sessions: ordering needs a checkout view, which needs basket
    activity; a few noise columns. Returns (X uint8-valued float64, y)."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, p)) < rng.uniform(0.05, 0.5, p)).astype(np.float64)
    basket = X[:, 0] + X[:, 1] + X[:, 2]
    X[:, 3] = (rng.random(n) < 0.05 + 0.25 * basket).astype(float)        # saw checkout
    logit = -4.0 + 3.5 * X[:, 3] + 0.8 * basket + 0.6 * X[:, 4] - 0.7 * X[:, 5] * X[:, 6]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))) & (X[:, 3] > 0)
    return X, y.astype(int)


def continuous(n=6000, p=10, seed=0):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n, n_features=p, n_informative=5, random_state=seed)
