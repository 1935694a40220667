"""The training table: one pass over the rows, in blocks, into sufficient statistics.

A file read in small blocks, the same file in one block and the same rows as a frame give
the same table; fits on the table equal fits on the plain rows it stands for; the parts
are stratified and depend only on the seed and each row's position among its class; a
file that breaks the rules of its first rows late is refused with its line.
"""
import json
import os
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_GRID
from propensity.datasets import make_sessions
from propensity.errors import DataError
from propensity.io.table import (PartAssigner, read_training_file, table_from_frame)
from propensity.learn.estimators import estimator_class
from propensity.training.pipeline import run_training
from propensity.training.tuning import Part, TableFeatures, TableFolds, base_params


@pytest.fixture(scope="module")
def sessions_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "train.csv"
    df = make_sessions(6000, seed=3)
    df.to_csv(path, index=False)
    return path, df


# ---- parts -------------------------------------------------------------------------
def test_parts_do_not_depend_on_the_block_size():
    y = (np.random.default_rng(0).random(10_000) < 0.07).astype(np.uint8)
    whole = PartAssigner(3, 42)(y)
    a = PartAssigner(3, 42)
    pieces = np.concatenate([a(y[i:i + 337]) for i in range(0, y.size, 337)])
    np.testing.assert_array_equal(whole, pieces)
    assert not np.array_equal(whole, PartAssigner(3, 43)(y))      # the seed matters


def test_parts_are_stratified_by_label():
    y = np.r_[np.zeros(15 * 400, np.uint8), np.ones(15 * 30, np.uint8)]
    np.random.default_rng(1).shuffle(y)
    part = PartAssigner(3, 7)(y)
    for c in (0, 1):
        counts = np.bincount(part[y == c], minlength=4)
        n = (y == c).sum()
        assert counts[3] == n // 5                     # validation: exactly 20%
        assert (counts[:3] == 4 * n // 15).all()       # each fold: 4 of every 15
    no_val = PartAssigner(4, 7, validation=False)(y)
    assert set(np.unique(no_val)) == {0, 1, 2, 3}
    assert np.ptp(np.bincount(no_val[y == 1], minlength=4)) <= 1


# ---- one table from any source --------------------------------------------------------
def test_blocks_and_frames_give_the_same_table(sessions_csv):
    path, df = sessions_csv
    big = read_training_file(path)
    small = read_training_file(path, block_bytes=1 << 12)   # about 40 rows a block
    frame = table_from_frame(df)
    for t in (small, frame):
        np.testing.assert_array_equal(t.rows, big.rows)
        np.testing.assert_array_equal(t.counts, big.counts)
        assert t.fingerprint() == big.fingerprint()
        assert t.schema == big.schema
    assert big.n_rows == len(df) and big.distinct
    lc = big.label_counts
    assert lc[1] == df.ordered.sum() and lc[0] == len(df) - df.ordered.sum()


def test_streamed_training_equals_training_in_memory(sessions_csv, tmp_path):
    path, df = sessions_csv
    grid = tmp_path / "grid.toml"
    grid.write_text(SMALL_GRID)
    table = read_training_file(path, block_bytes=1 << 12)
    a = run_training(path, output_dir=tmp_path / "file", grid=grid, n_jobs=1)
    b = run_training(table, output_dir=tmp_path / "table", grid=grid, n_jobs=1)
    assert a.metrics.keys() == b.metrics.keys()
    for fam in a.metrics:
        for k in ("f1", "roc_auc", "brier", "threshold", "confusion_matrix", "oof_f1"):
            assert a.metrics[fam][k] == b.metrics[fam][k], (fam, k)
        assert (tmp_path / "file" / f"{fam}_model.propmodel").read_bytes() == \
            (tmp_path / "table" / f"{fam}_model.propmodel").read_bytes()


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest",
                                    "gradient_boosting"])
