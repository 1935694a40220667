"""Native categorical features: propensity vs LightGBM, categorical and one-hot (issue 19).

Data (generated here, seeded): n rows of 10 standard-normal numeric columns, a
categorical column of 1,000 values (Zipf-like frequencies, weight of value v ~ 1/(v+10))
and one of 50 values (uniform). The log-odds are 0.6 x0 - 0.4 x1 + 0.3 x2 x3 plus a
random effect per category of each column (normal, sd 1.0 and 0.7), minus 1; the label is
a Bernoulli draw. 80/20 split (first 80% of rows train). Each model is fitted `--repeat`
times (best fit time kept) with 2 threads; AUC on the 20%.

- gradient boosting, 100 rounds, depth 6, learning rate 0.1: ours with the two columns
  categorical, LightGBM with them as categorical_feature (num_leaves 63), and both on the
  one-hot columns instead (ours: a uint8 0/1 matrix; LightGBM: the same matrix);
- random forest, 100 trees: ours categorical (max_depth 12, sqrt features) beside LightGBM
  boosting_type="rf" with the same columns categorical (bagging 0.632, feature fraction
  sqrt(p)/p, num_leaves 4095, max_depth 12).

Our categorical codes are uint8: a column keeps its 223 most frequent values, and the
rarer ones share 31 codes, grouped by their smoothed positive rate in training
(BinMapper); LightGBM keeps every value.

    python benchmarks/bench_categorical.py [--rows 500000] [--repeat 1] [--no-onehot]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import best_of, print_table, save_results, versions  # noqa: E402

from sklearn.metrics import roc_auc_score  # noqa: E402

from propensity.learn.forest import RandomForestClassifier  # noqa: E402
from propensity.learn.gbdt import GradientBoostingClassifier  # noqa: E402

K_BIG, K_SMALL = 1000, 50


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    w = 1.0 / (np.arange(K_BIG) + 10.0)
    big = rng.choice(K_BIG, n, p=w / w.sum())
    small = rng.integers(0, K_SMALL, n)
    e_big = rng.normal(0, 1.0, K_BIG)
    e_small = rng.normal(0, 0.7, K_SMALL)
    logit = 0.6 * x[:, 0] - 0.4 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3] + e_big[big] + \
        e_small[small] - 1.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.uint8)
    X = np.column_stack([x, big, small]).astype(np.float64)
    return X, y


def one_hot(X):
    """The 10 numeric columns (float) and 0/1 columns of both categoricals (float32)."""
    big = X[:, 10].astype(np.int64)
    small = X[:, 11].astype(np.int64)
    n = X.shape[0]
    out = np.zeros((n, 10 + K_BIG + K_SMALL), dtype=np.float32)
    out[:, :10] = X[:, :10]
    out[np.arange(n), 10 + big] = 1.0
    out[np.arange(n), 10 + K_BIG + small] = 1.0
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-onehot", action="store_true", help="skip the one-hot models")
    args = ap.parse_args(argv)
    try:
        import lightgbm as lgb
    except ImportError:
        lgb = None
        print("lightgbm is not installed (pip install '.[bench]'): its rows are left out")

    X, y = make_data(args.rows, args.seed)
    cut = int(0.8 * args.rows)
    Xtr, Xte, ytr, yte = X[:cut], X[cut:], y[:cut], y[cut:]
    cats = [10, 11]
    rows = []

    def record(name, fit, proba):
        secs, model = best_of(fit, args.repeat)
        auc = roc_auc_score(yte, proba(model))
        rows.append({"model": name, "fit_s": secs, "auc": auc})
        print(f"{name}: fit {secs:.2f} s, AUC {auc:.4f}", flush=True)

    gb = dict(n_estimators=100, max_depth=6, learning_rate=0.1, random_state=0, n_jobs=2)
    record("ours gbdt categorical",
           lambda: GradientBoostingClassifier(categorical_features=cats, **gb).fit(Xtr, ytr),
           lambda m: m.predict_proba(Xte)[:, 1])
    lgb_gb = dict(n_estimators=100, max_depth=6, num_leaves=63, learning_rate=0.1,
                  n_jobs=2, verbose=-1, random_state=0)
    if lgb is not None:
        record("lightgbm gbdt categorical",
               lambda: lgb.LGBMClassifier(**lgb_gb).fit(Xtr, ytr, categorical_feature=cats),
               lambda m: m.predict_proba(Xte)[:, 1])
    if not args.no_onehot:
        Otr, Ote = one_hot(Xtr), one_hot(Xte)
        record("ours gbdt one-hot", lambda: GradientBoostingClassifier(**gb).fit(Otr, ytr),
               lambda m: m.predict_proba(Ote)[:, 1])
        if lgb is not None:
            record("lightgbm gbdt one-hot", lambda: lgb.LGBMClassifier(**lgb_gb).fit(Otr, ytr),
                   lambda m: m.predict_proba(Ote)[:, 1])
        del Otr, Ote
    rf = dict(n_estimators=100, max_depth=12, max_features="sqrt", random_state=0, n_jobs=2)
    record("ours forest categorical",
           lambda: RandomForestClassifier(categorical_features=cats, **rf).fit(Xtr, ytr),
           lambda m: m.predict_proba(Xte)[:, 1])
    if lgb is not None:
        p = X.shape[1]
        lgb_rf = dict(boosting_type="rf", n_estimators=100, max_depth=12, num_leaves=4095,
                      bagging_fraction=0.632, bagging_freq=1,
                      feature_fraction=max(1, int(np.sqrt(p))) / p, n_jobs=2, verbose=-1,
                      random_state=0)
        record("lightgbm rf categorical",
               lambda: lgb.LGBMClassifier(**lgb_rf).fit(Xtr, ytr, categorical_feature=cats),
               lambda m: m.predict_proba(Xte)[:, 1])

    print()
    print_table(rows, ["model", "fit_s", "auc"])
    path = save_results("categorical", {
        "rows": args.rows, "repeat": args.repeat, "seed": args.seed, "results": rows,
        "versions": versions("numpy", "lightgbm", "sklearn")})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
