"""Atheris harness of the model-document loader (propensity.io.modelio.loads +
BaseEstimator.from_bytes, then predict_proba) on mutated real model documents.

    python fuzz/fuzz_modelio.py -runs=100000          # a fixed number of inputs
    python fuzz/fuzz_modelio.py -max_total_time=20    # a short run (CI)

Each input selects a seed document and drives fuzz/modelio_mutator.mutate, which
rebuilds the document and recomputes its sha256 so the mutation reaches the
validators. Any exception other than ValueError is a finding (atheris prints it and
saves the input); so is a crash of the C core.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:  # the installed package, else the in-place build of this checkout
    import importlib.util
    if importlib.util.find_spec("propensity") is None:
        sys.path.insert(1, os.path.dirname(HERE))
except ImportError:
    sys.path.insert(1, os.path.dirname(HERE))
import atheris  # noqa: E402

with atheris.instrument_imports(include=["propensity"]):
    import propensity  # noqa: F401,E402
    import propensity.learn.base  # noqa: F401,E402
    import propensity.io.modelio  # noqa: F401,E402

import modelio_mutator as mm  # noqa: E402

DOCS, X = mm.seed_documents()
NAMES = sorted(DOCS)
COUNTS = {}
START = time.time()


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    doc = DOCS[NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]]
    mutated = mm.mutate(doc, fdp)
    outcome = mm.check_one(mutated, X)
    COUNTS[outcome] = COUNTS.get(outcome, 0) + 1
    if sum(COUNTS.values()) % 50000 == 0:
        report()


def report():
    total = sum(COUNTS.values())
    print(f"fuzz_modelio: {total} mutated documents of {NAMES} in {time.time() - START:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())), flush=True)


if __name__ == "__main__":
    import atexit

    atexit.register(report)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
