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
    got = table.drop(columns="model").to_dict("records")
    assert len(got) == len(rec)
    for g, r in zip(got, rec):
        assert g == pytest.approx(r)
    import pickle
    d = pickle.loads((out / "detailed_evaluation_results.pkl").read_bytes())["logistic_regression"]
    want = C.lift_table(d["y_true"], d["probabilities"], d["sample_weight"])
    assert len(rec) == len(want)
    for r, w in zip(rec, want):
        assert r == pytest.approx(w)
    assert res.metrics["logistic_regression"]["lift_table"][0]["lift"] > 1


# ---------------------------------------------------------------------------------------
# targeting policies
def _brute_force_profit(p, w, cost, value):
    """The best expected profit over every threshold that separates the scores (and
    'contact nobody'), by direct sums."""
    cands = np.r_[np.unique(p), 1.0 + 1e-9]
    return max(float(np.sum((w * (p * value - cost))[p >= t])) for t in cands)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cost, value", [(1.0, 40.0), (1.0, 3.0), (2.0, 2.5), (1.0, 1.2)])
def test_profit_policy_equals_a_brute_force_scan(seed, cost, value):
    (y, p, w), _ = _weighted_case(seed, n=80, levels=25)
    policy = C.TargetPolicy("profit", contact_cost=cost, order_value=value).checked()
    doc = C.choose(policy, y, p, w)
    hit = p >= doc["threshold"]
    got = float(np.sum((w * (p * value - cost))[hit]))
    assert got == pytest.approx(_brute_force_profit(p, w, cost, value), abs=1e-9)
    ev = C.evaluate(doc, y, p, w)
    assert ev["expected_profit"] == pytest.approx(got)
    assert ev["contacts"] == pytest.approx(w[hit].sum())
    assert ev["buyers"] == pytest.approx((w * y)[hit].sum())
    assert ev["profit"] == pytest.approx(value * ev["buyers"] - cost * ev["contacts"])
    # with calibrated probabilities the best contacts are those with p * value > cost
    assert np.all(p[hit] * value >= cost - 1e-12)


def test_profit_policy_contacts_nobody_when_nothing_pays():
    p = np.array([0.01, 0.02, 0.03])
    doc = C.choose(C.TargetPolicy("profit", contact_cost=1, order_value=10), [0, 0, 1], p)
    assert doc["threshold"] == 1.0 and C.evaluate(doc, [0, 0, 1], p)["contacts"] == 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("percent", [10, 2.5, 50, 100])
def test_top_percent_flags_that_share_within_one_tie_group(seed, percent):
    (y, p, w), _ = _weighted_case(seed, n=400, levels=40)
    doc = C.choose(C.TargetPolicy("top-percent", percent=percent).checked(), y, p, w)
    assert abs(_flagged(p, w, doc["threshold"]) - percent / 100) <= \
        _tie_at_cut(p, w, doc["threshold"]) + 1e-12


def _flagged(p, w, t):
    return w[p >= t].sum() / w.sum()


def _tie_at_cut(p, w, t):
    """The larger tie group either side of the cut at ``t`` (as a share of the weight)."""
    above, below = p[p >= t], p[p < t]
    sizes = [w[p == above.min()].sum() if above.size else 0.0,
             w[p == below.max()].sum() if below.size else 0.0]
    return max(sizes) / w.sum()


def test_top_percent_takes_the_nearest_cut():
    p = np.r_[np.full(5, 0.9), np.full(10, 0.5), np.full(85, 0.1)]
    y = np.zeros(100)
    y[0] = 1
    for percent, flagged in ((4, 0.05), (9, 0.05), (11, 0.15), (60, 1.0), (30, 0.15)):
        doc = C.choose(C.TargetPolicy("top-percent", percent=percent).checked(), y, p)
        assert _flagged(p, np.ones(100), doc["threshold"]) == pytest.approx(flagged), percent


def test_budget_is_top_percent_of_the_sessions():
    (y, p, w), _ = _weighted_case(2, n=400, levels=40)
    b = C.choose(C.TargetPolicy("budget", budget=150, budget_sessions=1000).checked(), y, p, w)
    t = C.choose(C.TargetPolicy("top-percent", percent=15).checked(), y, p, w)
    assert b["threshold"] == t["threshold"] and b["share"] == pytest.approx(0.15)
    default = C.choose(C.TargetPolicy("budget", budget=150).checked(), y, p, w, n_rows=1000)
    assert default["threshold"] == t["threshold"] and default["budget_sessions"] == 1000
    with pytest.raises(ValueError, match="above the 100 sessions"):
        C.choose(C.TargetPolicy("budget", budget=150).checked(), y, p, w, n_rows=100)


def test_f1_policy_is_the_best_f1_threshold():
    (y, p, w), _ = _weighted_case(1)
    assert C.choose(C.TargetPolicy(), y, p, w)["threshold"] == M.best_f1_threshold(y, p, w)[0]


def test_a_compressed_score_distribution_stays_close():
    rng = np.random.default_rng(5)
    p = rng.random(50_000)
    dist = C.score_shares(p, max_points=500)
    assert len(dist["scores"]) <= 501
    for share in (0.01, 0.1, 0.37, 0.9):
        t = C.threshold_for_share(dist, share)
        assert abs((p >= t).mean() - share) < 2.5 / 500


