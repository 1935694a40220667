"""compress_rows (csrc/compress.c) against numpy.unique and pandas groupby."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from propensity import _core
from propensity.learn.compress import CompressedRows, compress_rows


def _funnel(n, seed):
    """Binary funnel-like rows: correlated steps (click -> add -> checkout)."""
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    cols = [(base < t) & (rng.random(n) < 0.9) for t in (0.3, 0.15, 0.08, 0.05)]
    cols += [rng.random(n) < q for q in (0.93, 0.68, 0.5, 0.02, 0.005)]
    B = np.column_stack(cols).astype(np.uint8)
    y = ((base < 0.05) & (rng.random(n) < 0.8)).astype(np.uint8)
    return B, y


def _check_against_numpy(B, res):
    rows, inverse, counts = np.unique(B, axis=0, return_inverse=True, return_counts=True)
    assert res.rows.dtype == np.uint8 and np.array_equal(res.rows, rows)
    assert res.inverse.dtype == np.int64 and np.array_equal(res.inverse, inverse.ravel())
    assert res.counts.dtype == np.int64 and np.array_equal(res.counts.sum(axis=1), counts)


@pytest.mark.parametrize("make", ["random", "funnel"])
def test_equals_numpy_unique(make):
    if make == "random":
        B = np.random.default_rng(0).integers(0, 3, size=(5000, 6)).astype(np.uint8)
        y = np.random.default_rng(1).integers(0, 2, 5000).astype(np.uint8)
    else:
        B, y = _funnel(20_000, 2)
    res = compress_rows(B, y)
    assert isinstance(res, CompressedRows)
    _check_against_numpy(B, res)
    assert np.array_equal(res.counts[:, 1], np.bincount(res.inverse, weights=y,
                                                         minlength=res.n_unique))
    assert np.array_equal(res.weights, res.counts.astype(np.float64))
    for n_jobs in (1, 2, 3):
        other = compress_rows(B, y, n_jobs=n_jobs)
        assert np.array_equal(other.inverse, res.inverse)


def test_weights_equal_pandas_groupby_sum():
    B, y = _funnel(10_000, 3)
    w = np.random.default_rng(4).gamma(2.0, size=len(y))
    res = compress_rows(B, y, sample_weight=w)
    df = pd.DataFrame(B, columns=[f"c{j}" for j in range(B.shape[1])])
    df["y"], df["w"] = y, w
    g = df.groupby([f"c{j}" for j in range(B.shape[1])] + ["y"])["w"].sum().unstack(fill_value=0.0)
    g = g.reindex(columns=[0, 1], fill_value=0.0)
    assert np.array_equal(g.index.to_frame().to_numpy().astype(np.uint8), res.rows)
    np.testing.assert_allclose(res.weights, g.to_numpy(), rtol=1e-12)
    # without y everything is in column 0
    res0 = compress_rows(B, sample_weight=w)
    assert (res0.counts[:, 1] == 0).all() and (res0.weights[:, 1] == 0).all()
    np.testing.assert_allclose(res0.weights[:, 0], res.weights.sum(axis=1), rtol=1e-12)
    # weights summed in row order: bit-identical for any n_jobs
    assert np.array_equal(compress_rows(B, y, w, n_jobs=1).weights,
                          compress_rows(B, y, w, n_jobs=2).weights)


def test_no_y_no_weight_and_y_types():
    B = np.array([[1, 0], [0, 1], [1, 0], [255, 3]], dtype=np.uint8)
    res = compress_rows(B)
    assert res.rows.tolist() == [[0, 1], [1, 0], [255, 3]]
    assert res.counts.tolist() == [[1, 0], [2, 0], [1, 0]]
    assert res.inverse.tolist() == [1, 0, 1, 2]
    for y in ([0, 1, 1, 0], np.array([False, True, True, False])):
        assert compress_rows(B, y).counts.tolist() == [[0, 1], [1, 1], [1, 0]]
    with pytest.raises(ValueError, match="y must be 0 or 1.*row 1"):
        compress_rows(B, np.array([0, 2, 0, 0]))
    with pytest.raises(ValueError, match="y must be 0 or 1.*row 3"):
        compress_rows(B, np.array([0, 1, 0, 7], dtype=np.uint8))


def test_binding_argument_errors():
    B = np.zeros((4, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="B has dtype float64"):
        _core.compress_rows(B.astype(np.float64), None, None, 1)
    with pytest.raises(ValueError, match="B must be 2-dimensional"):
        _core.compress_rows(B.ravel(), None, None, 1)
    with pytest.raises(TypeError, match="y has dtype float64"):
        _core.compress_rows(B, np.zeros(4), None, 1)
    with pytest.raises(TypeError, match="sample_weight has dtype float32"):
        _core.compress_rows(B, None, np.ones(4, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="B has 4 rows but y has 3"):
        _core.compress_rows(B, np.zeros(3, dtype=np.uint8), None, 1)
    with pytest.raises(ValueError, match="B has 4 rows but sample_weight has 5"):
        _core.compress_rows(B, None, np.ones(5), 1)
    with pytest.raises(ValueError, match="at least one row"):
        _core.compress_rows(np.zeros((0, 3), dtype=np.uint8), None, None, 1)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        _core.compress_rows([[1, 2]], None, None, 1)
    # non-contiguous input is converted
    Bf = np.asfortranarray(np.random.default_rng(0).integers(0, 2, (100, 5)).astype(np.uint8))
    _check_against_numpy(Bf, compress_rows(Bf))
    _check_against_numpy(Bf[::3, 1:], compress_rows(Bf[::3, 1:]))


def test_inputs_left_unchanged():
    B, y = _funnel(3000, 5)
    w = np.linspace(0.1, 2.0, len(y))
    B0, y0, w0 = B.copy(), y.copy(), w.copy()
    compress_rows(B, y, w)
    assert np.array_equal(B, B0) and np.array_equal(y, y0) and np.array_equal(w, w0)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 12)),
                  elements=st.sampled_from([0, 1, 2, 254, 255])),
       st.data())
def test_property_expand_by_inverse_is_identity(B, data):
    y = data.draw(hnp.arrays(np.uint8, B.shape[0], elements=st.integers(0, 1)))
    res = compress_rows(B, y)
    assert np.array_equal(res.rows[res.inverse], B)
    assert res.counts.sum() == B.shape[0]
    assert np.array_equal(res.counts[:, 1], np.bincount(res.inverse, weights=y,
                                                         minlength=res.n_unique))
    _check_against_numpy(B, res)
