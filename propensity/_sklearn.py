"""Whether this process builds propensity's classes on scikit-learn's.

A library user with scikit-learn installed gets its BaseEstimator, mixins and
NotFittedError (see :mod:`propensity.learn.base`). The package's own commands
(``python -m propensity.train`` / ``.predict`` / ``.datasets`` and their console scripts)
never hand an estimator to Python code, and importing scikit-learn costs them about
0.65 s of CPU at every start (scipy.stats comes with it; ``propensity.predict`` scores
10M rows in 1.3 s), so they use the small fallback. A model a command saves loads into
whichever classes the loading process has: the document names the class, not its bases.
"""
import os
import sys

COMMANDS = ("propensity.train", "propensity.predict", "propensity.datasets")
SCRIPTS = ("propensity-train", "propensity-predict")


def _is_command(orig_argv, argv0):
    for i, arg in enumerate(orig_argv):
        module = orig_argv[i + 1] if arg == "-m" and i + 1 < len(orig_argv) else \
            arg[2:] if arg.startswith("-m") else None
        if module is not None:
            return module in COMMANDS
    return os.path.basename(argv0) in SCRIPTS


def wanted():
    """False in the package's commands, True elsewhere (whether or not it is installed)."""
    return not _is_command(list(getattr(sys, "orig_argv", ())),
                           sys.argv[0] if sys.argv else "")
