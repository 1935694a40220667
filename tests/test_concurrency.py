"""Concurrency: 8 threads scoring with one model at once give exactly the results of a
single thread (the C core keeps no global state and releases the GIL while scoring)."""
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import propensity
from conftest import FEATURES, session_rows
from propensity.datasets import make_sessions

N_THREADS = 8


def _hammer(fn, inputs):
    """Run fn(x) for every x in inputs on 8 threads started together; results in order."""
    barrier = threading.Barrier(N_THREADS)

    def task(i):
        barrier.wait()
        return [fn(x) for x in inputs[i::N_THREADS]]

    with ThreadPoolExecutor(N_THREADS) as pool:
        parts = list(pool.map(task, range(N_THREADS)))
    out = [None] * len(inputs)
    for i, part in enumerate(parts):
        out[i::N_THREADS] = part
    return out


def _blocks():
    X = session_rows(40_000, seed=5)
    return [X[i:i + 2500] for i in range(0, len(X), 2500)] * 2


@pytest.fixture(scope="module")
def fitted():
    df = make_sessions(20_000, seed=2)
    y = df["ordered"].to_numpy()
    X = df.drop(columns=["UserID", "ordered"]).to_numpy(np.uint8)
    out = {"LogisticRegression": propensity.LogisticRegression().fit(X, y)}
    for name in ("RandomForestClassifier", "GradientBoostingClassifier"):
        cls = getattr(propensity, name, None)
        if cls is not None:
            out[name] = cls(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    return out


@pytest.mark.parametrize("name", ["LogisticRegression", "RandomForestClassifier",
                                  "GradientBoostingClassifier"])
def test_estimator_threads_equal_single_thread(fitted, name):
    if name not in fitted:
        pytest.skip(f"propensity.{name} is not in this checkout yet")
    est = fitted[name]
    blocks = _blocks()
    single = [est.predict_proba(b) for b in blocks]
    many = _hammer(est.predict_proba, blocks)
    for a, b in zip(single, many):
        assert a.tobytes() == b.tobytes()


def test_pipeline_models_threads_equal_single_thread(model_dir):
    blocks = _blocks()
    for path in sorted(glob.glob(os.path.join(model_dir, "*_model.propmodel"))):
        model = propensity.load_model(path)
        single = [model.predict_proba(b) for b in blocks]
        many = _hammer(model.predict_proba, blocks)
        for a, b in zip(single, many):
            assert a.tobytes() == b.tobytes(), os.path.basename(path)


def test_predictor_threads_equal_single_thread(model_dir):
    from propensity.scoring.predictor import CustomerPropensityPredictor

    pred = CustomerPropensityPredictor(model_dir)
    pred.load_best_model()
    frames = []
    for k, b in enumerate(_blocks()[:16]):
        df = pd.DataFrame(b, columns=FEATURES)
        df.insert(0, "UserID", [f"u{k}-{i}" for i in range(len(b))])
        frames.append(df)

    def score(df):
        return pred.predict(df)[["UserID", "predicted_ordered", "purchase_probability"]]

    single = [score(df) for df in frames]
    many = _hammer(score, frames)
    for a, b in zip(single, many):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
