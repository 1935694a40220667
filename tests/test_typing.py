"""Types: the package is marked typed (PEP 561) and its public API is annotated, so a
user's type checker sees it."""
import inspect
import os
import subprocess
import sys
import textwrap

import pytest

import propensity
from propensity import dask as pdask
from propensity import datasets
from propensity.training.pipeline import run_training

PUBLIC = [
    propensity.RandomForestClassifier.fit, propensity.RandomForestClassifier.predict_proba,
    propensity.RandomForestClassifier.predict, propensity.RandomForestClassifier.truncate,
    propensity.GradientBoostingClassifier.fit,
    propensity.GradientBoostingClassifier.decision_function,
    propensity.LogisticRegression.fit, propensity.LogisticRegression.predict_proba,
    propensity.LogisticRegression.predict, propensity.LogisticRegression.decision_function,
    propensity.InteractionFeatureTransformer.fit,
    propensity.InteractionFeatureTransformer.transform,
    propensity.PropensityModel.fit, propensity.PropensityModel.predict_proba,
    propensity.PropensityModel.predict, propensity.PropensityModel.from_estimator,
    propensity.CustomerPropensityPredictor.__init__,
    propensity.CustomerPropensityPredictor.predict,
    propensity.CustomerPropensityPredictor.predict_from_file,
    propensity.CustomerPropensityPredictor.load_best_model,
    propensity.load_model, run_training, pdask.fit_dask, pdask.predict_dask,
    datasets.make_sessions, datasets.write_sessions_csv,
]


def test_package_is_marked_typed():
    folder = os.path.dirname(propensity.__file__)
    assert os.path.isfile(os.path.join(folder, "py.typed"))
    assert os.path.isfile(os.path.join(folder, "_core.pyi"))


@pytest.mark.parametrize("fn", PUBLIC, ids=lambda f: f.__qualname__)
def test_public_api_is_annotated(fn):
    sig = inspect.signature(fn)
    assert sig.return_annotation is not inspect.Signature.empty
    for name, p in sig.parameters.items():
        if name in ("self", "cls") or p.kind is p.VAR_KEYWORD:
            continue
        assert p.annotation is not inspect.Parameter.empty, name


def test_a_users_type_checker_sees_the_annotations(tmp_path):
    pytest.importorskip("mypy")
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent("""
        import numpy as np
        import propensity

        X = np.zeros((4, 2))
        rf = propensity.RandomForestClassifier().fit(X, [0, 1, 0, 1])
        reveal_type(rf)
        proba = rf.predict_proba(X)
        wrong: int = proba
    """))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, MYPYPATH=root)
    res = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports",
                          "silent", "--ignore-missing-imports", "--no-error-summary",
                          "--config-file", os.devnull, str(user)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    out = res.stdout
    assert 'Revealed type is "propensity.learn.forest.RandomForestClassifier"' in out, out
    assert "Incompatible types in assignment" in out and '"int"' in out, out
