"""argparse value types shared by the command-line front ends."""
import argparse


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