def test_a_fit_on_the_table_equals_the_fit_on_the_rows(sessions_csv, family):
    """The weighted distinct rows of a fold give the model of the fold's plain rows."""
    path, df = sessions_csv
    table = read_training_file(path)
    feats = TableFeatures(table)
    folds = TableFolds(table, feats)
    train, _ = folds.fold(1)
    cls = estimator_class(family)
    params = {"random_forest": {"n_estimators": 20, "max_depth": 6},
              "gradient_boosting": {"n_estimators": 20, "max_depth": 3},
              "logistic_regression": {"C": 1.0}}[family]
    base = base_params(family, cls, train.counts.sum(axis=0), 5, 1, table.n_stored)
    on_table = folds.fit(cls(**base, **params), train)
    # the plain rows the fold stands for: each stored row repeated by its counts
    reps = train.counts.sum(axis=1)
    Z = np.repeat(feats.Z(train.index), reps, axis=0)
    y = np.concatenate([np.r_[np.zeros(c0, np.uint8), np.ones(c1, np.uint8)]
                        for c0, c1 in train.counts])
    on_rows = cls(**base, **params).fit(Z, y)
    probe = feats.Z(np.arange(table.n_stored))
    np.testing.assert_allclose(on_table.predict_proba(probe), on_rows.predict_proba(probe),
                               rtol=0, atol=1e-9 if family == "logistic_regression" else 0)


