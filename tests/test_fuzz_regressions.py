"""Regression tests of the loader bugs fuzz/fuzz_modelio.py found, plus a short seeded
run of the same mutator (the atheris harness is the long run)."""
import json
import os
import sys

import numpy as np
import pytest

from propensity import LogisticRegression

from propensity.io import modelio as _modelio
from propensity.learn.base import BaseEstimator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz"))
import modelio_mutator as mm  # noqa: E402


@pytest.fixture(scope="module")
def lr_doc():
    rng = np.random.default_rng(0)
    X = (rng.random((300, 5)) < 0.3).astype(np.uint8)
    y = (X[:, 0] | (rng.random(300) < 0.1)).astype(int)
    return LogisticRegression().fit(X, y).to_bytes()


def _edit(doc, fn):
    major, minor, header, blob = mm.split(doc)
    fn(header)
    return mm.build(header, blob, major, minor)


def _set_meta(key, value):
    return lambda h: h["meta"].__setitem__(key, value)


@pytest.mark.parametrize("edit, match", [
    # _modelio.loads: an unhashable dtype raised TypeError
    (lambda h: h["arrays"][0].__setitem__("dtype", {"a": 1}), "disallowed dtype"),
    # _modelio.loads: {"__float__": "nan"} as meta passed the dict check, then became a float
    (lambda h: h.__setitem__("meta", {"__float__": "nan"}), "is not an object"),
    (lambda h: h.__setitem__("params", {"__float__": "inf"}), "is not an object"),
    # LogisticRegression._from_document: int(inf) raised OverflowError
    (_set_meta("n_iter", {"__float__": "inf"}), "n_iter"),
    (_set_meta("n_iter", "x"), "n_iter"),
    (_set_meta("converged", [1]), "converged"),
    (_set_meta("objective", {}), "objective"),
    # ... np.isfinite on an integer beyond float64 raised TypeError
    (_set_meta("intercept", 10**400), "intercept"),
    # ... a non-string classes_kind raised TypeError ('in <string>')
    (_set_meta("classes_kind", 5), "n_features_in or classes"),
    (_set_meta("classes_kind", "b"), "classes"),
    (_set_meta("n_features_in", 2.5), "n_features_in"),
    (_set_meta("feature_names", [1, 2, 3, 4, 5]), "feature_names"),
    # ... unknown parameters raised TypeError from __init__
    (lambda h: h["params"].__setitem__("bogus", 1), "unknown parameters"),
])
def test_hostile_header_is_a_value_error(lr_doc, edit, match):
    bad = _edit(lr_doc, edit)
    with pytest.raises(ValueError, match=match):
        BaseEstimator.from_bytes(bad)


def test_duplicate_classes_refused(lr_doc):
    major, minor, header, blob = mm.split(lr_doc)
    entry = next(e for e in header["arrays"] if e["name"] == "classes")
    blob = bytearray(blob)
    blob[entry["offset"]:entry["offset"] + 16] = np.array([1, 1], np.int64).tobytes()
    with pytest.raises(ValueError, match="distinct classes"):
        BaseEstimator.from_bytes(mm.build(header, bytes(blob), major, minor))


def test_seeded_mutations_only_raise_value_error(lr_doc):
    """2,000 structure-aware mutations with recomputed checksums (about 2 s)."""
    X = (np.random.default_rng(1).random((20, 5)) < 0.5).astype(np.uint8)
    outcomes = {}
    for seed in range(2000):
        data = mm.mutate(lr_doc, mm.RandomProvider(seed))
        out = mm.check_one(data, X)
        outcomes[out] = outcomes.get(out, 0) + 1
    assert outcomes.get("refused", 0) > 500  # the mutations reach the validators
    assert outcomes.get("loaded and scored", 0) > 50


def test_mutator_keeps_checksums_valid(lr_doc):
    for seed in range(200):
        data = mm.mutate(lr_doc, mm.RandomProvider(seed))
        try:
            _modelio.loads(data)
        except _modelio.ModelFormatError as exc:
            assert "checksum" not in str(exc)


# ---- tree estimators (found once RandomForest / GradientBoosting landed) ----------

@pytest.fixture(scope="module")
def tree_docs():
    import propensity

    if getattr(propensity, "RandomForestClassifier", None) is None:
        pytest.skip("tree estimators not in this checkout")
    rng = np.random.default_rng(0)
    X = (rng.random((400, 5)) < 0.3).astype(np.uint8)
    y = (X[:, 0] | (rng.random(400) < 0.1)).astype(int)
    rf = propensity.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    gb = propensity.GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    return {"rf": rf.to_bytes(), "gb": gb.to_bytes()}


@pytest.mark.parametrize("which, edit, match", [
    # GradientBoosting: int([..]) on best_iteration raised TypeError
    ("gb", _set_meta("best_iteration", [1]), "best_iteration"),
    ("gb", _set_meta("best_iteration", 10**6), "best_iteration"),
    # trees: int(inf) on n_features_in raised OverflowError
    ("rf", _set_meta("n_features_in", {"__float__": "inf"}), "metadata"),
    # hostile n_jobs loaded fine and raised TypeError / OverflowError when scoring
    ("rf", lambda h: h["params"].__setitem__("n_jobs", True), "n_jobs"),
    ("gb", lambda h: h["params"].__setitem__("n_jobs", {}), "n_jobs"),
    ("rf", lambda h: h["params"].__setitem__("n_jobs", 2**70), "n_jobs"),
])
def test_hostile_tree_header_is_a_value_error(tree_docs, which, edit, match):
    with pytest.raises(ValueError, match=match):
        BaseEstimator.from_bytes(_edit(tree_docs[which], edit))


def test_forest_values_outside_unit_interval_refused(tree_docs):
    """A forest whose leaf values exceed 1 scored probabilities above 1."""
    major, minor, header, blob = mm.split(tree_docs["rf"])
    entry = next(e for e in header["arrays"] if e["name"] == "tree_value")
    blob = bytearray(blob)
    blob[entry["offset"]:entry["offset"] + 8] = np.array([7.5]).tobytes()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BaseEstimator.from_bytes(mm.build(header, bytes(blob), major, minor))


def test_check_n_jobs_bounds_huge_values():
    from propensity.learn.validation import check_n_jobs

    with pytest.raises(ValueError, match="at most 1024"):
        check_n_jobs(2**40)
    assert check_n_jobs(-(2**40)) == 0


def test_backstop_turns_unexpected_loader_errors_into_value_error(lr_doc, monkeypatch):
    from propensity.learn import linear

    def broken(cls, params, meta, arrays):
        raise KeyError("x")
    monkeypatch.setattr(linear.LogisticRegression, "_from_document", classmethod(broken))
    with pytest.raises(ValueError, match="invalid LogisticRegression document: KeyError"):
        BaseEstimator.from_bytes(lr_doc)
