"""Lift and gains, targeting policies (propensity.training.campaign) against references:
the same computation on the expanded rows, plain sorts and brute-force scans."""
import numpy as np
import pytest

from propensity.learn import metrics as M
from propensity.training import campaign as C


def _weighted_case(seed, n=300, levels=12):
    """Weighted distinct rows with heavy ties (few score levels) and their expanded rows."""
    rng = np.random.default_rng(seed)
    score = rng.integers(0, levels, n) / levels
    y = (rng.random(n) < 0.1 + 0.6 * score).astype(np.uint8)
    w = rng.integers(1, 9, n).astype(np.float64)
    rep = w.astype(np.int64)
    return (y, score, w), (np.repeat(y, rep), np.repeat(score, rep))


@pytest.mark.parametrize("seed", range(5))
def test_lift_table_on_weighted_rows_equals_expanded_rows(seed):
    (y, s, w), (ye, se) = _weighted_case(seed)
    got = C.lift_table(y, s, w)
    ref = C.lift_table(ye, se)
    for a, b in zip(got, ref):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-12), (k, a, b)
    # equal sessions in every decile, all buyers counted
    assert [d["sessions"] for d in got] == pytest.approx([w.sum() / 10] * 10)
    assert sum(d["buyers"] for d in got) == pytest.approx(float((w * y).sum()))
    assert got[-1]["cumulative_buyers_pct"] == pytest.approx(100.0)
    assert got[-1]["cumulative_lift"] == pytest.approx(1.0)


def test_lift_table_without_ties_equals_a_plain_sort():
    rng = np.random.default_rng(11)
    n = 1000
    s = rng.permutation(n) / n          # distinct scores
    y = (rng.random(n) < s).astype(np.uint8)
    order = np.argsort(-s)
    chunks = np.split(y[order], 10)
    base = y.mean()
    got = C.lift_table(y, s)
    cum = np.cumsum([c.sum() for c in chunks])
    for k, (d, c) in enumerate(zip(got, chunks), start=1):
        assert d["decile"] == k and d["sessions"] == 100
        assert d["buyers"] == c.sum()
        assert d["response_rate"] == pytest.approx(c.mean())
        assert d["lift"] == pytest.approx(c.mean() / base)
        assert d["cumulative_buyers_pct"] == pytest.approx(100 * cum[k - 1] / y.sum())
        assert d["cumulative_lift"] == pytest.approx(cum[k - 1] / (100 * k) / base)


def test_a_tie_across_a_decile_cut_is_split_in_proportion():
    # 20 sessions; the top 4 share one score (2 buyers): decile 1 (2 sessions) takes half
    # of that tie group, so half of its buyers
    s = np.r_[np.full(4, 0.9), np.linspace(0.5, 0.1, 16)]
    y = np.r_[1, 1, 0, 0, np.zeros(16)].astype(np.uint8)
    got = C.lift_table(y, s)
    assert got[0]["sessions"] == 2 and got[0]["buyers"] == pytest.approx(1.0)
    assert got[1]["buyers"] == pytest.approx(1.0)
    assert all(d["buyers"] == 0 for d in got[2:])


def test_gains_curve_ends_at_all_buyers():
    (y, s, w), _ = _weighted_case(3)
    x, g = C.gains_curve(y, s, w)
    assert x[0] == 0 and x[-1] == 1 and g[0] == 0 and g[-1] == pytest.approx(1.0)
    assert np.all(np.diff(g) >= -1e-15)


def test_training_writes_the_lift_table_csv_and_json(tmp_path):
    import json

    import pandas as pd

    from propensity.training.pipeline import run_training

    res = run_training(None, None, tmp_path / "out", embedded_rows=3000,
                       models=("logistic_regression",), embedded_test_rows=50,
                       grid={"logistic_regression": {"C": [1.0], "l1_ratio": [0.5]}})
    out = tmp_path / "out"
    table = pd.read_csv(out / "lift_table.csv")
    assert list(table.columns) == ["model", "decile", "sessions", "buyers", "response_rate",
                                   "lift", "cumulative_buyers_pct", "cumulative_lift"]
    ev = json.loads((out / "model_evaluation_results.json").read_text())
    rec = ev["logistic_regression"]["lift_table"]
    assert table.drop(columns="model").to_dict("records") == pytest.approx(rec)
    import pickle
    d = pickle.loads((out / "detailed_evaluation_results.pkl").read_bytes())["logistic_regression"]
    assert rec == pytest.approx(C.lift_table(d["y_true"], d["probabilities"], d["sample_weight"]))
    assert res.metrics["logistic_regression"]["lift_table"][0]["lift"] > 1
