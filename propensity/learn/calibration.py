"""Probability calibration fitted on out-of-fold scores: isotonic regression by
pool-adjacent-violators (the C core), or Platt scaling (a 1-D logistic fit by damped Newton steps, with Platt's targets).

A class-balanced model over-predicts the rare class; calibration maps its scores back
to observed purchase rates, so ``purchase_probability`` means what it says.
"""
import numpy as np

from .._core_loader import _core

__all__ = ["IsotonicCalibrator", "PlattCalibrator", "make_calibrator", "calibrator_from_state"]


def pav(y, w):
    """Weighted non-decreasing least-squares fit of ``y`` (already ordered by score,
    weights > 0): the fitted value of every point, by pool-adjacent-violators in the C
    core (``calibrate.c``; a NumPy loop took 11 s on 8M distinct out-of-fold scores)."""
    return _core.pav(np.ascontiguousarray(y, dtype=np.float64),
                     np.ascontiguousarray(w, dtype=np.float64))


def _points(scores, y, sample_weight):
    """(scores, labels, weights) of a calibration fit as flat float64 arrays (weights 1
    when None); ValueError when their lengths differ."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    w = np.ones_like(s) if sample_weight is None else \
        np.asarray(sample_weight, np.float64).ravel()
    if not (s.shape == y.shape == w.shape):
        raise ValueError(f"scores, y and sample_weight differ in length "
                         f"({s.shape[0]}, {y.shape[0]}, {w.shape[0]})")
    return s, y, w


class IsotonicCalibrator:
    """Isotonic map score -> probability, linear between the fitted points, clipped
    outside them (as scikit-learn's IsotonicRegression(out_of_bounds='clip'))."""

    kind = "isotonic"

    def fit(self, scores, y, sample_weight=None):
        s, y, w = _points(scores, y, sample_weight)
        for name, v in (("scores", s), ("y", y), ("sample_weight", w)):
            bad = np.flatnonzero(~np.isfinite(v))
            if bad.size:
                raise ValueError(f"isotonic calibration: {name}[{bad[0]}] is "
                                 f"{float(v[bad[0]])}; every value must be finite")
        keep = w > 0
        if not keep.all():
            s, y, w = s[keep], y[keep], w[keep]
        # merge tied scores first (binary data gives few distinct scores)
        xs, inv = np.unique(s, return_inverse=True)
        sw = np.bincount(inv, weights=w, minlength=xs.size)
        sy = np.bincount(inv, weights=w * y, minlength=xs.size)
        fitted = pav(sy / sw, sw)
        # keep only the knots where the fitted value changes (and the two ends)
        change = np.r_[True, np.diff(fitted) != 0] | np.r_[np.diff(fitted) != 0, True]
        self.x_ = xs[change]
        self.y_ = fitted[change]
        return self

    def transform(self, scores):
        s = np.asarray(scores, dtype=np.float64)
        if self.x_.size == 1:
            return np.full(s.shape, self.y_[0])
        return np.interp(s, self.x_, self.y_)

    def state(self):
        return {"kind": self.kind}, {"x": self.x_, "y": self.y_}


class PlattCalibrator:
    """p = 1 / (1 + exp(-(a * logit(score) + b))), Platt's method.

    As in Platt (2000) and scikit-learn's ``_sigmoid_calibration``, the targets are the
    labels pulled towards the prior, ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` (N+ and
    N- the weighted class totals), which keeps a and b finite even on scores that
    separate the classes. The weighted cross-entropy is convex in (a, b); it is minimised
    by Newton steps, each halved until it lowers the loss (a damped Newton method), from
    a = 0 and b = the log-odds of the targets."""

    kind = "platt"
    max_iter = 100

    def fit(self, scores, y, sample_weight=None):
        s, y, w = _points(scores, y, sample_weight)
        keep = w > 0
        z, y, w = _logit(s[keep]), y[keep], w[keep]
        pos = y > 0
        n_pos, n_neg = float(w[pos].sum()), float(w[~pos].sum())
        if n_pos + n_neg <= 0:
            raise ValueError("Platt calibration needs at least one row of positive weight")
        t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
        self.a_, self.b_, self.n_iter_ = _fit_sigmoid(z, t, w, self.max_iter)
        return self

    def transform(self, scores):
        z = _logit(np.asarray(scores, dtype=np.float64))
        return _expit(self.a_ * z + self.b_)

    def state(self):
        return {"kind": self.kind, "a": self.a_, "b": self.b_}, {}


def _expit(m):
    return np.exp(-np.logaddexp(0.0, -m))


def _fit_sigmoid(z, t, w, max_iter):
    """(a, b, iterations) minimising sum w * [log(1 + exp(m)) - t * m], m = a * z + b,
    for targets t in (0, 1): damped Newton with step halving."""
    def loss(a, b):
        m = a * z + b
        return float(np.sum(w * (np.logaddexp(0.0, m) - t * m)))

    total = float(w.sum())
    mean_t = float(np.sum(w * t)) / total
    a, b = 0.0, float(np.log(mean_t) - np.log1p(-mean_t))
    zc = z - float(np.sum(w * z)) / total
    if not np.any(zc != 0.0):  # one distinct score: only the intercept is identifiable
        return 0.0, b, 0
    f = loss(a, b)
    for it in range(1, max_iter + 1):
        p = _expit(a * z + b)
        r = w * (p - t)
        g = np.array([np.sum(r * z), np.sum(r)])
        h = w * p * (1.0 - p)
        H = np.array([[np.sum(h * z * z), np.sum(h * z)], [np.sum(h * z), np.sum(h)]])
        if np.abs(g).max() <= 1e-12 * total:
            return a, b, it - 1
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = g / max(H.trace(), 1e-300)  # a singular Hessian: a gradient step
        if not np.isfinite(step).all():
            step = g / max(H.trace(), 1e-300)
        scale = 1.0
        while scale > 1e-10:
            na, nb = a - scale * step[0], b - scale * step[1]
            nf = loss(na, nb)
            if nf <= f:
                break
            scale *= 0.5
        else:  # no step lowers the loss any more: at the minimum to rounding
            return a, b, it
        done = abs(f - nf) <= 1e-15 * max(1.0, abs(f)) and scale * np.abs(step).max() < 1e-10
        a, b, f = na, nb, nf
        if done:
            return a, b, it
    return a, b, max_iter


def _logit(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def make_calibrator(kind):
    if kind == "isotonic":
        return IsotonicCalibrator()
    if kind in ("platt", "sigmoid"):
        return PlattCalibrator()
    raise ValueError(f"calibration must be 'isotonic', 'platt' or None, got {kind!r}")


def calibrator_from_state(meta, arrays):
    """Rebuild a fitted calibrator from ``state()`` output (validated)."""
    kind = meta.get("kind")
    if kind == "isotonic":
        x, y = np.asarray(arrays["cal_x"], np.float64), np.asarray(arrays["cal_y"], np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0) \
                or not np.isfinite(x).all() or not ((y >= 0) & (y <= 1)).all():
            raise ValueError("invalid isotonic calibration arrays in the model document")
        c = IsotonicCalibrator()
        c.x_, c.y_ = x, y
        return c
    if kind == "platt":
        c = PlattCalibrator()
        c.a_, c.b_ = float(meta["a"]), float(meta["b"])
        if not (np.isfinite(c.a_) and np.isfinite(c.b_)):
            raise ValueError("invalid Platt calibration parameters in the model document")
        return c
    raise ValueError(f"unknown calibration kind {kind!r} in the model document")
