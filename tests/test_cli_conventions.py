"""The conventions users reach for: --version, the exit codes in --help, logging that
the CLIs configure and the library leaves alone, warnings through logging, log lines
that do not land on the progress bar."""
import logging
import subprocess
import sys
import warnings

import pytest

import propensity
from conftest import package_env
from propensity import predict, train
from propensity._cli import cli_logging


@pytest.mark.parametrize("cli, prog", [(train, "propensity-train"),
                                       (predict, "propensity-predict")])
def test_version_prints_the_package_version(cli, prog, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"{prog} {propensity.__version__}\n"


@pytest.mark.parametrize("cli", [train, predict])
def test_help_lists_every_exit_code(cli, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    listed = text[text.index("exit codes:"):].splitlines()[1:]
    codes = [int(line.split()[0]) for line in listed if line.strip() and line.split()[0].isdigit()]
    assert codes == [code for code, _ in cli.EXIT_CODES]
    assert {130, 143, 0, 2} <= set(codes)
    assert " ".join(text.split()).count("removed") >= 2  # 130 and 143 say what is cleaned up


def test_library_user_at_warning_level_sees_no_info_lines(tmp_path):
    """run_training never changes logger levels: with basicConfig(level=WARNING) a library
    user's stderr holds no INFO line, and the propensity logger's level is left unset."""
    from propensity.datasets import make_sessions
    make_sessions(2000, seed=4).to_csv(tmp_path / "train.csv", index=False)
    prog = ("import logging\n"
            "logging.basicConfig(level=logging.WARNING)\n"
            "from propensity.training.pipeline import run_training\n"
            "run_training('train.csv', output_dir='out', models=['logistic_regression'], "
            "cv_folds=2)\n"
            "assert logging.getLogger('propensity').level == logging.NOTSET\n"
            "print('done')\n")
    r = subprocess.run([sys.executable, "-c", prog], cwd=tmp_path, env=package_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\n"
    assert "INFO" not in r.stderr
    assert (tmp_path / "out" / "ml_pipeline.log").exists()


def test_cli_leaves_logging_and_warnings_as_it_found_them(tmp_path, capsys):
    pkg = logging.getLogger("propensity")
    before = (pkg.level, list(pkg.handlers), list(logging.getLogger("py.warnings").handlers),
              warnings.showwarning, list(warnings.filters))
    code = predict.main(["--input_file", str(tmp_path / "absent.csv"), "--output_file",
                         str(tmp_path / "p.csv"), "--model_dir", str(tmp_path / "nomodels")])
    assert code == predict.EXIT_MODEL_MISSING
    after = (pkg.level, list(pkg.handlers), list(logging.getLogger("py.warnings").handlers),
             warnings.showwarning, list(warnings.filters))
    assert after == before


def test_warnings_become_one_log_line(capsys):
    with cli_logging(quiet=True):
        warnings.warn("something odd in column x", UserWarning)
        warnings.warn("solver stopped early", RuntimeWarning)
        logging.getLogger("propensity.test").info("not shown with quiet")
    assert capsys.readouterr().err.splitlines() == [
        "WARNING: something odd in column x", "WARNING: RuntimeWarning: solver stopped early"]


def test_log_lines_do_not_land_on_the_progress_bar(capsys):
    """With a progress bar, log lines go through tqdm.write: the bar's line is cleared
    first, so each log line starts a line of its own."""
    from tqdm import tqdm

    with cli_logging(quiet=False, progress=True):
        bar = tqdm(total=10, file=sys.stderr, mininterval=0)
        bar.update(3)
        logging.getLogger("propensity.test").info("fold 1 done")
        bar.update(3)
        bar.close()
    err = capsys.readouterr().err
    assert "INFO: fold 1 done\n" in err
    start = err.index("INFO: fold 1 done")
    assert err[start - 1] in "\r\n", repr(err[max(0, start - 40):start + 20])
    # without the redirection the line would follow the bar's text directly
    with cli_logging(quiet=False, progress=False):
        bar = tqdm(total=10, file=sys.stderr, mininterval=0)
        bar.update(3)
        logging.getLogger("propensity.test").info("fold 2 done")
        bar.close()
    err = capsys.readouterr().err
    start = err.index("INFO: fold 2 done")
    assert err[start - 1] not in "\r\n"
