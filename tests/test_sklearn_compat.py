"""scikit-learn compatibility: the estimators pass scikit-learn's own estimator checks
(expected failures declared by the estimators, with their reasons) and behave as
scikit-learn users expect; without scikit-learn the package still imports and works."""
import inspect
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import DataConversionWarning  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import propensity  # noqa: E402
from propensity import (GradientBoostingClassifier, InteractionFeatureTransformer,  # noqa: E402
                        LogisticRegression, RandomForestClassifier, load_model)
from propensity.learn.features import SESSION_FEATURES  # noqa: E402

ESTIMATORS = [RandomForestClassifier(n_estimators=10, random_state=0),
              GradientBoostingClassifier(n_estimators=10, random_state=0),
              LogisticRegression(),
              InteractionFeatureTransformer()]


def _expected_failed_checks(estimator):
    failed = dict(estimator._expected_failed_checks)
    if sklearn.__version__.startswith("1.6.") and isinstance(estimator, LogisticRegression):
        # not the estimator's failure: scikit-learn 1.6's check makes y binary by comparing
        # it with its first element, before shuffling for the weighted fit and after
        # repeating for the other, so the two fits see different labels (fixed in 1.7)
        failed["check_sample_weight_equivalence_on_dense_data"] = (
            "scikit-learn 1.6 relabels y differently for the weighted and the repeated fit")
    return failed


_PARAMS = inspect.signature(parametrize_with_checks).parameters
if "expected_failed_checks" in _PARAMS:  # scikit-learn >= 1.6
    _strict = {"xfail_strict": True} if "xfail_strict" in _PARAMS else {}
    _checks = parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks,
                                      **_strict)
else:  # scikit-learn < 1.6 reads the estimators' _xfail_checks tag itself
    _checks = parametrize_with_checks(ESTIMATORS)


@_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failures_are_declared_with_a_reason():
    for est in (RandomForestClassifier(), GradientBoostingClassifier()):
        failed = est._expected_failed_checks
        assert set(failed) == {"check_sample_weight_equivalence_on_dense_data"}
        assert all(len(reason) > 40 for reason in failed.values())
    assert LogisticRegression()._expected_failed_checks == {}
    assert InteractionFeatureTransformer()._expected_failed_checks == {}


