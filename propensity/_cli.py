"""What the command-line front ends share: argparse value types, their logging set-up,
the exit-code epilog of --help, and signals turned into exceptions so that an
interrupted run cleans up."""
import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import warnings


def bounded_int(minimum, hint=""):
    """An argparse type: an integer >= ``minimum`` (``hint`` explains the bound)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be at least {minimum}{hint}, got {value}")
        return value
    return parse


def positive_number(text):
    """An argparse type: a finite number > 0 (money amounts, counts of contacts)."""
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def segment_edges(text):
    """An argparse type: 'LOW,HIGH' edges of the segment column, 0 <= LOW <= HIGH <= 1."""
    from .scoring.predictor import segment_spec
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers LOW,HIGH, got {text!r}")
    try:
        return segment_spec(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def percent(text):
    """An argparse type: a percentage in (0, 100]."""
    from .training.campaign import check_percent
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    try:
        return check_percent(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--top-percent ", "")) from None


def n_jobs(text):
    """An argparse type for thread counts: a non-zero integer, -1 meaning all cores."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0 (use -1 for all cores)")
    return value


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT, so every
    clean-up on the way out runs (temporary files and folders are removed)."""

    exit_code = 143


# the conventional exit codes of a run stopped by a signal (128 + its number)
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


@contextlib.contextmanager
def signals_as_exceptions():
    """While the block runs: SIGINT raises KeyboardInterrupt and SIGTERM raises
    :class:`Terminated` in the main thread; a further signal during the clean-up that
    follows is ignored. The previous handlers are restored at the end. Outside the main
    thread (signals cannot be caught there) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interrupted(exc):
    """``(exit code, signal name)`` of a KeyboardInterrupt or :class:`Terminated`."""
    return (EXIT_SIGTERM, "SIGTERM") if isinstance(exc, Terminated) else (EXIT_SIGINT, "SIGINT")


class _Formatter(logging.Formatter):
    """``LEVEL: message`` on one line; a warning captured from the warnings module
    (logger ``py.warnings``) without the file, line and source that
    ``warnings.formatwarning`` puts around it (the category kept unless UserWarning)."""

    _CAPTURED = re.compile(r"(?s)^.*?:\d+: (\w+): (.*?)\n(?:  .*\n)?$")

    def format(self, record):
        text = record.getMessage()
        if record.name == "py.warnings":
            m = self._CAPTURED.match(text)
            if m:
                text = m.group(2) if m.group(1) == "UserWarning" else f"{m.group(1)}: {m.group(2)}"
        out = f"{record.levelname}: {text}"
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


@contextlib.contextmanager
def cli_logging(quiet, progress=False):
    """The logging of a command-line run (the library itself never configures any):
    the ``propensity`` logger at INFO (what the training run's log file records), a
    handler on standard error showing INFO and up (WARNING and up with ``quiet``),
    warnings of the warnings module routed to it (``logging.captureWarnings``, each
    distinct warning once) and, while a progress bar is shown, written through tqdm so
    that a log line never lands on the bar's line. Everything is restored at the end."""
    pkg, captured = logging.getLogger("propensity"), logging.getLogger("py.warnings")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    old_level = pkg.level
    pkg.setLevel(logging.INFO)
    for log in (pkg, captured):
        log.addHandler(handler)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:  # -W / PYTHONWARNINGS given: the user's choice stands
                warnings.simplefilter("default")  # each distinct warning once per run
            if progress:
                from tqdm.contrib.logging import logging_redirect_tqdm
                with logging_redirect_tqdm(loggers=[pkg, captured]):
                    yield
            else:
                yield
    finally:
        logging.captureWarnings(False)
        for log in (pkg, captured):
            log.removeHandler(handler)
        pkg.setLevel(old_level)


def exit_codes_epilog(codes, width=79):
    """The ``--help`` epilog listing a command's exit codes, one per paragraph."""
    import textwrap
    w = max(len(str(c)) for c, _ in codes)
    indent = " " * (w + 4)
    return "exit codes:\n" + "\n".join(
        textwrap.fill(text, width, initial_indent=f"  {c:>{w}}  ", subsequent_indent=indent)
        for c, text in codes)


def separator(text):
    """An argparse type: the input's one-character delimiter ('\\t' or 'tab': a tab)."""
    from .io.blocks import check_sep
    try:
        return check_sep(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def encoding(text):
    """An argparse type: a text encoding Python knows (utf-8, latin-1, cp1252, ...)."""
    from .io.blocks import check_encoding
    try:
        check_encoding(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_format_options(parser, files):
    """--sep and --encoding, for the CSV input(s) ``files`` names."""
    parser.add_argument("--sep", type=separator, default=",",
                        help=f"delimiter of {files}: one character, e.g. ';', '|' or '\\t' "
                             f"for a tab (default: ',')")
    parser.add_argument("--encoding", type=encoding, default="utf-8",
                        help=f"text encoding of {files}, converted to UTF-8 as it is read, "
                             f"e.g. latin-1 or cp1252; outputs are always UTF-8 "
                             f"(default: utf-8)")
