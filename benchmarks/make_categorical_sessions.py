"""Write the training file of the categorical pipeline benchmark (issue 19).

The 23 session columns of ``propensity.datasets.make_sessions`` (their ``ordered``
target drawn from the session behaviour), plus one text column ``campaign`` of
``--values`` distinct values ("c0000", "c0001", ...), drawn with Zipf-like frequencies
(value i has weight 1 / (i + 10)) so that a few campaigns are common and most are rare;
each campaign has its own effect on the log-odds of ordering (normal, sd 1), added to
the sessions' own before the target is drawn again. Deterministic in ``--seed``.

    python benchmarks/make_categorical_sessions.py out.csv --rows 30000 --values 1000
"""
import argparse

import numpy as np


def make(rows, values, seed=0):
    from propensity.datasets import make_sessions
    rng = np.random.default_rng(seed)
    df = make_sessions(rows, seed=seed)
    weight = 1.0 / (np.arange(values) + 10.0)
    camp = rng.choice(values, size=rows, p=weight / weight.sum())
    effect = rng.normal(0.0, 1.0, values)
    base = df["ordered"].to_numpy().astype(np.float64)
    # the sessions' own signal (their target) plus the campaign's effect on the log-odds
    logit = -3.0 + 4.0 * base + effect[camp]
    df["ordered"] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    df.insert(len(df.columns) - 1, "campaign", np.char.add("c", np.char.zfill(
        camp.astype(str), 4)))
    return df


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=30_000)
    ap.add_argument("--values", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    make(a.rows, a.values, a.seed).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
