"""propensity.learn.metrics against sklearn.metrics (the reference), with and without weights,
on tied (discrete) and continuous scores."""
import numpy as np
import pytest

sk = pytest.importorskip("sklearn.metrics")
from propensity.learn import metrics as M  # noqa: E402


def _data(seed, n, tied):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(np.uint8)
    s = np.clip(rng.random(n) * 0.6 + 0.4 * y * rng.random(n), 0, 1)
    if tied:
        s = np.round(s, 1)
    return y, s, rng.random(n) * 3


@pytest.mark.parametrize("seed,n,tied,weighted", [
    (0, 50, True, False), (1, 2000, True, True), (2, 2000, False, False), (3, 777, False, True)])
def test_metrics_match_sklearn(seed, n, tied, weighted):
    y, s, w = _data(seed, n, tied)
    sw = w if weighted else None
    pred = (s >= 0.5).astype(int)
    assert M.f1_score(y, pred, sw) == pytest.approx(sk.f1_score(y, pred, sample_weight=sw))
    assert M.precision_score(y, pred, sw) == pytest.approx(sk.precision_score(y, pred, sample_weight=sw))
    assert M.recall_score(y, pred, sw) == pytest.approx(sk.recall_score(y, pred, sample_weight=sw))
    assert M.roc_auc_score(y, s, sw) == pytest.approx(sk.roc_auc_score(y, s, sample_weight=sw))
    assert M.average_precision_score(y, s, sw) == pytest.approx(
        sk.average_precision_score(y, s, sample_weight=sw))
    assert M.brier_score_loss(y, s, sw) == pytest.approx(sk.brier_score_loss(y, s, sample_weight=sw))
    np.testing.assert_allclose(M.confusion_matrix(y, pred, sw),
                               sk.confusion_matrix(y, pred, sample_weight=sw))
    p, r, t = M.precision_recall_curve(y, s, sw)
    P, R, T = sk.precision_recall_curve(y, s, sample_weight=sw)
    np.testing.assert_allclose(p, P)
    np.testing.assert_allclose(r, R)
    np.testing.assert_allclose(t, T)
    fpr, tpr, thr = M.roc_curve(y, s, sw)
    F, TP, TH = sk.roc_curve(y, s, sample_weight=sw, drop_intermediate=False)
    np.testing.assert_allclose(fpr, F)
    np.testing.assert_allclose(tpr, TP)
    np.testing.assert_allclose(thr[1:], TH[1:])


def test_zero_division_and_unweighted_confusion_is_int():
    y = np.array([0, 0, 1, 1])
    assert M.precision_score(y, np.zeros(4)) == 0.0
    assert M.f1_score(y, np.zeros(4)) == sk.f1_score(y, np.zeros(4), zero_division=0)
    assert M.confusion_matrix(y, [0, 1, 1, 1]).dtype == np.int64


def test_best_f1_threshold_is_the_maximum_over_all_cuts():
    y, s, w = _data(5, 3000, True)
    thr, f1 = M.best_f1_threshold(y, s, w)
    brute = max(sk.f1_score(y, s >= t, sample_weight=w) for t in np.unique(s))
    assert f1 == pytest.approx(brute)
    assert sk.f1_score(y, s >= thr, sample_weight=w) == pytest.approx(brute)
    assert thr not in set(np.unique(s))  # halfway between two scores


def test_classification_report_matches_sklearn_numbers():
    y, s, _ = _data(7, 500, False)
    pred = (s >= 0.5).astype(int)
    text = M.classification_report(y, pred)
    ref = sk.precision_recall_fscore_support(y, pred)
    for cls in (0, 1):
        assert f"{ref[2][cls]:.4f}" in text
    assert f"{np.mean(y == pred):.4f}" in text


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="0/1"):
        M.f1_score([0, 2], [0, 1])
    with pytest.raises(ValueError, match="both classes"):
        M.roc_auc_score([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="y_score has 1"):
        M.roc_auc_score([0, 1], [0.2])
