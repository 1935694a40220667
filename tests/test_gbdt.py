"""GradientBoostingClassifier: exactness (compression, threads, prefixes), parity with
XGBoost, early stopping, sklearn integration, persistence and bad input."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split

import propensity
from propensity import GradientBoostingClassifier
from propensity.learn.binning import BinMapper
from propensity.learn.compress import compress_rows
from propensity._core_loader import _core
from propensity.learn.trees import NODE_FIELDS

from _tree_data import continuous, funnel


def _fit(codes, counts, weights, n=20, **kw):
    p = dict(lr=0.3, depth=4, mcw=1.0, lam=1.0, sub=1.0, col=1.0, spw=1.0, esr=0, seed=1,
             jobs=2)
    p.update(kw)
    return _core.gbdt_fit(codes, counts, weights, None, None, None, n, p["lr"], p["depth"],
                          p["mcw"], p["lam"], p["sub"], p["col"], p["spw"], p["esr"], p["seed"],
                          p["jobs"])


def _score(res, B):
    t = tuple(res[k] for k in NODE_FIELDS)
    return _core.trees_score(B, t, 0, 0, 0.0, False, res["base_score"], 2, False)


def test_compressed_training_equals_plain_rows():
    X, y = funnel(8000, seed=2)
    w = np.random.default_rng(0).choice([1.0, 2.0, 0.5], size=len(y))
    B = BinMapper().fit_transform(X)
    n = len(y)
    counts = np.zeros((n, 2), np.int64)
    counts[np.arange(n), y] = 1
    weights = np.zeros((n, 2))
    weights[np.arange(n), y] = w
    cr = compress_rows(B, y, w)
    for spw in (1.0, 3.0):
        a = _fit(B, counts, weights, spw=spw)
        b = _fit(cr.rows, cr.counts, cr.weights, spw=spw)
        np.testing.assert_allclose(_score(a, B), _score(b, B), rtol=1e-9, atol=1e-9)
        assert a["feature"].shape == b["feature"].shape


def test_threads_agree_and_reference_scoring():
    X, y = continuous(5000, seed=3)
    kw = dict(n_estimators=15, subsample=0.7, colsample_bytree=0.6, random_state=4)
    a = GradientBoostingClassifier(n_jobs=1, **kw).fit(X, y)
    b = GradientBoostingClassifier(n_jobs=2, **kw).fit(X, y)
    for k in NODE_FIELDS:
        np.testing.assert_array_equal(a._trees[k], b._trees[k])
    B = a._bin_mapper.transform(X)
    np.testing.assert_array_equal(a._raw_scores(B), a._raw_scores(B, reference=True))
    np.testing.assert_array_equal(a.decision_function(X), a._raw_scores(B))


def test_prefix_and_truncate_equal_fresh_fit():
    X, y = funnel(6000, seed=4)
    kw = dict(max_depth=4, subsample=0.8, colsample_bytree=0.7, random_state=5, n_jobs=2)
    big = GradientBoostingClassifier(n_estimators=40, **kw).fit(X, y)
    fresh = GradientBoostingClassifier(n_estimators=15, **kw).fit(X, y)
    want = fresh.predict_proba(X)
    np.testing.assert_array_equal(big.predict_proba_prefix(X, n_estimators=15), want)
    both = big.predict_proba_prefixes(X, [dict(n_estimators=15), {}])
    np.testing.assert_array_equal(both[0], want[:, 1])
    np.testing.assert_array_equal(both[1], big.predict_proba(X)[:, 1])
    small = big.truncate(n_estimators=15)
    assert small.n_estimators == 15 and small.n_trees_ == 15
    np.testing.assert_array_equal(small.predict_proba(X), want)
    np.testing.assert_allclose(small.feature_importances_, fresh.feature_importances_)
    with pytest.raises(ValueError, match="n_estimators"):
        big.truncate(n_estimators=41)


def _auc_pair(X, y, **params):
    import xgboost as xgb

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    ours = GradientBoostingClassifier(**params, random_state=0, n_jobs=2).fit(Xtr, ytr)
    peer = xgb.XGBClassifier(**params, tree_method="hist", random_state=0, n_jobs=2).fit(Xtr, ytr)
    return (roc_auc_score(yte, ours.predict_proba(Xte)[:, 1]),
            roc_auc_score(yte, peer.predict_proba(Xte)[:, 1]))


@pytest.mark.slow
def test_auc_parity_with_xgboost():
    X, y = funnel(40000, seed=5)
    a, b = _auc_pair(X, y, n_estimators=100, max_depth=6, learning_rate=0.1)
    assert a >= b - 0.002, (a, b)
    Xc, yc = continuous(20000, p=20, seed=6)
    a, b = _auc_pair(Xc, yc, n_estimators=100, max_depth=6, learning_rate=0.1)
    assert a >= b - 0.002, (a, b)


def test_early_stopping():
    X, y = continuous(6000, seed=7)
    Xtr, Xv, ytr, yv = train_test_split(X, y, test_size=0.3, random_state=0)
    gb = GradientBoostingClassifier(n_estimators=500, learning_rate=0.5, max_depth=6,
                                    random_state=0)
    gb.fit(Xtr, ytr, eval_set=[(Xv, yv)], early_stopping_rounds=5)
    assert gb.best_iteration_ is not None and gb.best_iteration_ < 400
    assert gb.n_trees_ == gb.best_iteration_ + 1
    hist = gb.evals_result_["validation_0"]["logloss"]
    assert int(np.argmin(hist)) == gb.best_iteration_
    # the kept model is the one at the best iteration
    full = GradientBoostingClassifier(n_estimators=gb.best_iteration_ + 1, learning_rate=0.5,
                                      max_depth=6, random_state=0).fit(Xtr, ytr)
    np.testing.assert_array_equal(full.predict_proba(Xv), gb.predict_proba(Xv))
    with pytest.raises(ValueError, match="eval_set"):
        GradientBoostingClassifier().fit(Xtr, ytr, early_stopping_rounds=3)


def test_sklearn_integration_and_persistence(tmp_path):
    X, y = funnel(3000, p=8, seed=8)
    X[::11, 1] = np.nan
    gb = GradientBoostingClassifier(n_estimators=10, max_depth=3)
    assert clone(gb).get_params() == gb.get_params()
    gs = GridSearchCV(gb, {"learning_rate": [0.1, 0.3]}, cv=2, scoring="roc_auc").fit(X, y)
    assert gs.best_params_["learning_rate"] in (0.1, 0.3)
    gb.fit(X, y * 5 + 2)
    assert list(gb.classes_) == [2, 7]
    want = gb.predict_proba(X)
    np.testing.assert_allclose(gb.feature_importances_.sum(), 1.0)
    path = tmp_path / "gb.model"
    gb.save(path)
    got = propensity.learn.base.load_model(path)
    assert isinstance(got, GradientBoostingClassifier)
    np.testing.assert_array_equal(got.predict_proba(X), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(gb)).predict_proba(X), want)
    assert set(got.predict(X)) <= {2, 7}


def test_bad_input():
    X, y = funnel(500, p=8, seed=9)
    for bad, match in ((dict(learning_rate=0.0), "learning_rate"),
                       (dict(learning_rate=-1.0), "learning_rate"),
                       (dict(n_estimators=0), "n_estimators"),
                       (dict(subsample=1.5), "subsample"),
                       (dict(colsample_bytree=0.0), "colsample_bytree"),
                       (dict(max_depth=0), "max_depth"),
                       (dict(scale_pos_weight=0.0), "scale_pos_weight"),
                       (dict(reg_lambda=-1.0), "reg_lambda")):
        with pytest.raises(ValueError, match=match):
            GradientBoostingClassifier(**bad).fit(X, y)
    gb = GradientBoostingClassifier(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        gb.predict_proba(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="eval_set"):
        GradientBoostingClassifier(n_estimators=3).fit(X, y, eval_set=[(X[:, :7], y)])
    with pytest.raises(ValueError, match="infinite"):
        gb.predict_proba(np.full((2, 8), np.inf))
