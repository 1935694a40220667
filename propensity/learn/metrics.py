"""Binary classification metrics in NumPy (no scikit-learn at run time).

Every function takes ``y_true`` (0/1), a score or a 0/1 prediction and an optional
``sample_weight``; the training pipeline passes weights because it scores compressed
rows (one row per distinct pattern and class, weighted by its count). Definitions follow
scikit-learn's, and the tests compare them with ``sklearn.metrics``.
"""
import numpy as np

__all__ = [
    "confusion_matrix", "precision_score", "recall_score", "f1_score", "roc_auc_score",
    "average_precision_score", "brier_score_loss", "roc_curve", "precision_recall_curve",
    "f1_threshold_curve", "best_f1_threshold", "classification_report",
    "binary_metrics", "cumulative_counts", "threshold_below", "gains_at",
]


def _prepare(y_true, y_other, sample_weight, what="y_score"):
    y_true = np.asarray(y_true).ravel()
    y_other = np.asarray(y_other, dtype=np.float64).ravel()
    if y_true.shape != y_other.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} values but {what} has {y_other.shape[0]}")
    if y_true.size == 0:
        raise ValueError("y_true is empty")
    labels = np.unique(y_true)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"y_true must hold 0/1 labels, found {labels[:5].tolist()}")
    if sample_weight is None:
        w = np.ones(y_true.shape[0])
    else:
        w = np.asarray(sample_weight, dtype=np.float64).ravel()
        if w.shape != y_true.shape:
            raise ValueError(f"sample_weight has {w.shape[0]} values, expected {y_true.shape[0]}")
    return y_true.astype(bool), y_other, w


def confusion_matrix(y_true, y_pred, sample_weight=None):
    """``[[tn, fp], [fn, tp]]`` (rows: true class, columns: predicted), as sklearn."""
    t, p, w = _prepare(y_true, y_pred, sample_weight, "y_pred")
    p = p > 0.5
    tp = w[t & p].sum()
    fp = w[~t & p].sum()
    fn = w[t & ~p].sum()
    tn = w[~t & ~p].sum()
    out = np.array([[tn, fp], [fn, tp]])
    if sample_weight is None:
        out = out.astype(np.int64)
    return out


def _prf(y_true, y_pred, sample_weight):
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, sample_weight)
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0
    return float(precision), float(recall), float(f1)


def precision_score(y_true, y_pred, sample_weight=None):
    """tp / (tp + fp); 0 when nothing is predicted positive (sklearn's zero_division=0)."""
    return _prf(y_true, y_pred, sample_weight)[0]


def recall_score(y_true, y_pred, sample_weight=None):
    return _prf(y_true, y_pred, sample_weight)[1]


def f1_score(y_true, y_pred, sample_weight=None):
    return _prf(y_true, y_pred, sample_weight)[2]