@pytest.fixture(scope="module")
def top10(tmp_path_factory):
    from propensity.training.pipeline import run_training
    out = tmp_path_factory.mktemp("top10") / "out"
    res = run_training(None, None, out, embedded_rows=4000, embedded_test_rows=50,
                       models=("logistic_regression", "random_forest"),
                       grid={"logistic_regression": {"C": [1.0], "l1_ratio": [0.5]},
                             "random_forest": {"n_estimators": [10], "max_depth": [6]}},
                       policy={"kind": "top-percent", "percent": 10})
    return out, res


def test_top_percent_10_training_run_flags_10_percent_of_the_training_scores(top10):
    import pickle
    out, res = top10
    details = pickle.loads((out / "detailed_evaluation_results.pkl").read_bytes())
    for fam, model in res.models.items():
        d = details[fam]
        p, w = d["oof_calibrated"], d["oof_weights"]
        share, tie = _flagged(p, w, model.threshold_), _tie_at_cut(p, w, model.threshold_)
        assert abs(share - 0.1) <= tie + 1e-12, (fam, share, tie)
        assert model.policy_["kind"] == "top-percent" and model.policy_["percent"] == 10
        pol = res.metrics[fam]["policy"]
        assert pol["threshold"] == model.threshold_ == res.metrics[fam]["threshold"]
        ev = C.evaluate(model.policy_, d["y_true"], d["probabilities"], d["sample_weight"])
        assert pol["validation"] == pytest.approx(ev)


def test_policy_survives_save_and_load_and_old_documents_load_as_f1(top10):
    from propensity.scoring.model import PropensityModel
    out, res = top10
    model = res.models["random_forest"]
    back = PropensityModel.from_bytes((out / "random_forest_model.propmodel").read_bytes())
    assert back.policy_ == model.policy_ and back.threshold_ == model.threshold_
    assert back.threshold_for_share(0.1) == model.threshold_for_share(0.1)
    meta, arrays = model._to_document()
    del meta["policy"]
    old = PropensityModel._from_document(model._json_params(), meta, arrays)
    assert old.policy_ == {"kind": "f1", "threshold": model.threshold_}
    with pytest.raises(ValueError, match="no training score distribution"):
        old.threshold_for_share(0.1)


def test_predict_top_percent_and_budget_use_the_training_distribution(top10, tmp_path):
    import pandas as pd

    from propensity import predict
    from propensity.datasets import make_sessions
    out, res = top10
    best = res.best_model
    model = res.models[best]
    make_sessions(2000, seed=9).drop(columns="ordered").to_csv(tmp_path / "in.csv", index=False)
    thresholds = {}
    for name, args in (("top", ["--top-percent", "20"]),
                       ("budget", ["--budget", "400", "--budget-sessions", "2000"])):
        assert predict.main(["--input_file", str(tmp_path / "in.csv"), "--output_file",
                             str(tmp_path / f"{name}.csv"), "--model_dir", str(out),
                             "--quiet", *args]) == 0
        pred = pd.read_csv(tmp_path / f"{name}.csv")
        thresholds[name] = pred.predicted_ordered.to_numpy()
    assert (thresholds["top"] == thresholds["budget"]).all()
    # the flags equal the model's own decision at the share's threshold
    raw = pd.read_csv(tmp_path / "in.csv")
    expect = model.predict(raw[model.input_columns_], threshold=model.threshold_for_share(0.2))
    assert (thresholds["top"] == expect).all()


def test_train_cli_budget_policy_and_predict_on_a_model_without_a_distribution(tmp_path,
                                                                              capsys):
    import hashlib
    import json
    import shutil

    from propensity import predict, train
    from propensity.datasets import make_sessions
    from propensity.scoring.model import PropensityModel
    make_sessions(3000, seed=12).to_csv(tmp_path / "train.csv", index=False)
    make_sessions(200, seed=12, testing=True).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out"
    assert train.main(["--train-file", str(tmp_path / "train.csv"), "--output-dir", str(out),
                       "--models", "logistic_regression", "--cv-folds", "2",
                       "--target-policy", "budget", "--budget", "150",
                       "--contact-cost", "1", "--order-value", "25"]) == 0
    summary = capsys.readouterr().out
    assert "policy budget with logistic_regression: contacting" in summary
    assert "expected profit" in summary
    ev = json.loads((out / "model_evaluation_results.json").read_text())
    pol = ev["logistic_regression"]["policy"]
    assert pol["kind"] == "budget" and pol["budget_sessions"] == 3000 and pol["share"] == 0.05
    assert (out / "profit_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the same folder with the model saved as before policies (no score distribution)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    name = "logistic_regression_model.propmodel"
    model = PropensityModel.from_bytes((old / name).read_bytes())
    model.policy_ = {"kind": "f1", "threshold": model.threshold_}
    (old / name).write_bytes(model.to_bytes())
    man = json.loads((old / "manifest.json").read_text())
    man["files"][name] = hashlib.sha256((old / name).read_bytes()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(man))
    argv = ["--input_file", str(tmp_path / "new.csv"), "--output_file",
            str(tmp_path / "pred.csv"), "--quiet", "--top-percent", "10"]
    assert predict.main(argv + ["--model_dir", str(old)]) == predict.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: the model stores no training score distribution (it was saved by an older "
        "version or fitted with fit()): retrain it to use --top-percent or --budget"]
    assert not (tmp_path / "pred.csv").exists()
    # its own threshold still works, and the new folder takes --top-percent
    assert predict.main(argv[:-2] + ["--model_dir", str(old)]) == 0
    assert predict.main(argv + ["--model_dir", str(out)]) == 0
