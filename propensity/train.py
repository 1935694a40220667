"""Command line of the training pipeline (was ``python3 ml_pipeline_mvp.py``).

    python -m propensity.train                       # embedded stand-in data
    python -m propensity.train --train-file training_sample.csv --test-file testing_sample.csv

Only argument parsing, logging set-up and reporting live here; the work is
:func:`propensity.pipeline.run_training`. Exit codes: :data:`EXIT_CODES` (also in
``--help``).
"""
import argparse
import os
import sys

from . import __version__
from ._cli import (EXIT_SIGINT, EXIT_SIGTERM, Terminated, add_format_options, bounded_int,
                   cli_logging, exit_codes_epilog, interrupted, n_jobs, percent,
                   positive_number, signals_as_exceptions)
from .learn.estimators import FAMILIES

EXIT_OK, EXIT_DATA, EXIT_OUTPUT = 0, 2, 3
EXIT_CODES = (
    (EXIT_OK, "success"),
    (1, "an unexpected error (a bug: the traceback is printed; please report it)"),
    (EXIT_DATA, "bad arguments or input data (the message names the file, column and row), "
                "or an input inside --output-dir"),
    (EXIT_OUTPUT, "the outputs cannot be written (folder not writable, disk full, file-size "
                  "limit); the previous outputs are unchanged"),
    (EXIT_SIGINT, "interrupted by SIGINT (Ctrl-C); temporary files removed"),
    (EXIT_SIGTERM, "terminated by SIGTERM; temporary files removed"),
)

_ALIASES = {"lr": "logistic_regression", "logreg": "logistic_regression",
            "rf": "random_forest", "gb": "gradient_boosting", "gbdt": "gradient_boosting",
            "xgboost": "gradient_boosting"}


def _models(text):
    out = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        name = _ALIASES.get(part.lower(), part.lower())
        if name not in FAMILIES:
            raise argparse.ArgumentTypeError(
                f"unknown model {part!r}; choose from {', '.join(FAMILIES)}")
        if name not in out:
            out.append(name)
    if not out:
        raise argparse.ArgumentTypeError("no model given")
    return out


