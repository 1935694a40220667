"""propensity.dask on a real LocalCluster (2 worker processes, loopback, no dashboard):
distributed training gives the local model, distributed scoring the predictor's output,
a killed worker loses and duplicates no row, bad partitions are named."""
import os
import signal
import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from propensity import dask as pdask  # noqa: E402
from propensity.datasets import make_sessions  # noqa: E402
from propensity.learn.forest import RandomForestClassifier  # noqa: E402
from propensity.learn.gbdt import GradientBoostingClassifier  # noqa: E402
from propensity.learn.linear import LogisticRegression  # noqa: E402
from propensity.scoring.predictor import CustomerPropensityPredictor  # noqa: E402

from conftest import package_env  # noqa: E402


@pytest.fixture(scope="module")
def client():
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = package_env()["PYTHONPATH"]  # workers import this package
    try:
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=40)
        c = Client(cluster)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def sessions():
    return make_sessions(30_000, seed=11)


FEATURES_OF = lambda df: [c for c in df.columns if c not in ("UserID", "ordered")]  # noqa: E731

MODELS = {
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, max_depth=8,
                                                    class_weight="balanced", random_state=3),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=15, max_depth=4,
                                                            random_state=3),
    "logistic_regression": lambda: LogisticRegression(C=0.5, l1_ratio=0.3),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_distributed_fit_equals_local(client, sessions, name):
    feats = FEATURES_OF(sessions)
    local = MODELS[name]().fit(sessions[feats], sessions["ordered"])
    ddf = dd.from_pandas(sessions, npartitions=5)
    dist = pdask.fit_dask(MODELS[name](), ddf, "ordered")
    assert list(dist.feature_names_in_) == feats
    np.testing.assert_array_equal(dist.predict_proba(sessions[feats]),
                                  local.predict_proba(sessions[feats]))
    assert dist.to_bytes() == local.to_bytes()  # the very same model document


def test_distributed_fit_float_and_weights(client):
    rng = np.random.default_rng(5)
    n = 6000
    df = pd.DataFrame({"a": rng.integers(0, 2, n).astype(np.float64),
                       "b": rng.choice([0.25, 1.5, 3.0, np.nan], n),
                       "c": rng.integers(0, 40, n).astype(np.int64)})
    df["ordered"] = (rng.random(n) < 0.2 + 0.3 * df["a"]).astype(np.int64)
    df["w"] = rng.choice([0.5, 1.0, 2.0], n)
    ddf = dd.from_pandas(df, npartitions=4)
    X, y, w = df[["a", "b", "c"]], df["ordered"], df["w"].to_numpy()
    gb = lambda: GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=1)  # noqa: E731
    local = gb().fit(X, y, sample_weight=w)
    dist = pdask.fit_dask(gb(), ddf, "ordered", sample_weight="w")
    np.testing.assert_allclose(dist.predict_proba(X), local.predict_proba(X), rtol=0, atol=1e-12)
    # logistic regression on float input: every row in partition order
    Xl = df[["a", "c"]]
    lr_local = LogisticRegression(C=2.0).fit(Xl, y, sample_weight=w)
    lr_dist = pdask.fit_dask(LogisticRegression(C=2.0), ddf, "ordered",
                             feature_columns=["a", "c"], sample_weight="w")
    np.testing.assert_allclose(lr_dist.predict_proba(Xl), lr_local.predict_proba(Xl),
                               rtol=0, atol=1e-12)


def test_distributed_fit_many_valued_column_uses_a_sample(client):
    rng = np.random.default_rng(2)
    n = 5000
    df = pd.DataFrame({"x": rng.normal(size=n), "b": rng.integers(0, 2, n).astype(np.uint8)})
    df["ordered"] = (df["x"] + rng.normal(size=n) > 0.5).astype(np.uint8)
    ddf = dd.from_pandas(df, npartitions=3)
    est = pdask.fit_dask(RandomForestClassifier(n_estimators=10, max_bins=32, random_state=0),
                         ddf, "ordered")
    mapper = est._bin_mapper
    assert mapper.n_edges_[0] == 31            # quantile edges of x from the sample
    np.testing.assert_array_equal(mapper.bin_thresholds(1), [0.5])  # exact binary edge
    proba = est.predict_proba(df[["x", "b"]])[:, 1]
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(df["ordered"], proba) > 0.75


# ---------------------------------------------------------------------------- scoring
def _comparable(frame):
    return frame.drop(columns=["prediction_timestamp"]).reset_index(drop=True)


