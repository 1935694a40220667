"""Probability calibration fitted on out-of-fold scores: isotonic regression by
pool-adjacent-violators (NumPy), or Platt scaling (a 1-D logistic fit by Newton steps).

A class-balanced model over-predicts the rare class; calibration maps its scores back
to observed purchase rates, so ``purchase_probability`` means what it says.
"""
import numpy as np

__all__ = ["IsotonicCalibrator", "PlattCalibrator", "make_calibrator", "calibrator_from_state"]


def pav(y, w):
    """Weighted non-decreasing least-squares fit of ``y`` (already ordered by score).
    Returns the fitted value of every point."""
    n = y.shape[0]
    vals = np.empty(n)
    wts = np.empty(n)
    size = np.empty(n, dtype=np.int64)
    top = -1
    for i in range(n):
        top += 1
        vals[top], wts[top], size[top] = y[i], w[i], 1
        while top > 0 and vals[top - 1] >= vals[top]:
            tw = wts[top - 1] + wts[top]
            vals[top - 1] = (vals[top - 1] * wts[top - 1] + vals[top] * wts[top]) / tw
            wts[top - 1] = tw
            size[top - 1] += size[top]
            top -= 1
    return np.repeat(vals[:top + 1], size[:top + 1])


class IsotonicCalibrator:
    """Isotonic map score -> probability, linear between the fitted points, clipped
    outside them (as scikit-learn's IsotonicRegression(out_of_bounds='clip'))."""

    kind = "isotonic"

    def fit(self, scores, y, sample_weight=None):
        s = np.asarray(scores, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        w = np.ones_like(s) if sample_weight is None else np.asarray(sample_weight, np.float64)
        keep = w > 0
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
    """p = 1 / (1 + exp(-(a * logit(score) + b))), fitted by weighted Newton steps."""

    kind = "platt"

    def fit(self, scores, y, sample_weight=None):
        s = np.asarray(scores, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        w = np.ones_like(s) if sample_weight is None else np.asarray(sample_weight, np.float64)
        z = _logit(s)
        a, b = 1.0, 0.0
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(a * z + b)))
            g = np.array([np.sum(w * (p - y) * z), np.sum(w * (p - y))])
            h = w * p * (1 - p)
            H = np.array([[np.sum(h * z * z), np.sum(h * z)], [np.sum(h * z), np.sum(h)]])
            H += 1e-9 * np.eye(2) * max(1.0, H.trace())
            step = np.linalg.solve(H, g)
            a, b = a - step[0], b - step[1]
            if np.abs(step).max() < 1e-10:
                break
        self.a_, self.b_ = float(a), float(b)
        return self

    def transform(self, scores):
        z = _logit(np.asarray(scores, dtype=np.float64))
        return 1.0 / (1.0 + np.exp(-(self.a_ * z + self.b_)))

    def state(self):
        return {"kind": self.kind, "a": self.a_, "b": self.b_}, {}


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
        return c
    raise ValueError(f"unknown calibration kind {kind!r} in the model document")
