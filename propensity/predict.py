"""``python -m propensity.predict`` / ``propensity-predict``: score a CSV with a trained model.

    python -m propensity.predict --input_file your_data.csv --output_file predictions.csv

Exit codes: :data:`EXIT_CODES` (also in ``--help``). On an error no output file is left.
"""
import argparse
import logging
import sys

from . import __version__
from ._cli import (EXIT_SIGINT, EXIT_SIGTERM, Terminated, add_format_options,
                   bounded_int, cli_logging, exit_codes_epilog, interrupted, percent,
                   positive_number, segment_edges, signals_as_exceptions)
from .errors import OutputError, SameFileError
from .scoring.predictor import (CustomerPropensityPredictor, InputDataError, ModelIntegrityError,
                        ModelNotFoundError)

logger = logging.getLogger("propensity.predict")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MODEL_MISSING, EXIT_MODEL_BAD, EXIT_INPUT = 0, 1, 2, 3, 4, 5
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_ERROR, "any other error"),
    (EXIT_USAGE, "bad command-line usage, or an output that is the same file as the input, "
                 "a model file or the other output, or --top-percent/--budget with a model "
                 "saved without its training score distribution"),
    (EXIT_MODEL_MISSING, "model folder, manifest or model file missing (or not a folder)"),
    (EXIT_MODEL_BAD, "model damaged: checksum mismatch, malformed, newer format version"),
    (EXIT_INPUT, "bad input (missing file, no known feature column, bad value, wrong "
                 "delimiter or encoding, truncated last line) or an output that cannot be "
                 "written (a folder, a missing or unwritable folder, disk full, file-size "
                 "limit)"),
    (EXIT_SIGINT, "interrupted by SIGINT (Ctrl-C); the temporary output removed"),
    (EXIT_SIGTERM, "terminated by SIGTERM; the temporary output removed"),
)


def build_parser():
    p = argparse.ArgumentParser(
        prog="propensity-predict",
        description="Score website sessions with the best trained propensity model.",
        epilog=exit_codes_epilog(EXIT_CODES), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--input_file", "--input-file", required=True,
                   help="sessions to score: CSV, gzip CSV or Parquet (.parquet/.pq); '-' for "
                        "standard input")
    p.add_argument("--output_file", "--output-file", required=True,
                   help="predictions to write: CSV, gzip CSV when it ends in .gz, Parquet for "
                        ".parquet/.pq; '-' for standard output")
    p.add_argument("--model_dir", "--model-dir", default="ml_outputs",
                   help="folder with manifest.json and the models (default: ml_outputs)")
    p.add_argument("--model", default=None,
                   help="model name to use instead of the manifest's best, e.g. random_forest")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--threshold", type=float, default=None,
                        help="decision threshold (default: the one the model's targeting "
                             "policy chose and stored with it)")
    choice.add_argument("--top-percent", type=percent, default=None, metavar="P",
                        help="flag the P %% highest scores: the threshold at which the "
                             "training score distribution stored with the model reaches P %% "
                             "(the input's own share can differ when it differs from the "
                             "training data)")
    choice.add_argument("--budget", type=positive_number, default=None, metavar="N",
                        help="N contacts per --budget-sessions sessions: --top-percent "
                             "100*N/S, from the training score distribution")
    p.add_argument("--budget-sessions", type=positive_number, default=None, metavar="S",
                   help="the sessions --budget is spread over, e.g. the rows of the input")
    add_format_options(p, "the input CSV")
    p.add_argument("--chunksize", type=bounded_int(1), default=100_000, help="rows per block (default 100000)")
    p.add_argument("--segments", action="store_true",
                   help="add a segment column: High (p > 0.5), Medium (0.1-0.5), Low (< 0.1)")
    p.add_argument("--segment-edges", type=segment_edges, default=None, metavar="LOW,HIGH",
                   help="the segment column's edges instead of 0.1,0.5: High above HIGH, "
                        "Medium from LOW to HIGH, Low below LOW (implies --segments)")
    p.add_argument("--drift-report", metavar="FILE", default=None,
                   help="write population stability indices of the input against the training "
                        "data to FILE (JSON); warns when any PSI > 0.2")
    p.add_argument("--coerce", action="store_true",
                   help="clip values other than 0/1 to 0/1 instead of failing")
    p.add_argument("--fill-missing", type=int, choices=[0], default=None,
                   help="fill empty cells with 0 instead of failing")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load the .pkl model (runs code from the file: trusted files only)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="score on a Dask cluster: its scheduler address (tcp://host:8786) or "
                        "'local' for a LocalCluster here; the workers must be able to read "
                        "--input_file. Needs pip install 'propensity[dask]' (default: no Dask)")
    p.add_argument("--explain", metavar="K", type=bounded_int(1), default=0,
                   help="add reason_1..reason_K, the input columns pushing each score up most "
                        "(exact SHAP contributions), and reason_1_contribution..")
    p.add_argument("--quiet", action="store_true", help="no progress display and no info messages")
    return p


def _shows_progress(args):
    return not args.quiet and args.input_file != "-" and sys.stderr.isatty()


