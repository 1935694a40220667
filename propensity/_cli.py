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