def test_predict_dask_equals_predictor(client, model_dir):
    pred = CustomerPropensityPredictor(model_dir)
    pred.load_best_model()
    df = make_sessions(4000, seed=21, testing=True)
    local = pred.predict(df, segments=True)
    out = pdask.predict_dask(pred, dd.from_pandas(df, npartitions=4), segments=True)
    assert list(out.columns) == list(local.columns)
    got = out.compute()
    assert got["prediction_timestamp"].nunique() == 1
    pd.testing.assert_frame_equal(_comparable(got), _comparable(local), check_dtype=False)
    # a model object and a model folder work as well; the threshold option too
    out2 = pdask.predict_dask(model_dir, dd.from_pandas(df, npartitions=3),
                              threshold=0.9).compute()
    np.testing.assert_array_equal(out2["predicted_ordered"],
                                  pred.predict(df, threshold=0.9)["predicted_ordered"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_dask_takes_what_fit_dask_returns(client, sessions, name):
    feats = FEATURES_OF(sessions)
    est = pdask.fit_dask(MODELS[name](), dd.from_pandas(sessions, npartitions=4), "ordered")
    df = make_sessions(3000, seed=23, testing=True)
    got = pdask.predict_dask(est, dd.from_pandas(df, npartitions=3)).compute()
    proba = est.predict_proba(df[feats])[:, 1]
    assert got["UserID"].tolist() == df["UserID"].tolist()
    np.testing.assert_allclose(got["purchase_probability"], proba, rtol=0, atol=5e-7)
    np.testing.assert_array_equal(got["predicted_ordered"], (proba >= 0.5).astype(int))
    low = pdask.predict_dask(est, dd.from_pandas(df, npartitions=2), threshold=0.2).compute()
    np.testing.assert_array_equal(low["predicted_ordered"], (proba >= 0.2).astype(int))


def test_predict_dask_takes_a_propensity_model(client, model_dir):
    pred = CustomerPropensityPredictor(model_dir)
    model = pred.load_best_model()
    df = make_sessions(2000, seed=24, testing=True)
    got = pdask.predict_dask(model, dd.from_pandas(df, npartitions=2)).compute()
    pd.testing.assert_frame_equal(_comparable(got), _comparable(pred.predict(df)),
                                  check_dtype=False)


def test_predict_dask_refuses_unfitted_and_unnamed_estimators(client, sessions):
    from propensity.errors import NotFittedError
    from propensity.scoring.model import PropensityModel

    ddf = dd.from_pandas(sessions.iloc[:500], npartitions=2)
    with pytest.raises(NotFittedError, match="RandomForestClassifier given to predict_dask "
                                             "is not fitted"):
        pdask.predict_dask(RandomForestClassifier(), ddf)
    with pytest.raises(NotFittedError, match="PropensityModel given to predict_dask"):
        pdask.predict_dask(PropensityModel(), ddf)
    feats = FEATURES_OF(sessions)
    on_array = LogisticRegression().fit(sessions[feats].to_numpy()[:500],
                                        sessions["ordered"].to_numpy()[:500])
    with pytest.raises(TypeError, match="not fitted on named columns"):
        pdask.predict_dask(on_array, ddf)
    with pytest.raises(TypeError, match="model_or_predictor must be"):
        pdask.predict_dask(object(), ddf)


def _slow_partition(i, n_per, sleep):
    time.sleep(sleep)
    df = make_sessions(n_per, seed=100 + i, testing=True)
    df["UserID"] = [f"p{i}-{k}" for k in range(n_per)]
    return df


@pytest.mark.slow
def test_killed_worker_loses_and_duplicates_no_rows(client, model_dir):
    n_parts, n_per = 24, 500
    meta = _slow_partition(0, 1, 0.0).iloc[:0]
    ddf = dd.from_map(_slow_partition, list(range(n_parts)), n_per=n_per, sleep=0.4,
                      meta=meta, enforce_metadata=False)
    out = pdask.predict_dask(model_dir, ddf)
    fut = client.compute(out)
    deadline = time.time() + 60
    while client.processing() and not any(client.processing().values()) \
            and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # some partitions are done, others are running
    assert not fut.done()
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    got = fut.result(timeout=240)
    expected = [f"p{i}-{k}" for i in range(n_parts) for k in range(n_per)]
    assert len(got) == n_parts * n_per
    assert got["UserID"].tolist() == expected
    client.wait_for_workers(2, timeout=60)


# ---------------------------------------------------------------------------- bad input
def _from_frames(frames, meta):
    return dd.from_map(lambda i: frames[i], list(range(len(frames))), meta=meta,
                       enforce_metadata=False)


def _split(df, k):
    return [df.iloc[i::k].reset_index(drop=True) for i in range(k)]


def test_bad_partitions_are_named(client, sessions):
    small = sessions.iloc[:3000]
    meta = small.iloc[:0]
    parts = _split(small, 4)
    rf = lambda: RandomForestClassifier(n_estimators=3, random_state=0)  # noqa: E731

    bad = list(parts)
    bad[2] = bad[2].drop(columns=["sign_in"])
    with pytest.raises(pdask.PartitionError, match=r"partition 2: lacks column\(s\) \['sign_in'\]"):
        pdask.fit_dask(rf(), _from_frames(bad, meta), "ordered")

    bad = list(parts)
    bad[1] = bad[1].assign(extra=1)
    with pytest.raises(pdask.PartitionError, match=r"partition 1: has unexpected column"):
        pdask.fit_dask(rf(), _from_frames(bad, meta), "ordered")

    bad = list(parts)
    bad[3] = bad[3].iloc[:0]
    with pytest.raises(pdask.PartitionError, match=r"partition 3: has no rows"):
        pdask.fit_dask(rf(), _from_frames(bad, meta), "ordered")

    bad = list(parts)
    bad[1] = bad[1].copy()
    bad[1].loc[5, "ordered"] = 2
    with pytest.raises(pdask.PartitionError, match=r"partition 1: target column 'ordered'"):
        pdask.fit_dask(LogisticRegression(), _from_frames(bad, meta), "ordered")

    # a third class split over partitions: the partition that brings it is named
    bad = list(parts)
    bad[2] = bad[2].assign(ordered=np.where(bad[2]["ordered"] == 1, 7, 0).astype(np.uint8))
    with pytest.raises(pdask.PartitionError, match=r"partition 2: .*more than two classes"):
        pdask.fit_dask(rf(), _from_frames(bad, meta), "ordered")

    bad = list(parts)
    bad[0] = bad[0].copy()
    bad[0]["device_mobile"] = bad[0]["device_mobile"].astype(np.float64)
    bad[0].loc[3, "device_mobile"] = np.inf
    with pytest.raises(pdask.PartitionError, match=r"partition 0: .*'device_mobile'.*infinite"):
        pdask.fit_dask(rf(), _from_frames(bad, meta), "ordered")


def test_bad_scoring_partitions_are_named(client, model_dir):
    df = make_sessions(2000, seed=4, testing=True)
    parts = _split(df, 3)
    meta = df.iloc[:0]
    bad = list(parts)
    bad[1] = bad[1].drop(columns=["saw_homepage"])
    with pytest.raises(pdask.PartitionError, match=r"partition 1: lacks column"):
        pdask.predict_dask(model_dir, _from_frames(bad, meta)).compute()
    bad = list(parts)
    bad[2] = bad[2].iloc[:0]
    with pytest.raises(pdask.PartitionError, match=r"partition 2: has no rows"):
        pdask.predict_dask(model_dir, _from_frames(bad, meta)).compute()
    ok = pdask.predict_dask(model_dir, _from_frames(bad, meta),
                            allow_empty_partitions=True).compute()
    assert len(ok) == len(parts[0]) + len(parts[1])
    bad = list(parts)
    bad[0] = bad[0].copy()
    bad[0].loc[7, "sign_in"] = 3
    with pytest.raises(pdask.PartitionError, match=r"partition 0: .*sign_in"):
        pdask.predict_dask(model_dir, _from_frames(bad, meta)).compute()


def test_argument_errors(client, sessions):
    ddf = dd.from_pandas(sessions.iloc[:1000], npartitions=2)
    with pytest.raises(ValueError, match="target column 'nope'"):
        pdask.fit_dask(LogisticRegression(), ddf, "nope")
    with pytest.raises(TypeError, match="fit_dask trains"):
        pdask.fit_dask(object(), ddf, "ordered")
    with pytest.raises(TypeError, match="dask.dataframe"):
        pdask.fit_dask(LogisticRegression(), sessions, "ordered")


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"propensity\[dask\]"):
        pdask._require_dask()


def test_scheduler_flag_uses_dask_option():
    _ = dask  # imported for the module skip
    from propensity import predict, train
    assert "--scheduler" in predict.build_parser().format_help()
    assert "--scheduler" in train.build_parser().format_help()


def test_cli_scheduler_gives_the_local_outputs(client, tmp_path):
    from conftest import SMALL_GRID
    from propensity import predict, train
    df = make_sessions(4000, seed=8)
    df.to_csv(tmp_path / "train.csv", index=False)
    make_sessions(300, seed=8, testing=True).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "grid.toml").write_text(SMALL_GRID)
    addr = client.scheduler.address
    common = ["--train-file", str(tmp_path / "train.csv"), "--test-file",
              str(tmp_path / "test.csv"), "--grid", str(tmp_path / "grid.toml"), "--quiet",
              "--models", "rf,lr"]
    assert train.main(common + ["--output-dir", str(tmp_path / "local")]) == 0
    assert train.main(common + ["--output-dir", str(tmp_path / "dist"), "--scheduler", addr]) == 0
    for fam in ("random_forest", "logistic_regression"):
        a = (tmp_path / "local" / f"{fam}_model.propmodel").read_bytes()
        b = (tmp_path / "dist" / f"{fam}_model.propmodel").read_bytes()
        assert a == b
    score = make_sessions(2500, seed=9, testing=True)
    score.to_csv(tmp_path / "score.csv", index=False)
    args = ["--input_file", str(tmp_path / "score.csv"), "--model_dir", str(tmp_path / "local"),
            "--quiet", "--segments"]
    assert predict.main(args + ["--output_file", str(tmp_path / "p_local.csv")]) == 0
    assert predict.main(args + ["--output_file", str(tmp_path / "p_dist.csv"),
                                "--scheduler", addr]) == 0
    a = pd.read_csv(tmp_path / "p_local.csv")
    b = pd.read_csv(tmp_path / "p_dist.csv")
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.drop(columns="prediction_timestamp"),
                                  b.drop(columns="prediction_timestamp"))