def _cumulative(y_true, y_score, sample_weight):
    """Weighted true/false positive counts at each distinct score, highest first."""
    t, s, w = _prepare(y_true, y_score, sample_weight)
    order = np.argsort(-s, kind="mergesort")
    s, t, w = s[order], t[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tps = np.cumsum(w * t)[last]
    fps = np.cumsum(w * ~t)[last]
    return tps, fps, s[last]


def cumulative_counts(y_true, y_score, sample_weight=None):
    """``(tps, fps, thresholds)``: the weighted positives and negatives scoring at least
    each distinct score, for the distinct scores from the highest down."""
    return _cumulative(y_true, y_score, sample_weight)


def gains_at(y_true, y_score, shares, sample_weight=None):
    """Cumulative gains: the (weighted) positives among the top ``shares`` (fractions in
    [0, 1]) of the rows by descending score, and the rows that makes.

    A tie group (rows of one score) that straddles a cut is split in proportion: taking
    a fraction f of its rows takes the fraction f of its positives (what a random order
    within the tie gives on average). Its weight is split the same way, so weighted
    distinct rows give exactly the figures of the rows they stand for. Returns
    ``(rows, positives)`` arrays, one value per share."""
    tps, fps, _ = _cumulative(y_true, y_score, sample_weight)
    rows = tps + fps
    cut = np.asarray(shares, dtype=np.float64) * rows[-1]
    return cut, np.interp(cut, np.r_[0.0, rows], np.r_[0.0, tps])


def roc_curve(y_true, y_score, sample_weight=None):
    """``(fpr, tpr, thresholds)`` with a leading (0, 0) point at threshold +inf."""
    tps, fps, thr = _cumulative(y_true, y_score, sample_weight)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thr = np.r_[np.inf, thr]
    if tps[-1] <= 0 or fps[-1] <= 0:
        raise ValueError("ROC needs both classes in y_true")
    return fps / fps[-1], tps / tps[-1], thr


def roc_auc_score(y_true, y_score, sample_weight=None):
    """Area under the ROC curve (trapezoids, so tied scores count one half)."""
    fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(y_true, y_score, sample_weight=None):
    """``(precision, recall, thresholds)`` in sklearn's order (>= 1.3): every distinct
    score as a threshold, increasing, ending with the point (precision 1, recall 0)."""
    tps, fps, thr = _cumulative(y_true, y_score, sample_weight)
    if tps[-1] <= 0:
        raise ValueError("the precision-recall curve needs positives in y_true")
    precision = tps / np.maximum(tps + fps, 1e-300)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thr[::-1]


def average_precision_score(y_true, y_score, sample_weight=None):
    """sum_n (R_n - R_{n-1}) P_n over the distinct thresholds (no interpolation)."""
    precision, recall, _ = precision_recall_curve(y_true, y_score, sample_weight)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def brier_score_loss(y_true, y_prob, sample_weight=None):
    t, p, w = _prepare(y_true, y_prob, sample_weight, "y_prob")
    return float(np.sum(w * (p - t) ** 2) / np.sum(w))


def f1_threshold_curve(y_true, y_score, sample_weight=None):
    """F1 of ``y_score >= thr`` for every distinct score ``thr`` (highest first).

    Returns ``(thresholds, f1, precision, recall)``.
    """
    tps, fps, thr = _cumulative(y_true, y_score, sample_weight)
    pos = tps[-1]
    f1 = 2 * tps / np.maximum(pos + tps + fps, 1e-300)
    precision = tps / np.maximum(tps + fps, 1e-300)
    recall = tps / pos if pos > 0 else np.zeros_like(tps)
    return thr, f1, precision, recall


def best_f1_threshold(y_true, y_score, sample_weight=None):
    """The decision threshold (predict 1 when score >= it) that maximises F1.

    Scores are often discrete (binary features), so the returned threshold lies halfway
    between the chosen score and the next lower one: robust to tiny numeric differences
    at prediction. Returns ``(threshold, f1)``.
    """
    thr, f1, _, _ = f1_threshold_curve(y_true, y_score, sample_weight)
    i = int(np.argmax(f1))
    return threshold_below(thr, i), float(f1[i])


def threshold_below(thresholds, i):
    """The decision threshold that selects the distinct scores ``thresholds[:i + 1]``
    (highest first) and no other: halfway between ``thresholds[i]`` and the next lower
    distinct score (robust to tiny numeric differences at prediction)."""
    thr = thresholds
    lower = thr[i + 1] if i + 1 < thr.size else max(0.0, thr[i] - 1e-6)
    return float((thr[i] + lower) / 2.0)


def classification_report(y_true, y_pred, target_names=("0", "1"), digits=4,
                          sample_weight=None):
    """A text report like sklearn's (precision, recall, f1, support per class); with
    integer ``sample_weight`` (row counts of weighted distinct rows) the supports are the
    row counts."""
    t, p, w = _prepare(y_true, y_pred, sample_weight, "y_pred")
    p = p > 0.5
    rows = []
    for cls, name in ((False, target_names[0]), (True, target_names[1])):
        tt, pp = t == cls, p == cls
        tp = float(w[tt & pp].sum())
        prec = tp / w[pp].sum() if w[pp].sum() else 0.0
        rec = tp / w[tt].sum() if w[tt].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append((name, prec, rec, f1, int(round(w[tt].sum()))))
    n = int(round(w.sum()))
    acc = float(w[t == p].sum() / w.sum())
    macro = [np.mean([r[i] for r in rows]) for i in (1, 2, 3)]
    weighted = [sum(r[i] * r[4] for r in rows) / n for i in (1, 2, 3)]
    width = max(12, *(len(r[0]) for r in rows))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for name, prec, rec, f1, sup in rows:
        lines.append(f"{name:>{width}} {prec:9.{digits}f} {rec:9.{digits}f} {f1:9.{digits}f} {sup:9d}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {acc:9.{digits}f} {n:9d}")
    lines.append(f"{'macro avg':>{width}} " + " ".join(f"{v:9.{digits}f}" for v in macro) + f" {n:9d}")
    lines.append(f"{'weighted avg':>{width}} " + " ".join(f"{v:9.{digits}f}" for v in weighted)
                 + f" {n:9d}")
    return "\n".join(lines) + "\n"


def binary_metrics(y_true, proba, threshold, sample_weight=None):
    """The evaluation record of one model: f1, precision, recall, roc_auc, avg_precision,
    brier, threshold, confusion matrix (predict 1 when proba >= threshold). With
    ``sample_weight`` (row counts of weighted distinct rows) every figure equals the one
    of the rows the weights count; the confusion matrix then holds those row counts."""
    pred = (np.asarray(proba) >= threshold).astype(np.uint8)
    precision, recall, f1 = _prf(y_true, pred, sample_weight)
    cm = confusion_matrix(y_true, pred, sample_weight)
    return {
        "f1": f1, "precision": precision, "recall": recall,
        "roc_auc": roc_auc_score(y_true, proba, sample_weight),
        "avg_precision": average_precision_score(y_true, proba, sample_weight),
        "brier": brier_score_loss(y_true, proba, sample_weight),
        "threshold": float(threshold),
        "confusion_matrix": np.rint(cm).astype(np.int64).tolist(),
    }
