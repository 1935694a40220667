"""End to end: ``propensity.train.main([...])`` on small data in tmp_path, every output
present and well-formed, pickles usable on the raw columns, bad input rejected with a
clear message, an exit code and no partial output."""
import csv
import hashlib
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from propensity import load_model
from propensity.datasets import make_sessions
from propensity.learn import metrics as M
from propensity.learn.features import SESSION_FEATURES
from propensity.scoring.model import PropensityModel
from propensity.train import main

SMALL_GRID = """
[random_forest]
n_estimators = [10, 20]
max_depth = [4, "none"]
min_samples_split = [2]
[gradient_boosting]
n_estimators = [10, 20]
max_depth = [3]
learning_rate = [0.3]
[logistic_regression]
C = [1.0]
l1_ratio = [0.5]
"""
FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    train = make_sessions(4000, seed=3)
    test = make_sessions(500, seed=3, testing=True)
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    (d / "grid.toml").write_text(SMALL_GRID)
    return d, train, test


@pytest.fixture(scope="module")
def run(small, tmp_path_factory):
    d, _, _ = small
    out = tmp_path_factory.mktemp("run") / "ml_outputs"
    code = main(["--train-file", str(d / "train.csv"), "--test-file", str(d / "test.csv"),
                 "--output-dir", str(out), "--grid", str(d / "grid.toml"), "--quiet",
                 "--n-jobs", "2"])
    assert code == 0
    return out


def test_every_output_is_present_and_well_formed(run, small):
    _, train, test = small
    names = set(os.listdir(run))
    expected = {"manifest.json", "model_evaluation_results.json", "test_predictions.csv",
                "model_comparison.png", "roc_curves.png", "precision_recall_curves.png",
                "calibration.png", "detailed_evaluation_results.pkl", "ml_pipeline.log",
                "logistic_regression_coefficients.csv", "random_forest_feature_importance.csv",
                "gradient_boosting_feature_importance.csv", "shap_summary.png", "lift_table.csv",
                "cumulative_gains.png", "lift_curve.png", "report.html"}
    expected |= {f"{f}_model.{ext}" for f in FAMILIES for ext in ("pkl", "propmodel")}
    expected |= {f"{f}_shap_importance.csv" for f in FAMILIES}
    assert names == expected
    for png in [n for n in names if n.endswith(".png")]:
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ev = json.loads((run / "model_evaluation_results.json").read_text())
    for fam in FAMILIES:
        m = ev[fam]
        for k in ("f1", "precision", "recall", "roc_auc", "avg_precision", "brier", "threshold"):
            assert 0.0 <= m[k] <= 1.0, (fam, k)
        (tn, fp), (fn, tp) = m["confusion_matrix"]
        # 20% of every class, dealt in groups of 15 rows per class: k of every 15 (the last,
        # partial group deals at most k more)
        assert tn + fp + fn + tp in range(800 - 6, 800 + 7)
        assert abs((fn + tp) - 0.2 * train.ordered.sum()) <= 3
        assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    man = json.loads((run / "manifest.json").read_text())
    assert man["format"] == "propensity-manifest" and man["format_version"] == 1
    assert man["best_model"] == max(FAMILIES, key=lambda f: (ev[f]["f1"], ev[f]["roc_auc"]))
    assert set(man["files"]) == names - {"manifest.json", "ml_pipeline.log"}
    for name, digest in man["files"].items():
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest
    assert man["training_data"]["n_rows"] == 4000 and len(man["training_data"]["fingerprint"]) == 64
    for fam in FAMILIES:
        assert man["models"][fam]["threshold"] == ev[fam]["threshold"]
    pred = pd.read_csv(run / "test_predictions.csv")
    assert list(pred.columns) == ["UserID", "predicted_ordered", "purchase_probability",
                                  "prediction_timestamp"]
    assert len(pred) == len(test) and (pred.UserID == test.UserID).all()
    assert pred.purchase_probability.between(0, 1).all()
    assert set(pred.predicted_ordered.unique()) <= {0, 1}
    pd.Timestamp(pred.prediction_timestamp[0])  # ISO
    imp = pd.read_csv(run / "random_forest_feature_importance.csv")
    assert list(imp.columns) == ["feature", "importance"]
    assert imp.importance.is_monotonic_decreasing and "engagement_score" in set(imp.feature)
    coef = pd.read_csv(run / "logistic_regression_coefficients.csv")
    assert list(coef.columns) == ["feature", "coefficient", "abs_coefficient"]
    assert set(coef.feature) == set(imp.feature)
    with open(run / "detailed_evaluation_results.pkl", "rb") as f:
        det = pickle.load(f)
    for fam in FAMILIES:
        si = pd.read_csv(run / f"{fam}_shap_importance.csv")
        assert list(si.columns) == ["feature", "mean_abs_shap"]
        assert set(si.feature) == set(imp.feature) and si.mean_abs_shap.is_monotonic_decreasing
        assert (si.mean_abs_shap >= 0).all() and si.mean_abs_shap.iloc[0] > 0
        ref = det[fam]["shap_importance"]
        assert dict(zip(si.feature, si.mean_abs_shap)) == pytest.approx(
            dict(zip(ref["feature"], ref["mean_abs_shap"])), rel=1e-12)
    assert set(det) == set(FAMILIES)
    assert {"metrics", "predictions", "probabilities", "classification_report"} <= set(det["random_forest"])
    # the labels and weights of the out-of-fold and validation pairs are the same rows
    # for every family: one array each, shared by the families' details
    first = det[FAMILIES[0]]
    for fam in FAMILIES[1:]:
        for key in ("oof_labels", "oof_weights", "y_true", "sample_weight"):
            assert det[fam][key] is first[key] and not first[key].flags.writeable
        assert det[fam]["oof_scores"].shape == first["oof_labels"].shape
    # the calibrated out-of-fold scores (made again when written) are the calibration of
    # the raw ones, and the threshold of best out-of-fold F1 on them is the model's
    for fam in FAMILIES:
        d = det[fam]
        with open(run / f"{fam}_model.pkl", "rb") as f:
            model = pickle.load(f)
        np.testing.assert_array_equal(d["oof_calibrated"], model.calibrate(d["oof_scores"]))
        assert d["oof_calibrated"].min() >= 0 and d["oof_calibrated"].max() <= 1
        thr, _ = M.best_f1_threshold(d["oof_labels"], d["oof_calibrated"], d["oof_weights"])
        assert thr == model.threshold_
    assert "INFO" in (run / "ml_pipeline.log").read_text()