def test_numeric_rows_are_kept_row_by_row_and_trained(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame({"a": rng.normal(size=n).round(4), "b": rng.gamma(2.0, size=n).round(3),
                       "src": rng.choice(["web", "app", "mail"], size=n)})
    logit = 1.5 * df.a - 0.7 * df.b + (df.src == "app") * 1.0
    df["ordered"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path / "num.csv"
    df.to_csv(path, index=False)
    t1 = read_training_file(path)
    t2 = read_training_file(path, block_bytes=1 << 11)
    assert not t1.distinct and t1.n_stored == n
    np.testing.assert_array_equal(t1.rows, t2.rows)
    np.testing.assert_array_equal(t1.key, t2.key)
    # a numeric value's code is its bin among the sample's edges; decoding gives the
    # mean value of each bin, which lies inside the bin
    j = t1.schema.names.index("a")
    edges = t1.quantiser.edges(j)
    E = t1.decode()
    np.testing.assert_array_equal(np.searchsorted(edges, E[:, j], side="left"), t1.rows[:, j])
    res = run_training(path, output_dir=tmp_path / "out",
                       grid=str(_write(tmp_path / "g.toml", SMALL_GRID)), n_jobs=1)
    assert min(m["roc_auc"] for m in res.metrics.values()) > 0.75


@pytest.mark.parametrize("family", ["random_forest", "gradient_boosting"])
def test_rows_kept_row_by_row_train_on_labels(tmp_path, family):
    """A table kept row by row hands its parts to the trees as labels (1 byte a row, not
    an (m, 2) count matrix): the same pairs, weights and label counts, and the same
    trees as counts of one row per row, bootstrap and row subsampling included."""
    rng = np.random.default_rng(8)
    n = 4000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, size=n)})
    df["ordered"] = (rng.random(n) < 1 / (1 + np.exp(-df.a.to_numpy()))).astype(int)
    path = tmp_path / "num.csv"
    df.to_csv(path, index=False)
    table = read_training_file(path)
    assert not table.distinct
    feats = TableFeatures(table)
    folds = TableFolds(table, feats)
    train, val = folds.fold(0)
    assert train.counts is None and train.labels.dtype == np.uint8
    units = train.label_counts()
    np.testing.assert_array_equal(units[np.arange(units.shape[0]), train.labels], 1)
    np.testing.assert_array_equal(units.sum(axis=1), 1)
    np.testing.assert_array_equal(train.row_weights(), 1.0)
    np.testing.assert_array_equal(train.label_counts([5, 9]), units[[5, 9]])
    as_counts = Part(train.index, units)
    for a, b in zip((train.pair_row, train.y, train.w),
                    (as_counts.pair_row, as_counts.y, as_counts.w)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    cls = estimator_class(family)
    params = {"random_forest": {"n_estimators": 15, "max_depth": 8},
              "gradient_boosting": {"n_estimators": 15, "max_depth": 4, "subsample": 0.7}
              }[family]
    base = base_params(family, cls, units.sum(axis=0), 5, 1, table.n_stored)
    on_labels = folds.fit(cls(**base, **params), train)
    on_counts = folds.fit(cls(**base, **params), as_counts)
    probe = feats.Z(val.index)
    np.testing.assert_array_equal(on_labels.predict_proba(probe), on_counts.predict_proba(probe))
    with pytest.raises(ValueError, match="counts or labels"):
        Part(train.index)
    # each pair stands for one row: its weights are ones held in 8 bytes (a read-only
    # stride-0 view), joined across folds as such, and plain ones once pickled
    assert val.w.strides == (0,) and not val.w.flags.writeable
    y, w, per_fold = folds.oof_labels([(v.y, v.w) for v in (val, folds.fold(1)[1])])
    assert w.strides == (0,) and w.shape == y.shape and (w == 1.0).all()
    assert [p[1].shape[0] for p in per_fold] == [val.y.shape[0], folds.fold(1)[1].y.shape[0]]
    back = pickle.loads(pickle.dumps(w))
    assert back.strides == (8,) and (back == 1.0).all()


def test_finished_families_scores_are_parked_on_disk_and_written_whole(tmp_path, monkeypatch):
    """A table kept row by row: each finished family's out-of-fold scores wait in a file
    while the next families fit; the details pickle holds the same arrays as a run that
    keeps them in memory, and neither the folder nor its files are among the outputs."""
    from propensity.training import pipeline
    rng = np.random.default_rng(6)
    n = 3000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["ordered"] = (rng.random(n) < 1 / (1 + np.exp(-df.a.to_numpy()))).astype(int)
    path = tmp_path / "num.csv"
    df.to_csv(path, index=False)
    grid = str(_write(tmp_path / "g.toml", SMALL_GRID))
    parked = []
    park = pipeline._Parked.park

    def spy(self, fam, details):
        scores = details["oof_scores"]
        park(self, fam, details)
        # nothing else of the run still holds the array parked (only this frame does)
        assert sys.getrefcount(scores) == 2
        parked.append((fam, os.listdir(self.folder), details["oof_scores"].flags.writeable))

    monkeypatch.setattr(pipeline._Parked, "park", spy)
    run_training(path, output_dir=tmp_path / "parked", grid=grid, n_jobs=1)
    assert [p[0] for p in parked] == ["logistic_regression", "random_forest"]
    assert sorted(parked[1][1]) == ["logistic_regression_oof_scores.npy",
                                    "random_forest_oof_scores.npy"]
    assert not any(w for _, _, w in parked)          # read back from the file
    monkeypatch.setattr(pipeline._Parked, "park", lambda self, fam, details: None)
    run_training(path, output_dir=tmp_path / "kept", grid=grid, n_jobs=1)
    det = {}
    for name in ("parked", "kept"):
        assert not (tmp_path / name / pipeline._Parked.NAME).exists()
        files = json.loads((tmp_path / name / "manifest.json").read_text())["files"]
        assert not any("oof" in f or f.startswith(".") for f in files)
        with open(tmp_path / name / "detailed_evaluation_results.pkl", "rb") as f:
            det[name] = pickle.load(f)
    for fam, d in det["kept"].items():
        got = det["parked"][fam]
        assert type(got["oof_scores"]) is np.ndarray
        for key in ("oof_scores", "oof_calibrated", "oof_labels", "oof_weights"):
            np.testing.assert_array_equal(got[key], d[key])
            assert got[key].dtype == d[key].dtype


def test_feature_codes_are_the_stored_rows_when_they_equal_them(tmp_path, sessions_csv):
    """Continuous numeric columns without interaction features: the trees' codes are the
    stored rows themselves (no copy); otherwise (here session data, whose features
    include interactions) a copy. Either way they are the bin codes of every stored
    row's features."""
    rng = np.random.default_rng(5)
    n = 5000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, size=n)})
    df.loc[::97, "b"] = np.nan                       # missing values: the median's code
    df["ordered"] = (rng.random(n) < 1 / (1 + np.exp(-df.a.to_numpy()))).astype(int)
    path = tmp_path / "num.csv"
    df.to_csv(path, index=False)
    for table, shared in ((read_training_file(path), True),
                          (read_training_file(sessions_csv[0]), False)):
        feats = TableFeatures(table)
        assert (feats.codes is table.rows) is shared
        everything = np.arange(table.n_stored)
        np.testing.assert_array_equal(feats.codes, feats.mapper.transform(feats.Z(everything)))
    # the stored rows match the first chunks and not a later one: the copy holds the
    # stored rows' chunks so far and the codes from there on
    table = read_training_file(path)
    feats = TableFeatures(table)
    transform = feats.mapper.transform
    calls = []

    def later_chunks_differ(Z, n_jobs=None):
        c = transform(Z, n_jobs=n_jobs)
        calls.append(c.shape[0])
        if len(calls) > 2:
            c = c.copy()
            c[0, 0] = (int(c[0, 0]) + 1) % 200
        return c

    feats.mapper.transform = later_chunks_differ
    feats.chunk = 1000
    codes = feats._bin_codes(table.n_stored)
    assert codes is not table.rows and len(calls) == 5
    np.testing.assert_array_equal(codes[:2000], table.rows[:2000])
    expect = table.rows.copy()
    for a in range(2000, n, 1000):
        expect[a, 0] = (int(expect[a, 0]) + 1) % 200
    np.testing.assert_array_equal(codes, expect)