def _data(n=200, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


def test_not_fitted_error_is_sklearns():
    assert propensity.learn.base.NotFittedError is SkNotFittedError
    assert propensity.errors.NotFittedError is SkNotFittedError
    X, _ = _data()
    for est in (RandomForestClassifier(), GradientBoostingClassifier(), LogisticRegression()):
        with pytest.raises(SkNotFittedError, match="not fitted"):
            est.predict_proba(X)
    with pytest.raises(SkNotFittedError):
        GradientBoostingClassifier().decision_function(X)
    with pytest.raises(SkNotFittedError):
        InteractionFeatureTransformer().transform(X)


@pytest.mark.parametrize("est", ESTIMATORS[:3], ids=lambda e: type(e).__name__)
def test_sparse_input_is_refused_clearly(est):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _data()
    with pytest.raises(TypeError, match=r"^X is a sparse matrix \(csr_matrix\); sparse input "
                                        r"is not supported: pass a dense array"):
        clone(est).fit(sparse.csr_matrix(X), y)
    fitted = clone(est).fit(X, y)
    with pytest.raises(TypeError, match="sparse input is not supported"):
        fitted.predict(sparse.csr_array(X))


@pytest.mark.parametrize("est", ESTIMATORS[:3], ids=lambda e: type(e).__name__)
def test_column_shaped_y_warns_and_is_raveled(est):
    X, y = _data()
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        a = clone(est).fit(X, y.reshape(-1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        b = clone(est).fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def _allow_nan(est):
    try:
        from sklearn.utils import get_tags
    except ImportError:  # scikit-learn < 1.6: the dict of _get_tags
        return est._get_tags()["allow_nan"]
    return get_tags(est).input_tags.allow_nan


def test_nan_tags_say_what_the_estimators_accept():
    X, y = _data()
    X[3, 1] = np.nan
    assert _allow_nan(LogisticRegression()) is False
    with pytest.raises(ValueError, match="missing value"):
        LogisticRegression().fit(X, y)
    for est in (RandomForestClassifier(n_estimators=5), GradientBoostingClassifier(n_estimators=5),
                InteractionFeatureTransformer()):
        assert _allow_nan(est) is True
        est.fit(X, y)


def test_classifier_and_transformer_tags():
    try:
        from sklearn.utils import get_tags
    except ImportError:  # scikit-learn < 1.6
        tags = RandomForestClassifier()._get_tags()
        assert tags["binary_only"] is True and tags["requires_y"] is True
        assert RandomForestClassifier()._estimator_type == "classifier"
        assert tags["_xfail_checks"] == RandomForestClassifier._expected_failed_checks
        return
    tags = get_tags(RandomForestClassifier())
    assert tags.estimator_type == "classifier" and tags.classifier_tags.multi_class is False
    assert tags.input_tags.sparse is False
    assert get_tags(InteractionFeatureTransformer()).transformer_tags is not None


def test_score_cross_val_score_and_grid_search_without_scoring():
    from sklearn.metrics import accuracy_score

    X, y = _data(300)
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    assert rf.score(X, y) == accuracy_score(y, rf.predict(X))
    scores = cross_val_score(LogisticRegression(), X, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.6).all()
    grid = GridSearchCV(GradientBoostingClassifier(n_estimators=10, random_state=0),
                        {"max_depth": [2, 3]}, cv=3).fit(X, y)
    assert grid.best_params_["max_depth"] in (2, 3)
    assert grid.score(X, y) == accuracy_score(y, grid.predict(X))


def _session_frame(n=300, seed=1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.integers(0, 2, size=(n, len(SESSION_FEATURES))).astype(np.uint8),
                      columns=SESSION_FEATURES)
    y = ((df["saw_checkout"] + df["sign_in"] + rng.integers(0, 2, n)) >= 2).astype(int)
    return df, y


def test_set_output_pandas_and_feature_names_through_a_pipeline():
    df, y = _session_frame()
    ift = InteractionFeatureTransformer().set_output(transform="pandas")
    out = ift.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(ift.get_feature_names_out())
    assert np.array_equal(out.to_numpy(), InteractionFeatureTransformer().fit_transform(df))

    pipe = Pipeline([("features", InteractionFeatureTransformer()),
                     ("model", RandomForestClassifier(n_estimators=10, random_state=0))])
    pipe.set_output(transform="pandas").fit(df, y)
    assert list(pipe.feature_names_in_) == SESSION_FEATURES
    assert list(pipe[-1].feature_names_in_) == list(pipe[0].get_feature_names_out())
    direct = RandomForestClassifier(n_estimators=10, random_state=0).fit(
        InteractionFeatureTransformer().fit_transform(df), y)
    assert np.array_equal(pipe.predict_proba(df), direct.predict_proba(
        InteractionFeatureTransformer().fit_transform(df)))


def test_html_repr_is_sklearns():
    html = RandomForestClassifier(n_estimators=7)._repr_html_()
    assert "RandomForestClassifier" in html and "n_estimators" in html
    assert repr(RandomForestClassifier(n_estimators=7)) == "RandomForestClassifier(n_estimators=7)"


def test_get_feature_names_out_checks_input_features():
    df, _ = _session_frame(20)
    ift = InteractionFeatureTransformer().fit(df)
    same = ift.get_feature_names_out(SESSION_FEATURES)
    assert np.array_equal(same, ift.get_feature_names_out())
    with pytest.raises(ValueError, match="input_features"):
        ift.get_feature_names_out(["a"] * len(SESSION_FEATURES))


class MyRF(RandomForestClassifier):
    """A user's subclass with an extra method."""

    def positive_share(self, X):
        return float(self.predict(X).mean())


class MyLR(LogisticRegression):
    pass


class MyGB(GradientBoostingClassifier):
    pass


@pytest.mark.parametrize("cls", [MyRF, MyLR, MyGB])
def test_fitted_subclass_pickles_and_saves(cls, tmp_path):
    X, y = _data()
    est = cls(**({} if cls is MyLR else {"n_estimators": 8, "random_state": 3})).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    assert type(back) is cls
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.get_params() == est.get_params()
    # the model document names the registered base class, which load_model restores
    path = tmp_path / "m.model"
    est.save(path)
    loaded = load_model(path)
    assert type(loaded) is cls.__mro__[1]
    assert np.array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert type(cls.from_bytes(est.to_bytes())) is cls
    if cls is MyRF:
        assert back.positive_share(X) == est.positive_share(X)
    with pytest.raises(ValueError, match="holds a"):
        MyRF.from_bytes(LogisticRegression().fit(X, y).to_bytes())


_WITHOUT_SKLEARN = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "sklearn" or name.startswith("sklearn."):
                raise ImportError("scikit-learn is hidden for this test")
            return None

    sys.meta_path.insert(0, Block())
    import pickle
    import numpy as np
    import propensity
    from propensity.learn import base
    assert base.HAVE_SKLEARN is False
    assert "sklearn" not in sys.modules
    from propensity.errors import NotFittedError, PropensityError
    assert issubclass(NotFittedError, PropensityError)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    try:
        propensity.RandomForestClassifier().predict(X)
    except NotFittedError:
        pass
    else:
        raise AssertionError("no NotFittedError")
    for est in (propensity.RandomForestClassifier(n_estimators=5, random_state=0),
                propensity.GradientBoostingClassifier(n_estimators=5, random_state=0),
                propensity.LogisticRegression()):
        est.fit(X, y)
        assert est.score(X, y) > 0.8
        again = pickle.loads(pickle.dumps(est))
        assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
        assert repr(est).startswith(type(est).__name__ + "(")
        est.set_params(n_jobs=1)
        assert est.get_params()["n_jobs"] == 1
    ift = propensity.InteractionFeatureTransformer()
    assert ift.fit_transform(X).shape == (120, 3)
    print("ok without scikit-learn")
""")


def test_package_works_without_sklearn():
    res = subprocess.run([sys.executable, "-c", _WITHOUT_SKLEARN], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok without scikit-learn")


def test_global_pandas_output_does_not_change_the_package_scores():
    df, y = _session_frame(400, seed=4)
    model = propensity.PropensityModel(
        estimator=LogisticRegression(), calibration="platt", cv=2).fit(df, y)
    plain = model.predict_proba(df)
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(InteractionFeatureTransformer().fit_transform(df), pd.DataFrame)
        again = propensity.PropensityModel(
            estimator=LogisticRegression(), calibration="platt", cv=2).fit(df, y)
        np.testing.assert_array_equal(again.predict_proba(df), plain)
        np.testing.assert_array_equal(model.predict_proba(df), plain)
        arr = model.transformer_.transform_array(df)
    assert isinstance(arr, np.ndarray)


def test_commands_start_without_scikit_learn():
    """The package's commands use the fallback classes (importing scikit-learn would cost
    them 0.65 s of CPU at each start); a library process gets scikit-learn's."""
    from propensity import _sklearn
    assert _sklearn._is_command(["python", "-m", "propensity.predict", "--input_file", "x"], "-m")
    assert _sklearn._is_command(["python", "-mpropensity.train"], "-m")
    assert _sklearn._is_command(["/venv/bin/python", "/venv/bin/propensity-train"],
                                "/venv/bin/propensity-train")
    assert not _sklearn._is_command(["python", "-m", "pytest", "-m", "slow"], "-m")
    assert not _sklearn._is_command(["python", "-c", "import propensity"], "-c")
    assert not _sklearn._is_command(["python", "script.py"], "script.py")
    assert _sklearn.wanted()        # this test process
    for module in ("propensity.train", "propensity.predict"):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"],
                             capture_output=True, text=True, check=True)
        imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
        assert "propensity" in imported, module
        assert not [m for m in imported if m == "sklearn" or m.startswith("sklearn.")], module