@pytest.mark.parametrize("fam", FAMILIES)
def test_pickles_and_documents_predict_on_raw_columns(run, small, fam):
    _, _, test = small
    with open(run / f"{fam}_model.pkl", "rb") as f:
        model = pickle.load(f)
    assert isinstance(model, PropensityModel) and model.model_name_ == fam
    p_df = model.predict_proba(test)[:, 1]          # DataFrame with extra columns
    p_arr = model.predict_proba(test[SESSION_FEATURES].to_numpy())[:, 1]
    np.testing.assert_allclose(p_df, p_arr)
    np.testing.assert_allclose(model.predict_proba(test[SESSION_FEATURES].astype(float))[:, 1], p_df)
    assert ((p_df >= 0) & (p_df <= 1)).all()
    doc = load_model(run / f"{fam}_model.propmodel")
    np.testing.assert_allclose(doc.predict_proba(test)[:, 1], p_df)
    assert model.input_columns_ == SESSION_FEATURES and model.binary_columns_ == SESSION_FEATURES
    assert model.schema_.all_binary and 0 < model.threshold_ < 1
    np.testing.assert_array_equal(model.predict(test), (p_df >= model.threshold_).astype(int))
    prof = model.training_profile_
    f = prof["features"]["saw_checkout"]
    assert f["edges"] == [-0.5, 0.5, 1.5] and sum(f["fractions"]) == pytest.approx(1)
    assert len(prof["score"]["edges"]) == len(prof["score"]["fractions"]) + 1
    bad = test[SESSION_FEATURES].copy()
    bad.loc[bad.index[3], "sign_in"] = 7
    with pytest.raises(ValueError, match="row 3, column 'sign_in'"):
        model.predict_proba(bad)


def _bad_files(d, train):
    cases = {}
    p = d / "no_target.csv"
    train.drop(columns=["ordered"]).to_csv(p, index=False)
    cases["no_target"] = (p, "target column 'ordered' not found")
    p = d / "not_binary.csv"
    train.assign(ordered=np.arange(len(train)) % 3).to_csv(p, index=False)
    cases["not_binary"] = (p, "not binary")
    p = d / "empty.csv"
    p.write_text("")
    cases["empty"] = (p, "empty")
    p = d / "header_only.csv"
    p.write_text(",".join(train.columns) + "\n")
    cases["header_only"] = (p, "no data rows")
    p = d / "text.csv"
    t = train.astype({"sign_in": object})
    t.loc[5, "sign_in"] = "yes please"
    t.to_csv(p, index=False)
    cases["text"] = (p, r"line 7 \(data row 6\), column 'sign_in'.*'yes please'")
    p = d / "dup.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(train.columns) + ["sign_in"])
        for row in train.head(50).itertuples(index=False):
            w.writerow(list(row) + [0])
    cases["dup"] = (p, r"duplicate column.*sign_in")
    p = d / "few_pos.csv"
    t = train.copy()
    t["ordered"] = 0
    t.loc[:1, "ordered"] = 1
    t.to_csv(p, index=False)
    cases["few_pos"] = (p, "positive")
    cases["missing_file"] = (d / "nope.csv", "not found")
    return cases


@pytest.mark.parametrize("case", ["no_target", "not_binary", "empty", "header_only", "text",
                                  "dup", "few_pos", "missing_file"])
def test_bad_input_fails_cleanly_and_keeps_previous_outputs(small, tmp_path, capsys, case):
    d, train, _ = small
    path, message = _bad_files(tmp_path, train)[case]
    out = tmp_path / "ml_outputs"
    out.mkdir()
    (out / "previous.txt").write_text("keep me")
    (out / "manifest.json").write_text("{}")
    code = main(["--train-file", str(path), "--output-dir", str(out), "--quiet",
                 "--grid", str(d / "grid.toml")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(path.name) in err
    import re
    assert re.search(message, err), err
    assert sorted(os.listdir(out)) == ["manifest.json", "previous.txt"]
    assert (out / "manifest.json").read_text() == "{}"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".ml_outputs")]