def _write(path, text):
    path.write_text(text)
    return path


# ---- bad input found late -------------------------------------------------------------
def _late(tmp_path, df, row, column, value, name):
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def long_frame():
    return make_sessions(130_000, seed=11)     # more rows than the sample


def test_a_late_bad_value_names_its_line(tmp_path, long_frame):
    path = _late(tmp_path, long_frame, 120_000, "sign_in", "maybe", "bad_value.csv")
    with pytest.raises(DataError, match=r"line 120002.*sign_in|sign_in.*line 120002"):
        read_training_file(path)


def test_a_late_third_target_value_is_refused(tmp_path, long_frame):
    path = _late(tmp_path, long_frame, 125_000, "ordered", "7", "third_label.csv")
    with pytest.raises(DataError, match="ordered"):
        read_training_file(path)


def test_a_short_row_or_a_cut_last_line_names_the_line(tmp_path, long_frame):
    path = tmp_path / "short.csv"
    long_frame.to_csv(path, index=False)
    lines = path.read_bytes().split(b"\n")
    lines[110_001] = b",".join(lines[110_001].split(b",")[:10])     # data row 110001
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match="110002"):
        read_training_file(path)
    cut = tmp_path / "cut.csv"
    data = (tmp_path / "short.csv").read_bytes()
    long_frame.to_csv(cut, index=False)
    data = cut.read_bytes()
    cut.write_bytes(data[:-30])                         # ends in the middle of a row
    with pytest.raises(DataError, match=str(len(long_frame) + 1)):
        read_training_file(cut)


def test_a_file_that_grows_while_read_is_refused(tmp_path, long_frame):
    path = tmp_path / "growing.csv"
    long_frame.to_csv(path, index=False)
    extra = path.read_bytes().split(b"\n", 1)[1][:100_000]
    extra = extra[:extra.rfind(b"\n") + 1]

    calls = []

    def grow(rows, bytes_read):
        calls.append(bytes_read)
        if len(calls) <= 3:
            with open(path, "ab") as f:
                f.write(extra)

    with pytest.raises(DataError, match="changed while it was read"):
        read_training_file(path, progress=grow, block_bytes=1 << 20)
    assert len(calls) < 100      # read to the size the file had when opened


def test_bad_training_file_leaves_no_output_folder(tmp_path, long_frame):
    path = _late(tmp_path, long_frame, 129_000, "saw_checkout", "2", "bad.csv")
    out = tmp_path / "ml_outputs"
    with pytest.raises(DataError):
        run_training(path, output_dir=out)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".ml_outputs")]


def test_fits_side_by_side_give_the_models_of_fits_in_turn(sessions_csv, tmp_path):
    """n_jobs=2 runs small grids' fits concurrently; the models are those of n_jobs=1."""
    path, _ = sessions_csv
    grid = _write(tmp_path / "grid.toml", SMALL_GRID)
    one = run_training(path, output_dir=tmp_path / "one", grid=grid, n_jobs=1)
    two = run_training(path, output_dir=tmp_path / "two", grid=grid, n_jobs=2)
    for fam in one.metrics:
        assert one.metrics[fam]["f1"] == two.metrics[fam]["f1"]
        assert (tmp_path / "one" / f"{fam}_model.propmodel").read_bytes() == \
            (tmp_path / "two" / f"{fam}_model.propmodel").read_bytes()