def _column_list(text):
    """Comma-separated column names (none empty) for --categorical-columns."""
    names = [c.strip() for c in text.split(",")]
    if not text.strip() or any(not c for c in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return tuple(names)


def build_parser():
    p = argparse.ArgumentParser(
        prog="propensity-train",
        description="Train the purchase-propensity models (logistic regression, random forest, "
                    "gradient boosting) with cross-validated grid search, tuned thresholds and "
                    "calibrated probabilities, and write the models, metrics, plots and test "
                    "predictions to the output folder.",
        epilog=exit_codes_epilog(EXIT_CODES), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--train-file", help="training CSV, gzip CSV or Parquet file (default: "
                                        "the embedded 455,401-row stand-in data set)")
    p.add_argument("--test-file", help="CSV to predict with the best model (default: a generated "
                                       "testing-style file)")
    add_format_options(p, "the training and test CSV files")
    p.add_argument("--output-dir", default="ml_outputs", help="output folder (default: %(default)s)")
    p.add_argument("--target", default="ordered", help="target column (default: %(default)s)")
    p.add_argument("--id-column", default="UserID",
                   help="identifier column, not a feature; 'none' for no id (default: %(default)s)")
    p.add_argument("--models", type=_models, default=list(FAMILIES),
                   help="comma-separated models to train (default: all three)")
    p.add_argument("--cv-folds", type=bounded_int(2), default=3, help="cross-validation folds (default: 3)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split and folds (default: 42)")
    p.add_argument("--n-jobs", type=n_jobs, default=None,
                   help="threads per estimator (default: all cores)")
    p.add_argument("--grid", metavar="FILE",
                   help="TOML or JSON file overriding the default parameter grids, e.g. "
                        "[random_forest] max_depth = [10, \"none\"]")
    p.add_argument("--calibration", choices=("isotonic", "platt", "none"), default="isotonic",
                   help="probability calibration on out-of-fold scores (default: %(default)s)")
    p.add_argument("--categorical", choices=("auto", "onehot"), default="auto",
                   help="text columns: 'auto' makes each one categorical feature of every "
                        "model (its 254 most frequent values keep a category each, the rest "
                        "and values unseen at training share 'other'; logistic regression "
                        "target encodes it), 'onehot' one 0/1 column per value (at most 1,000 "
                        "values) (default: %(default)s)")
    p.add_argument("--categorical-columns", type=_column_list, default=(), metavar="A,B",
                   help="columns read as categories even when they hold numbers (codes such "
                        "as a region number); an empty cell is a missing value")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="read and reduce --train-file on a Dask cluster: its scheduler address "
                        "(tcp://host:8786) or 'local' for a LocalCluster here; the workers must "
                        "be able to read the file, whose features must be 0/1 columns. Needs "
                        "pip install 'propensity[dask]' (default: no Dask)")
    g = p.add_argument_group("targeting policy (how each model's decision threshold is chosen, "
                             "on out-of-fold scores; README \"Campaigns\")")
    g.add_argument("--target-policy", choices=("f1", "profit", "top-percent", "budget"),
                   default="f1",
                   help="f1: best F1; profit: most expected profit (needs --contact-cost and "
                        "--order-value); top-percent: contact the --top-percent P %% highest "
                        "scores; budget: --budget N contacts per --budget-sessions sessions "
                        "(default: %(default)s)")
    g.add_argument("--contact-cost", type=positive_number, default=None, metavar="C",
                   help="cost of contacting one customer (with --order-value: the profit "
                        "policy, and expected profit in the evaluation of any policy)")
    g.add_argument("--order-value", type=positive_number, default=None, metavar="V",
                   help="value of one order; must be above --contact-cost")
    g.add_argument("--top-percent", type=percent, default=None, metavar="P",
                   help="share of sessions to contact, in (0, 100], for --target-policy "
                        "top-percent")
    g.add_argument("--budget", type=positive_number, default=None, metavar="N",
                   help="contacts per --budget-sessions sessions scored, for --target-policy "
                        "budget")
    g.add_argument("--budget-sessions", type=positive_number, default=None, metavar="S",
                   help="the sessions --budget is spread over (default: the number of rows of "
                        "the training data)")
    p.add_argument("--quiet", action="store_true", help="no progress display or summary")
    return p


def _policy(args):
    """The targeting policy of the arguments, or an error message."""
    from .training.campaign import TargetPolicy
    try:
        return TargetPolicy(kind=args.target_policy, contact_cost=args.contact_cost,
                            order_value=args.order_value, percent=args.top_percent,
                            budget=args.budget, budget_sessions=args.budget_sessions).checked()
    except ValueError as exc:
        return str(exc)


def main(argv=None):
    args = build_parser().parse_args(argv)
    with signals_as_exceptions():
        try:
            return _main(args)
        except (KeyboardInterrupt, Terminated) as exc:
            code, name = interrupted(exc)
            print(f"propensity-train: interrupted by {name}; the output folder was left "
                  f"unchanged and the run's temporary files removed", file=sys.stderr)
            return code


def _main(args):
    id_column = None if args.id_column.strip().lower() == "none" else args.id_column
    policy = _policy(args)
    if isinstance(policy, str):
        print(f"propensity-train: error: {policy}", file=sys.stderr)
        return EXIT_DATA
    args.policy = policy
    progress = not args.quiet and sys.stderr.isatty()
    if args.scheduler is not None and args.train_file is None:
        print("propensity-train: error: --scheduler needs --train-file (a CSV the workers "
              "can read)", file=sys.stderr)
        return EXIT_DATA
    if args.scheduler is not None and (args.sep != "," or args.encoding != "utf-8"):
        print("propensity-train: error: --scheduler reads comma-separated UTF-8 files: it "
              "does not take --sep or --encoding", file=sys.stderr)
        return EXIT_DATA
    with cli_logging(args.quiet, progress):
        res = _train(args, id_column, progress)
    if isinstance(res, int):
        return res
    if not args.quiet:
        print(f"{'model':<22}{'F1':>8}{'precision':>11}{'recall':>8}{'ROC-AUC':>9}"
              f"{'threshold':>11}")
        for fam, m in res.metrics.items():
            star = " *" if fam == res.best_model else ""
            print(f"{fam:<22}{m['f1']:>8.4f}{m['precision']:>11.4f}{m['recall']:>8.4f}"
                  f"{m['roc_auc']:>9.4f}{m['threshold']:>11.3f}{star}")
        pol = res.metrics[res.best_model]["policy"]
        at = pol["validation"]
        money = f", expected profit {at['expected_profit']:,.2f}" if "expected_profit" in at else ""
        print(f"policy {pol['kind']} with {res.best_model}: contacting {at['contacts_pct']:.1f}% "
              f"of the validation sessions reaches {at['buyers_pct']:.1f}% of the buyers{money}")
        print(f"best model: {res.best_model}; outputs in {os.path.relpath(res.output_dir)} "
              f"({res.timings['total']:.1f}s)")
    return EXIT_OK


def _train(args, id_column, progress):
    """The run: its results, or the exit code of a failure (its message printed)."""
    from .errors import SameFileError
    from .io.data import DataError
    from .training.pipeline import TrainingError, run_training

    client = None
    try:
        train_source = args.train_file
        if args.scheduler is not None:
            from .dask import get_client, load_training_dask
            client = get_client(args.scheduler)
            train_source = load_training_dask(args.train_file, target=args.target,
                                              id_column=id_column)
        res = run_training(
            train_source, args.test_file, args.output_dir, target=args.target,
            id_column=id_column, models=args.models, cv_folds=args.cv_folds, seed=args.seed,
            n_jobs=args.n_jobs, grid=args.grid,
            calibration=None if args.calibration == "none" else args.calibration,
            progress=progress, sep=args.sep, encoding=args.encoding, policy=args.policy,
            categorical=args.categorical, category_columns=args.categorical_columns)
    except (DataError, SameFileError, ImportError) as exc:
        print(f"propensity-train: error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except TrainingError as exc:
        print(f"propensity-train: error: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    finally:
        if client is not None:
            client.close()
    return res


if __name__ == "__main__":
    sys.exit(main())
