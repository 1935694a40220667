"""Shared fixtures: one small trained model folder for the predictor tests.

The folder is produced by the real training pipeline (``propensity.train.main``) once
per session, on small stand-in data.
"""
import os

import numpy as np
import pytest

from propensity.datasets import FEATURES  # noqa: E402  (re-exported to the tests)


SMALL_GRID = """
[random_forest]
n_estimators = [20]
max_depth = [6, "none"]
min_samples_split = [2]
[gradient_boosting]
n_estimators = [20]
max_depth = [3]
learning_rate = [0.3]
[logistic_regression]
C = [1.0]
l1_ratio = [0.5]
"""


def _train(out_dir, work):
    from propensity import train
    from propensity.datasets import make_sessions

    make_sessions(5000, seed=7).to_csv(work / "train.csv", index=False)
    make_sessions(300, seed=7, testing=True).to_csv(work / "test.csv", index=False)
    (work / "grid.toml").write_text(SMALL_GRID)
    code = train.main(["--train-file", str(work / "train.csv"), "--test-file",
                       str(work / "test.csv"), "--output-dir", out_dir, "--grid",
                       str(work / "grid.toml"), "--quiet"])
    assert code in (0, None), f"training the fixture models failed with exit code {code}"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("train_data")
    out = str(work / "ml_outputs")
    _train(out, work)
    return out


def package_env():
    """Environment for a subprocess that must import the same propensity as this test
    run (installed, or an in-place build of the source tree). Run the subprocess in a
    folder other than the source tree (``python -c`` and ``-m`` put the working folder
    first on sys.path, where the bare sources would shadow the installed package)."""
    import propensity

    root = os.path.dirname(os.path.dirname(os.path.abspath(propensity.__file__)))
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def session_rows(n, seed=0, p=0.15):
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(FEATURES))) < p).astype(np.uint8)


def write_sessions_csv(path, X, ids=None, extra=True, newline="\n"):
    with open(path, "w", newline="") as f:
        cols = (["UserID"] if ids is not None else []) + FEATURES + (["ordered"] if extra else [])
        f.write(",".join(cols) + newline)
        for i, row in enumerate(X):
            cells = ([ids[i]] if ids is not None else []) + [str(v) for v in row]
            if extra:
                cells.append("0")
            f.write(",".join(cells) + newline)
    return path
