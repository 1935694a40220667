"""``python -m propensity.predict`` / ``propensity-predict``: score a CSV with a trained model.

    python -m propensity.predict --input_file your_data.csv --output_file predictions.csv

Exit codes: 0 success; 2 bad command-line usage; 3 model folder, manifest or model file
missing; 4 model damaged (checksum mismatch, malformed, newer format version); 5 bad
input (missing input file, no known feature column, bad value, wrong delimiter or
encoding, truncated last line); 1 any other error. On an error no output file is left.
"""
import argparse
import logging
import sys
import warnings

from ._cli import bounded_int
from .errors import SameFileError
from .scoring.predictor import (CustomerPropensityPredictor, InputDataError, ModelIntegrityError,
                        ModelNotFoundError)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MODEL_MISSING, EXIT_MODEL_BAD, EXIT_INPUT = 0, 1, 2, 3, 4, 5


class _UsageError(Exception):
    """A usage error found after the model is loaded (exit 2)."""


def build_parser():
    p = argparse.ArgumentParser(
        prog="propensity-predict",
        description="Score website sessions with the best trained propensity model.")
    p.add_argument("--input_file", "--input-file", required=True,
                   help="CSV of sessions to score ('-' for standard input)")
    p.add_argument("--output_file", "--output-file", required=True,
                   help="predictions CSV to write ('-' for standard output)")
    p.add_argument("--model_dir", "--model-dir", default="ml_outputs",
                   help="folder with manifest.json and the models (default: ml_outputs)")
    p.add_argument("--model", default=None,
                   help="model name to use instead of the manifest's best, e.g. random_forest")
    p.add_argument("--threshold", type=float, default=None,
                   help="decision threshold (default: the one tuned and stored with the model)")
    p.add_argument("--chunksize", type=bounded_int(1), default=100_000, help="rows per block (default 100000)")
    p.add_argument("--segments", action="store_true",
                   help="add a segment column: High (p > 0.5), Medium (0.1-0.5), Low (< 0.1)")
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


def _progress(args):
    if args.quiet or args.input_file == "-" or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(unit=" rows", unit_scale=True, file=sys.stderr, desc="scoring", mininterval=0.5)
    return bar, bar.update


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunksize < 1:
        parser.error("--chunksize must be >= 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        parser.error("--threshold must be in [0, 1]")
    if args.scheduler is not None and (args.input_file == "-" or args.drift_report):
        parser.error("--scheduler reads a file the workers can open: it does not take "
                     "standard input or --drift-report")
    if args.scheduler is not None and args.explain:
        parser.error("--explain is not available with --scheduler")
    log = logging.getLogger("propensity")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    warnings.simplefilter("always", UserWarning)
    old_showwarning = warnings.showwarning
    warnings.showwarning = lambda message, category, *a, **k: print(
        f"warning: {message}", file=sys.stderr)
    bar = None
    try:
        predictor = CustomerPropensityPredictor(args.model_dir, allow_pickle=args.allow_pickle)
        if args.model:
            predictor.load_model(args.model)
        else:
            predictor.load_best_model()
        n_inputs = len(predictor.model.input_columns_)
        if args.explain > n_inputs:
            raise _UsageError(f"--explain {args.explain}: the model {predictor.model_name} "
                              f"has {n_inputs} input columns")
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
            return EXIT_OK
        bar, update = _progress(args)
        summary = predictor.predict_from_file(
            args.input_file, args.output_file, chunksize=args.chunksize,
            threshold=args.threshold, segments=args.segments, coerce=args.coerce,
            fill_missing=args.fill_missing, drift_report=args.drift_report, progress=update,
            explain=args.explain)
        if bar is not None:
            bar.close()
            bar = None
        if not args.quiet and args.output_file != "-":
            print(f"scored {summary['rows']} rows with {predictor.model_name} "
                  f"(threshold {summary['threshold']:.4g}) -> {args.output_file}", file=sys.stderr)
        return EXIT_OK
    except _UsageError as exc:
        code, msg = EXIT_USAGE, str(exc)
    except ModelNotFoundError as exc:
        code, msg = EXIT_MODEL_MISSING, str(exc)
    except ModelIntegrityError as exc:
        code, msg = EXIT_MODEL_BAD, str(exc)
    except SameFileError as exc:
        code, msg = EXIT_USAGE, str(exc)
    except InputDataError as exc:
        code, msg = EXIT_INPUT, str(exc)
    except (OSError, ValueError, ImportError) as exc:
        code, msg = EXIT_ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        if bar is not None:
            bar.close()
        warnings.showwarning = old_showwarning
        log.removeHandler(handler)
    print(f"error: {msg}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
