"""BinMapper and the bin_fit / bin_transform bindings (csrc/bins.c)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from propensity import _core
from propensity.learn.base import NotFittedError
from propensity.learn.binning import BinMapper


def _reference_codes(X, edges, n_edges):
    """Plain numpy: code = number of edges strictly below the value; NaN -> 255."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty(X.shape, dtype=np.uint8)
    for j in range(X.shape[1]):
        e = edges[j, : n_edges[j]]
        out[:, j] = np.searchsorted(e, X[:, j], side="left")
        out[np.isnan(X[:, j]), j] = 255
    return out


def test_binary_columns_get_one_edge_and_codes_equal_values():
    rng = np.random.default_rng(0)
    X = (rng.random((500, 5)) < 0.3).astype(np.float64)
    bm = BinMapper().fit(X)
    assert bm.n_edges_.tolist() == [1] * 5 and bm.n_bins_.tolist() == [2] * 5
    assert bm.edges_.shape == (5, 255) and np.isnan(bm.edges_[:, 1:]).all()
    assert np.array_equal(bm.bin_thresholds(2), [0.5])
    B = bm.transform(X)
    assert B.dtype == np.uint8 and B.flags.c_contiguous
    assert np.array_equal(B, X.astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_dtypes_match_reference_and_each_other(dtype):
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.integers(0, 4, 2000), rng.integers(0, 256, 2000),
                         rng.integers(0, 2, 2000), np.full(2000, 7)]).astype(dtype)
    bm = BinMapper(max_bins=64).fit(X)
    assert bm.n_edges_[0] == 3 and bm.n_edges_[2] == 1 and bm.n_edges_[3] == 0
    assert 1 <= bm.n_edges_[1] <= 63
    B = bm.transform(X)
    assert np.array_equal(B, _reference_codes(X, bm.edges_, bm.n_edges_))
    assert np.array_equal(B, BinMapper(max_bins=64).fit(X.astype(np.float64)).transform(X))


def test_nan_goes_to_missing_bin_and_is_not_a_value():
    X = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, np.nan], [2.0, np.nan]])
    bm = BinMapper().fit(X)
    assert bm.n_edges_.tolist() == [2, 0]
    B = bm.transform(X)
    assert B[:, 1].tolist() == [255] * 4 and B[:, 0].tolist() == [0, 255, 2, 1]


def test_continuous_columns_use_quantiles_and_are_balanced():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20_000, 2))
    bm = BinMapper(max_bins=32, subsample=5000, random_state=3).fit(X)
    assert (bm.n_edges_ == 31).all()
    counts = np.bincount(bm.transform(X)[:, 0], minlength=32)
    assert counts.min() > 20_000 / 32 / 2 and counts.max() < 20_000 / 32 * 2
    # deterministic for a seed and any n_jobs; another seed gives other edges
    bm2 = BinMapper(max_bins=32, subsample=5000, random_state=3).fit(X)
    assert np.array_equal(bm.edges_[:, :31], bm2.edges_[:, :31])
    assert np.array_equal(bm.transform(X, n_jobs=1), bm.transform(X, n_jobs=2))
    bm3 = BinMapper(max_bins=32, subsample=5000, random_state=4).fit(X)
    assert not np.array_equal(bm.edges_[:, :31], bm3.edges_[:, :31])


def test_exact_up_to_255_values_then_quantiles():
    x = np.repeat(np.arange(255, dtype=np.float64), 3)[:, None]
    bm = BinMapper().fit(x)
    assert bm.n_edges_[0] == 254
    assert np.array_equal(bm.transform(x)[:, 0], x[:, 0].astype(np.uint8))
    x256 = np.arange(256, dtype=np.float64)[:, None]
    bm = BinMapper().fit(x256)
    assert 200 <= bm.n_edges_[0] <= 254
    codes = bm.transform(x256)[:, 0]
    assert (np.diff(codes.astype(int)) >= 0).all() and codes[0] == 0


