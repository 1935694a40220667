"""Platt calibration: converges on random labels and on separable scores, and matches
scikit-learn's sigmoid calibration (Platt's method on the logit of the score)."""
import numpy as np
import pytest

from propensity.learn.calibration import PlattCalibrator, _logit, calibrator_from_state


def _log_loss(y, p):
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


@pytest.mark.parametrize("kind", ["uniform", "binary", "extreme"])
def test_random_labels_give_the_prior(kind):
    rng = np.random.default_rng(7)
    n = 4000
    s = {"uniform": rng.uniform(size=n),
         "binary": rng.integers(0, 2, n).astype(float),  # scores exactly 0 and 1
         "extreme": rng.uniform(size=n) ** 12}[kind]
    y = rng.integers(0, 2, n).astype(float)
    c = PlattCalibrator().fit(s, y)
    p = c.transform(s)
    assert np.isfinite([c.a_, c.b_]).all()
    assert abs(c.a_) < 0.05 and c.n_iter_ < PlattCalibrator.max_iter
    assert abs(_log_loss(y, p) - np.log(2)) < 2e-3
    # at the optimum of a convex loss: no (a, b) nearby is better
    base = _log_loss(y, p)
    for da, db in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        q = 1 / (1 + np.exp(-((c.a_ + da) * _logit(s) + c.b_ + db)))
        assert _log_loss(y, q) >= base - 1e-12


@pytest.mark.parametrize("gap", [0.2, 1e-15])
def test_separable_scores_give_bounded_parameters(gap):
    n = 500
    if gap > 0.1:
        rng = np.random.default_rng(3)
        s = np.r_[rng.uniform(0, 0.5 - gap, n), rng.uniform(0.5 + gap, 1, n)]
    else:  # scores at the clipping limits of the logit
        s = np.r_[np.full(n, gap), np.full(n, 1 - gap)]
    y = np.r_[np.zeros(n), np.ones(n)]
    c = PlattCalibrator().fit(s, y)
    assert np.isfinite([c.a_, c.b_]).all() and 0 < c.a_ < 50 and abs(c.b_) < 5
    p = c.transform(s)
    t = np.where(y == 1, (n + 1) / (n + 2), 1 / (n + 2))  # Platt's targets
    # the optimum: the loss gradient in b and in a vanishes
    assert abs(np.mean(p - t)) < 1e-9 and abs(np.mean((p - t) * _logit(s))) < 1e-8
    if gap < 0.1:  # two distinct scores: the fit is the targets themselves
        np.testing.assert_allclose(p, t, atol=1e-9)
    assert p[y == 1].min() > 0.5 > p[y == 0].max()


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_sklearn_sigmoid_calibration(weighted):
    calibration = pytest.importorskip("sklearn.calibration")
    rng = np.random.default_rng(11)
    x = rng.normal(size=5000)
    y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-(2 * x - 0.5)))).astype(int)
    s = 1 / (1 + np.exp(-0.7 * x))  # a miscalibrated score
    w = rng.uniform(0.5, 2.0, size=5000) if weighted else None
    ours = PlattCalibrator().fit(s, y, w)
    A, B = calibration._sigmoid_calibration(_logit(s), y, w)
    grid = np.linspace(0.001, 0.999, 999)
    ref = 1 / (1 + np.exp(A * _logit(grid) + B))
    np.testing.assert_allclose(ours.transform(grid), ref, rtol=0, atol=1e-6)


def test_constant_scores_and_state_round_trip():
    y = np.array([0, 1, 1, 1], dtype=float)
    c = PlattCalibrator().fit(np.full(4, 0.3), y)
    assert c.a_ == 0.0
    np.testing.assert_allclose(c.transform(np.array([0.1])), (3 + 1) / (3 + 2) * 3 / 4
                               + 1 / (1 + 2) * 1 / 4)
    meta, arrays = PlattCalibrator().fit(np.array([0.2, 0.4, 0.6, 0.9]), y).state()
    back = calibrator_from_state(meta, arrays)
    assert (back.a_, back.b_) == (meta["a"], meta["b"])
    with pytest.raises(ValueError, match="invalid Platt"):
        calibrator_from_state({"kind": "platt", "a": float("nan"), "b": 0.0}, {})
    with pytest.raises(ValueError, match="positive weight"):
        PlattCalibrator().fit(np.array([0.5]), np.array([1.0]), np.array([0.0]))
