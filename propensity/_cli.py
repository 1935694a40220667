"""What the command-line front ends share: argparse value types, signals turned into
exceptions so that an interrupted run cleans up."""
import argparse
import contextlib
import signal
import threading


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