def test_one_row_and_constant_column():
    bm = BinMapper().fit(np.array([[5.0, -1.0]]))
    assert bm.n_edges_.tolist() == [0, 0]
    assert bm.transform(np.array([[9.0, -7.0], [np.nan, 0.0]])).tolist() == [[0, 0], [255, 0]]


def test_roundtrip_arrays_and_validation():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    bm = BinMapper(max_bins=20).fit(X)
    arrays = bm.to_arrays()
    bm2 = BinMapper.from_arrays(arrays)
    assert np.array_equal(bm2.transform(X), bm.transform(X)) and bm2.max_bins == 20
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["bin_edges"][1, 3] = bad["bin_edges"][1, 2]
    with pytest.raises(ValueError, match="column 1 are not strictly increasing"):
        BinMapper.from_arrays(bad)
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["bin_n_edges"] = bad["bin_n_edges"][:2]
    with pytest.raises(ValueError, match="bin_n_edges"):
        BinMapper.from_arrays(bad)
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["bin_edges"] = bad["bin_edges"][:, :10]
    with pytest.raises(ValueError, match="bin_edges"):
        BinMapper.from_arrays(bad)
    with pytest.raises(ValueError, match="bin_edges"):
        BinMapper.from_arrays({"bin_n_edges": arrays["bin_n_edges"]})


def test_errors():
    with pytest.raises(NotFittedError):
        BinMapper().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="max_bins"):
        BinMapper(max_bins=256).fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="subsample"):
        BinMapper(subsample=0).fit(np.zeros((2, 2)))
    bm = BinMapper().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="fitted with 2"):
        bm.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="column 1 has an infinite value at row 1"):
        _core.bin_fit(np.array([[0.0, 1.0], [0.0, np.inf]]), 255, 10, 0)


def test_binding_argument_errors():
    X = np.zeros((4, 2))
    e, k = _core.bin_fit(X, 255, 10, 0)
    with pytest.raises(TypeError, match="X has dtype int64"):
        _core.bin_fit(np.zeros((4, 2), dtype=np.int64), 255, 10, 0)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        _core.bin_fit(np.zeros(4), 255, 10, 0)
    with pytest.raises(TypeError, match="edges has dtype float32"):
        _core.bin_transform(X, e.astype(np.float32), k, 1)
    with pytest.raises(TypeError, match="n_edges has dtype int64"):
        _core.bin_transform(X, e, k.astype(np.int64), 1)
    with pytest.raises(ValueError, match=r"edges must have shape \(2, 255\)"):
        _core.bin_transform(X, e[:, :100], k, 1)
    with pytest.raises(ValueError, match="n_edges must have length 2"):
        _core.bin_transform(X, e, k[:1], 1)
    with pytest.raises(ValueError, match="max_bins"):
        _core.bin_fit(X, 1, 10, 0)
    # non-contiguous input is converted
    Xf = np.asfortranarray(np.random.default_rng(0).normal(size=(50, 3)))
    e, k = _core.bin_fit(Xf, 16, 100, 0)
    e2, k2 = _core.bin_fit(np.ascontiguousarray(Xf), 16, 100, 0)
    assert np.array_equal(k, k2)
    assert np.array_equal(_core.bin_transform(Xf[::2], e, k, 2),
                          _core.bin_transform(np.ascontiguousarray(Xf[::2]), e, k, 2))


def test_inputs_left_unchanged():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    X[::5, 0] = np.nan
    X0 = X.copy()
    bm = BinMapper(max_bins=10).fit(X)
    e0 = bm.edges_.copy()
    bm.transform(X)
    assert np.array_equal(X, X0, equal_nan=True)
    assert np.array_equal(bm.edges_, e0, equal_nan=True)


finite = st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.just(np.nan),
                   st.sampled_from([0.0, 1.0, -0.0, 5e-324, 1e-300]))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 4)), elements=finite),
       st.integers(2, 255))
