"""Input formats of both commands: gzip CSV in (by its bytes) and out (by the name),
other delimiters (--sep, and the hint when it is missing), other encodings
(--encoding, else a refusal naming the line and byte). Each checks against the plain
UTF-8 comma file: the same training table and model bytes, the same scores."""
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from conftest import FEATURES, SMALL_GRID, package_env, session_rows, write_sessions_csv
from propensity import CustomerPropensityPredictor, predict, train
from propensity.datasets import make_sessions
from propensity.errors import DataError
from propensity.io import blocks, table as table_mod
from propensity.io.table import read_training_file
from propensity.scoring.predictor import InputDataError


@pytest.fixture(scope="module")
def predictor(model_dir):
    p = CustomerPropensityPredictor(model_dir)
    p.load_best_model()
    return p


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """A training file with a text id holding a non-ASCII letter, as UTF-8 CSV."""
    folder = tmp_path_factory.mktemp("formats")
    df = make_sessions(3000, seed=11)
    df["UserID"] = [f"kund\u00e9-{i}" for i in range(len(df))]
    path = folder / "train.csv"
    df.to_csv(path, index=False)
    return folder, path, df


def _scores(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        out = pd.read_csv(f, dtype={"UserID": str}, keep_default_na=False)
    return out.drop(columns=["prediction_timestamp"])


def _variant(folder, df, name, *, sep=",", encoding="utf-8", gz=False):
    text = df.to_csv(index=False, sep=sep).encode(encoding)
    path = folder / name
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


# ---- the training table --------------------------------------------------------------
@pytest.mark.parametrize("kw, name", [
    (dict(gz=True), "train.csv.gz"),
    (dict(gz=True), "train_gzip_without_suffix.csv"),
    (dict(sep=";"), "train_semi.csv"),
    (dict(sep="\t"), "train.tsv"),
    (dict(sep="|", encoding="latin-1", gz=True), "train_pipe_latin1.csv.gz"),
    (dict(encoding="utf-16"), "train_utf16.csv"),
])
def test_training_table_is_the_plain_files(sessions, kw, name):
    folder, plain, df = sessions
    path = _variant(folder, df, name, **kw)
    ref = read_training_file(plain)
    got = read_training_file(path, sep=kw.get("sep", ","), encoding=kw.get("encoding", "utf-8"),
                             block_bytes=1 << 14)
    assert got.fingerprint() == ref.fingerprint()
    assert got.n_rows == ref.n_rows == len(df)


def test_gzip_sample_and_stream_beyond_it(sessions, monkeypatch):
    """The sample comes from the beginning of the decompressed stream; rows after it are
    read by the same blocks, and a bad row late in a gzip file is named by its line."""
    folder, plain, df = sessions
    monkeypatch.setattr(table_mod, "SAMPLE_ROWS", 200)
    monkeypatch.setattr(table_mod, "SAMPLE_BYTES", 1 << 14)
    ref = read_training_file(plain, block_bytes=1 << 13)
    path = _variant(folder, df, "sample.csv.gz", gz=True)
    seen = []
    got = read_training_file(path, block_bytes=1 << 13, progress=lambda n, b: seen.append((n, b)))
    assert got.fingerprint() == ref.fingerprint()
    # progress counts the rows and the bytes of the compressed file (what a bar shows)
    assert len(seen) > 1 and sum(n for n, _ in seen) == len(df)
    assert [b for _, b in seen] == sorted(b for _, b in seen)
    assert seen[-1][1] == os.path.getsize(path)
    text = df.to_csv(index=False).encode()
    lines = text.split(b"\n")
    lines[2500] = lines[2500].replace(b"kund\xc3\xa9", b"kund\xe9", 1)
    bad = folder / "late_latin1.csv.gz"
    bad.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(DataError, match=r"late_latin1.csv.gz: line 2501 is not UTF-8 text "
                                        r"\(byte 0xE9 at byte 5 of the line\)"):
        read_training_file(bad, block_bytes=1 << 13)
    with pytest.raises(DataError, match="line 2501 is not UTF-8"):
        read_training_file(_plain_copy(folder, b"\n".join(lines)), block_bytes=1 << 13)


def _plain_copy(folder, data):
    path = folder / "late_latin1.csv"
    path.write_bytes(data)
    return path


def test_a_fifo_trains_like_the_file(sessions, tmp_path):
    """A stream that is not a regular file (a pipe) is read to its end, gzip or not."""
    folder, plain, df = sessions
    ref = read_training_file(plain)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    data = gzip.compress(plain.read_bytes())
    writer = subprocess.Popen([sys.executable, "-c",
                               "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())",
                               str(fifo)], stdin=subprocess.PIPE)
    writer.stdin.write(data)
    writer.stdin.close()
    got = read_training_file(fifo)
    writer.wait(timeout=60)
    assert got.fingerprint() == ref.fingerprint()


# ---- whole runs: the same model and scores -------------------------------------------
def test_train_and_predict_agree_on_a_latin1_semicolon_gzip_file(sessions, tmp_path, capsys):
    """The same rows as latin-1, ';'-separated, gzip-compressed files: --sep and
    --encoding give the model bytes of the plain run; without them both commands refuse
    the file naming the line; predictions are UTF-8 (the id's letter intact)."""
    folder, plain, df = sessions
    (tmp_path / "grid.toml").write_text(SMALL_GRID)
    test_df = df.drop(columns=["ordered"]).head(500)
    test_plain = tmp_path / "test.csv"
    test_df.to_csv(test_plain, index=False)
    odd_train = _variant(tmp_path, df, "train_odd.csv.gz", sep=";", encoding="latin-1", gz=True)
    odd_test = _variant(tmp_path, test_df, "test_odd.csv.gz", sep=";", encoding="latin-1",
                        gz=True)
    common = ["--grid", str(tmp_path / "grid.toml"), "--models", "gb", "--quiet"]
    assert train.main(["--train-file", str(plain), "--test-file", str(test_plain),
                       "--output-dir", str(tmp_path / "a"), *common]) == 0
    assert train.main(["--train-file", str(odd_train), "--test-file", str(odd_test),
                       "--output-dir", str(tmp_path / "b"), "--sep", ";", "--encoding",
                       "latin-1", *common]) == 0
    model = "gradient_boosting_model.propmodel"
    assert (tmp_path / "a" / model).read_bytes() == (tmp_path / "b" / model).read_bytes()
    pd.testing.assert_frame_equal(_scores(tmp_path / "a" / "test_predictions.csv"),
                                  _scores(tmp_path / "b" / "test_predictions.csv"))
    assert "kund\u00e9-0" in (tmp_path / "b" / "test_predictions.csv").read_text("utf-8")
    capsys.readouterr()
    # without --encoding: both refuse, naming the same line
    latin = _variant(tmp_path, df, "train_latin1.csv", encoding="latin-1")
    assert train.main(["--train-file", str(latin), "--output-dir", str(tmp_path / "c"),
                       *common]) == 2
    err_train = capsys.readouterr().err
    assert predict.main(["--input_file", str(latin), "--output_file", str(tmp_path / "p.csv"),
                         "--model_dir", str(tmp_path / "a"), "--quiet"]) == predict.EXIT_INPUT
    err_predict = capsys.readouterr().err
    for err in (err_train, err_predict):
        assert "line 2 is not UTF-8 text (byte 0xE9 at byte 5 of the line)" in err, err
    assert not (tmp_path / "c").exists() and not (tmp_path / "p.csv").exists()
    # predict with --encoding and a .gz output: the plain run's scores
    out = tmp_path / "p.csv.gz"
    assert predict.main(["--input_file", str(odd_test), "--output_file", str(out), "--sep",
                         ";", "--encoding", "latin-1", "--model_dir", str(tmp_path / "a"),
                         "--quiet"]) == 0
    pd.testing.assert_frame_equal(_scores(out), _scores(tmp_path / "a" / "test_predictions.csv"))


# ---- the predictor -------------------------------------------------------------------
@pytest.mark.parametrize("chunksize", [3, 100_000])
def test_gzip_in_and_out_give_the_plain_scores(predictor, tmp_path, chunksize):
    X = session_rows(2000, seed=4)
    plain = write_sessions_csv(tmp_path / "in.csv", X, ids=[f"u{i}" for i in range(len(X))])
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    predictor_ts = dict(chunksize=chunksize)
    ref = tmp_path / "ref.csv"
    predictor.predict_from_file(plain, ref, **predictor_ts)
    out = tmp_path / "out.csv.gz"
    summary = predictor.predict_from_file(packed, out, **predictor_ts)
    assert summary["rows"] == len(X)
    # the digest is of the file's (compressed) bytes, as the manifest records them
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with gzip.open(out, "rb") as f:
        unpacked = f.read()
    strip = lambda b: [ln.rsplit(b",", 1)[0] for ln in b.splitlines()]   # noqa: E731
    assert strip(unpacked) == strip(ref.read_bytes())
    # the timestamp column is the run's own; the rest is byte for byte
    # a stream: gzip data from a pipe-like object (no seek) is found by its bytes too
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self.data.readinto(b)

    out2 = tmp_path / "out2.csv"
    predictor.predict_from_file(Pipe(packed.read_bytes()), out2, **predictor_ts)
    assert strip(out2.read_bytes()) == strip(ref.read_bytes())
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_predict_to_file_writes_gzip_by_name(predictor, tmp_path):
    X = pd.DataFrame(session_rows(50, seed=2), columns=FEATURES)
    n = predictor.predict_to_file(X, tmp_path / "p.csv.gz", timestamp="T")
    plain = predictor.predict_to_file(X, tmp_path / "p.csv", timestamp="T")
    assert n == plain == 50
    assert gzip.decompress((tmp_path / "p.csv.gz").read_bytes()) == (tmp_path / "p.csv").read_bytes()


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_sep_gives_the_comma_scores(predictor, tmp_path, sep):
    X = session_rows(300, seed=9)
    ids = [f"a,b{i}" if i % 7 == 0 else f"u{i}" for i in range(len(X))]   # ',' is plain text
    comma = write_sessions_csv(tmp_path / "c.csv", X, ids=[f'"{i}"' if "," in i else i
                                                           for i in ids])
    other = tmp_path / "o.csv"
    other.write_bytes(comma.read_bytes().replace(b",", sep.encode())
                      .replace(f'"a{sep}b'.encode(), b'"a,b'))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    predictor.predict_from_file(comma, a, chunksize=17)
    predictor.predict_from_file(other, b, chunksize=17, sep=sep)
    assert _scores(a).equals(_scores(b))
    shown = "\\t" if sep == "\t" else sep
    with pytest.raises(InputDataError, match=re.escape(f"pass --sep '{shown}'")):
        predictor.predict_from_file(other, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_encoding_converts_and_the_output_is_utf8(predictor, tmp_path):
    X = session_rows(20, seed=1)
    ids = [f"M\u00fcller-{i}" for i in range(len(X))]
    utf8 = write_sessions_csv(tmp_path / "u.csv", X, ids=ids)
    latin = tmp_path / "l.csv"
    latin.write_bytes(utf8.read_text("utf-8").encode("latin-1"))
    with pytest.raises(InputDataError, match=r"l.csv': line 2 is not UTF-8 text \(byte 0xFC "
                                             r"at byte 2 of the line\)"):
        predictor.predict_from_file(latin, tmp_path / "x.csv")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    predictor.predict_from_file(utf8, a)
    predictor.predict_from_file(latin, b, encoding="latin-1")
    assert _scores(a).equals(_scores(b))
    assert b.read_bytes().decode("utf-8").count("M\u00fcller-") == len(X)
    with pytest.raises(ValueError, match="unknown encoding"):
        predictor.predict_from_file(utf8, tmp_path / "x.csv", encoding="klingon")
    assert not (tmp_path / "x.csv").exists()


def test_predict_cli_reads_gzip_from_standard_input(model_dir, tmp_path):
    X = session_rows(100, seed=3)
    plain = write_sessions_csv(tmp_path / "in.csv", X, ids=[f"u{i}" for i in range(len(X))])
    ref = tmp_path / "ref.csv"
    assert predict.main(["--input_file", str(plain), "--output_file", str(ref),
                         "--model_dir", model_dir, "--quiet"]) == 0
    run = subprocess.run([sys.executable, "-m", "propensity.predict", "--input_file", "-",
                          "--output_file", "-", "--model_dir", model_dir, "--quiet"],
                         input=gzip.compress(plain.read_bytes()), capture_output=True,
                         env=package_env(), cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    strip = lambda b: [ln.rsplit(b",", 1)[0] for ln in b.splitlines()]   # noqa: E731
    assert strip(run.stdout) == strip(ref.read_bytes())


def test_check_sep_and_other_delimiter():
    assert blocks.check_sep("\\t") == blocks.check_sep("tab") == "\t"
    for bad in ("", ";;", '"', "\n", "\u00e9"):
        with pytest.raises(ValueError, match="sep must be one ASCII character"):
            blocks.check_sep(bad)
    assert blocks.other_delimiter(["a;b;c|d"], ",") == ";"
    assert blocks.other_delimiter(["a,b"], ";") == ","
    assert blocks.other_delimiter(["a", "b"], ",") is None
    assert blocks.other_delimiter(["plain"], ",") is None