def test_unwritable_output_folder(small, tmp_path, capsys):
    d, _, _ = small
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["--train-file", str(d / "train.csv"), "--output-dir", str(blocker / "out"),
                 "--quiet", "--grid", str(d / "grid.toml")])
    assert code == 3
    assert "cannot write the output folder" in capsys.readouterr().err


def test_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--models", "svm"])
    assert exc.value.code == 2
    assert "unknown model 'svm'" in capsys.readouterr().err
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"random_forest": {"n_trees": [1]}}))
    assert main(["--grid", str(g), "--output-dir", str(tmp_path / "o"), "--quiet",
                 "--models", "rf"]) == 2
    assert "n_trees" in capsys.readouterr().err


def test_generic_csv_with_strings_and_no_id(small, tmp_path):
    rng = np.random.default_rng(0)
    n = 1500
    df = pd.DataFrame({
        "visits": rng.poisson(3, n).astype(float),
        "member": rng.choice(["TRUE", "FALSE"], n),
        "channel": rng.choice(["web", "app", "store"], n),
        "sign_in": rng.integers(0, 2, n),
        "saw_checkout": rng.integers(0, 2, n),
    })
    logit = -2 + 0.5 * df.visits + 1.5 * (df.member == "TRUE") + (df.channel == "app") \
        + 2 * df.sign_in * df.saw_checkout
    df["bought"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    df.to_csv(tmp_path / "g.csv", index=False)
    df.head(100).drop(columns=["bought"]).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    assert main(["--train-file", str(tmp_path / "g.csv"), "--test-file", str(tmp_path / "t.csv"),
                 "--target", "bought", "--id-column", "none", "--output-dir", str(out),
                 "--models", "lr,gb", "--quiet", "--grid", str(small[0] / "grid.toml")]) == 0
    best = json.loads((out / "manifest.json").read_text())["best_model"]
    m = load_model(out / f"{best}_model.propmodel")
    assert m.input_columns_ == ["visits", "member", "channel", "sign_in", "saw_checkout"]
    kinds = {c.name: c for c in m.schema_.columns}
    assert kinds["channel"].kind == "category"
    assert kinds["channel"].categories == ("app", "store", "web")
    assert kinds["channel"].native   # --categorical auto: one feature of category codes
    assert kinds["member"].kind == "binary"
    assert "sign_in_x_saw_checkout" in m.feature_names_out_
    assert "channel" in m.feature_names_out_
    pred = pd.read_csv(out / "test_predictions.csv")
    assert list(pred.UserID) == list(range(100))
    p = m.predict_proba(df.head(100))[:, 1]
    np.testing.assert_allclose(pred.purchase_probability, np.round(p, 6))
    assert not (out / "random_forest_model.pkl").exists()


@pytest.mark.slow
def test_full_size_embedded_run(tmp_path):
    out = tmp_path / "ml_outputs"
    assert main(["--output-dir", str(out), "--quiet"]) == 0
    ev = json.loads((out / "model_evaluation_results.json").read_text())
    man = json.loads((out / "manifest.json").read_text())
    assert man["training_data"]["n_rows"] == 455401
    best = man["best_model"]
    assert ev[best]["roc_auc"] >= 0.99
    assert len(pd.read_csv(out / "test_predictions.csv")) == 151655


def _dead_pid():
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_folders_of_interrupted_runs_are_cleaned_or_restored(tmp_path):
    from propensity.io.fileio import clean_stale as _clean_stale
    from propensity.io.fileio import prepare_output_folder as _prepare_tmp

    out = tmp_path / "ml_outputs"
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".ml_outputs.tmp-{dead}-abc"
    running = tmp_path / f".ml_outputs.tmp-{alive}-def"
    for d in (stale, running):
        d.mkdir()
        (d / "part.csv").write_text("x")
    # killed between its two renames: the previous outputs live only in .old-
    old = tmp_path / f".ml_outputs.old-{dead}-ghi"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    _clean_stale(str(out))
    assert not stale.exists() and running.exists()          # a live run is left alone
    assert (out / "manifest.json").read_text() == "{}" and not old.exists()
    output_dir, tmp = _prepare_tmp(str(out))
    assert os.path.basename(tmp).startswith(f".ml_outputs.tmp-{alive}-")


def test_quiet_prints_no_info_lines_but_the_log_file_keeps_them(tmp_path):
    """--quiet in a fresh process: nothing on stderr but warnings; ml_pipeline.log still
    holds the INFO lines of the run."""
    import subprocess
    import sys as _sys
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in _sys.path if p))
    r = subprocess.run([_sys.executable, "-m", "propensity.train", "--quiet", "--models", "lr",
                        "--output-dir", str(out)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "INFO" not in r.stderr and r.stdout == ""
    assert "INFO" in (out / "ml_pipeline.log").read_text()