def test_property_codes_monotone_and_match_reference(X, max_bins):
    bm = BinMapper(max_bins=max_bins, subsample=30).fit(X)
    B = bm.transform(X)
    assert np.array_equal(B, _reference_codes(X, bm.edges_, bm.n_edges_))
    for j in range(X.shape[1]):
        col, code = X[:, j], B[:, j]
        ok = ~np.isnan(col)
        assert (code[~ok] == 255).all() and (code[ok] <= bm.n_edges_[j]).all()
        order = np.argsort(col[ok], kind="stable")
        assert (np.diff(code[ok][order].astype(int)) >= 0).all()  # monotone in the value
        if len(np.unique(col[ok])) <= max_bins:  # exact: one code per distinct value
            vals = np.unique(col[ok])
            assert np.array_equal(np.unique(code[ok]), np.arange(len(vals)))


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 300), st.integers(1, 3))),
       st.integers(2, 255))
def test_property_uint8_lookup_matches_float_path(X, max_bins):
    bm = BinMapper(max_bins=max_bins).fit(X)
    bm64 = BinMapper(max_bins=max_bins).fit(X.astype(np.float64))
    assert np.array_equal(bm.n_edges_, bm64.n_edges_)
    assert np.array_equal(bm.transform(X), bm64.transform(X.astype(np.float64)))
    assert np.array_equal(bm.transform(X), _reference_codes(X, bm.edges_, bm.n_edges_))


def test_dataframe_input_goes_through_check_X():
    import pandas as pd
    df = pd.DataFrame({"a": [0, 1, 1, 0], "b": [True, False, True, True], "c": [0.5, np.nan, 2, 3]})
    bm = BinMapper().fit(df)
    assert bm.n_features_in_ == 3 and bm.n_edges_.tolist() == [1, 1, 2]
    assert bm.transform(df).tolist() == [[0, 1, 0], [1, 0, 255], [1, 1, 1], [0, 1, 2]]


@pytest.mark.parametrize("kind", ["ints", "ints_nan", "negative", "fraction", "large", "neg_zero"])
def test_whole_number_categories_counted_like_the_sorted_path(kind, monkeypatch):
    """Categories that are whole numbers in [0, 2^16) are counted and looked up by index;
    the fitted values, codes and the transform equal the sort / binary-search path (other
    columns, e.g. negative or fractional values, take that path)."""
    from propensity.learn import binning
    rng = np.random.default_rng(5)
    n = 5000
    col = rng.zipf(1.3, n).astype(np.float64) % 700
    if kind == "ints_nan":
        col[rng.random(n) < 0.1] = np.nan
    elif kind == "negative":
        col -= 3.0
    elif kind == "fraction":
        col[::7] += 0.5
    elif kind == "large":
        col[::11] = 70000.0
    elif kind == "neg_zero":
        col[col == 0] = -0.0
    X = np.column_stack([rng.normal(size=n), col])
    y = (rng.random(n) < 0.3).astype(np.uint8)
    new = np.column_stack([rng.normal(size=n), np.where(rng.random(n) < 0.5, col, 901.0)])
    new[::13, 1] = np.nan
    assert (binning._int_categories(col) is not None) == (kind in ("ints", "ints_nan"))
    got = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(binning, "_int_categories", lambda c: None)
        for labels in (None, y):
            m = BinMapper(categorical=[1], max_cat=64).fit(X, labels)
            got.append((m.cat_values_[1], m.cat_codes_[1], m.transform(X), m.transform(new)))
    for (vals, codes, B, B_new), (vals0, codes0, B0, B0_new) in zip(got[:2], got[2:]):
        np.testing.assert_array_equal(vals, vals0)
        np.testing.assert_array_equal(np.signbit(vals), np.signbit(vals0))
        np.testing.assert_array_equal(codes, codes0)
        np.testing.assert_array_equal(B, B0)
        np.testing.assert_array_equal(B_new, B0_new)