def _progress(args):
    if not _shows_progress(args):
        return None, None
    from tqdm import tqdm

    bar = tqdm(unit=" rows", unit_scale=True, file=sys.stderr, desc="scoring", mininterval=0.5)
    return bar, bar.update


def _parquet(path, output):
    from .io.formats import PARQUET, input_format, output_format
    return (output_format if output else input_format)(path) == PARQUET


def _plain_csv(path):
    from .io.formats import CSV, output_format
    return output_format(path) == CSV


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    with signals_as_exceptions():
        try:
            return _main(parser, args)
        except (KeyboardInterrupt, Terminated) as exc:
            code, name = interrupted(exc)
            print(f"error: interrupted by {name}; no output written (a previous output file "
                  f"is unchanged)", file=sys.stderr)
            return code


def _main(parser, args):
    if args.chunksize < 1:
        parser.error("--chunksize must be >= 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        parser.error("--threshold must be in [0, 1]")
    if args.scheduler is not None and (args.input_file == "-" or args.drift_report):
        parser.error("--scheduler reads a file the workers can open: it does not take "
                     "standard input or --drift-report")
    if args.scheduler is not None and (args.sep != "," or args.encoding != "utf-8" or
                                       not _plain_csv(args.input_file) or
                                       not _plain_csv(args.output_file)):
        parser.error("--scheduler reads and writes plain comma-separated UTF-8 files: it does "
                     "not take --sep, --encoding, gzip or Parquet files")
    if args.scheduler is not None and args.explain:
        parser.error("--explain is not available with --scheduler")
    if args.explain and (_parquet(args.input_file, output=False) or
                         _parquet(args.output_file, output=True)):
        parser.error("--explain reads and writes CSV files (plain or gzip), not Parquet")
    if args.segment_edges is not None:   # other edges imply the segment column
        args.segments = args.segment_edges
    if (args.budget is None) != (args.budget_sessions is None):
        parser.error("--budget N and --budget-sessions S go together (N contacts per S "
                     "sessions scored)")
    if args.budget is not None:
        from .training.campaign import check_budget
        try:
            args.share = check_budget(args.budget, args.budget_sessions)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        args.share = None if args.top_percent is None else args.top_percent / 100.0
    with cli_logging(args.quiet, _shows_progress(args)):
        code, msg = _score(args)
    if msg is not None:
        print(f"error: {msg}", file=sys.stderr)
    return code


def _score(args):
    """Score as asked: ``(exit code, error message or None)``."""
    bar = None
    try:
        predictor = CustomerPropensityPredictor(args.model_dir, allow_pickle=args.allow_pickle)
        if args.model:
            predictor.load_model(args.model)
        else:
            predictor.load_best_model()
        n_inputs = len(predictor.model.input_columns_)
        if args.explain > n_inputs:
            return EXIT_USAGE, (f"--explain {args.explain}: the model {predictor.model_name} "
                                f"has {n_inputs} input columns")
        if args.share is not None:
            try:
                args.threshold = predictor.require_model().threshold_for_share(args.share)
            except ValueError as exc:
                return EXIT_USAGE, f"{exc}"
            logger.info("flagging %.4g%% of the training score distribution: threshold %.6g",
                        100 * args.share, args.threshold)
        if args.scheduler is not None:
            from .dask import get_client, score_csv_dask
            with get_client(args.scheduler):
                summary = score_csv_dask(
                    predictor, args.input_file, args.output_file, threshold=args.threshold,
                    segments=args.segments, coerce=args.coerce, fill_missing=args.fill_missing)
            if not args.quiet and args.output_file != "-":
                print(f"scored {summary['rows']} rows with {predictor.model_name} on the Dask "
                      f"cluster (threshold {summary['threshold']:.4g}) -> {args.output_file}",
                      file=sys.stderr)
            return EXIT_OK, None
        bar, update = _progress(args)
        summary = predictor.predict_from_file(
            args.input_file, args.output_file, chunksize=args.chunksize,
            threshold=args.threshold, segments=args.segments, coerce=args.coerce,
            fill_missing=args.fill_missing, drift_report=args.drift_report, progress=update,
            sep=args.sep, encoding=args.encoding, explain=args.explain)
        if bar is not None:
            bar.close()
            bar = None
        if not args.quiet and args.output_file != "-":
            print(f"scored {summary['rows']} rows with {predictor.model_name} "
                  f"(threshold {summary['threshold']:.4g}) -> {args.output_file}", file=sys.stderr)
        return EXIT_OK, None
    except ModelNotFoundError as exc:
        code, msg = EXIT_MODEL_MISSING, str(exc)
    except ModelIntegrityError as exc:
        code, msg = EXIT_MODEL_BAD, str(exc)
    except SameFileError as exc:
        code, msg = EXIT_USAGE, str(exc)
    except (InputDataError, OutputError) as exc:
        code, msg = EXIT_INPUT, str(exc)
    except (OSError, ValueError, ImportError) as exc:
        code, msg = EXIT_ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        if bar is not None:
            bar.close()
    return code, msg


if __name__ == "__main__":
    sys.exit(main())
