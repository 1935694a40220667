"""Logistic regression: propensity vs scikit-learn on 455,401 stand-in sessions x 33 columns.

Data: propensity.datasets.make_sessions (the calibrated stand-in of the real file) plus
the 10 interaction features of SPEC.md, all uint8. class_weight='balanced' everywhere.

- L2 (C=1): propensity (Newton, compressed unique rows) vs sklearn lbfgs.
- Elastic net (C=1, l1_ratio=0.5): propensity (proximal Newton + CD) vs sklearn saga.

scikit-learn is fitted on the standardised float64 matrix (standardisation not timed), so
both minimise the same objective; the penalised objective of each solution is reported
beside the time. Run: python benchmarks/bench_logreg.py [--rows N]
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))  # the in-place build when not installed
from _common import best_of, print_table, save_results, session_matrix, versions  # noqa: E402

def objective(Xs, y, s, coef, intercept, C, l1_ratio):
    z = Xs @ coef + intercept
    loss = np.sum(s * np.logaddexp(0.0, np.where(y == 1, -z, z)))
    return float(loss + (1 / C) * ((1 - l1_ratio) / 2 * coef @ coef + l1_ratio * np.abs(coef).sum()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=455_401)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from threadpoolctl import threadpool_limits
    import sklearn
    from sklearn.linear_model import LogisticRegression as SkLR

    import propensity
    from propensity import LogisticRegression

    X, y, _ = session_matrix(args.rows, seed=0)
    n, p = X.shape
    Xf = X.astype(np.float64)
    mu, sd = Xf.mean(axis=0), Xf.std(axis=0)
    Xs = (Xf - mu) / sd
    counts = np.bincount(y, minlength=2).astype(float)
    s = (counts.sum() / (2 * counts))[y]
    n_unique = np.unique(X, axis=0).shape[0]
    print(f"data: {n} rows x {p} columns (uint8), {y.mean():.4f} positive, {n_unique} unique rows")

    rows, results = [], {}
    configs = [("l2", None, "lbfgs"), ("elasticnet_0.5", 0.5, "saga")]
    C = 1.0
    with threadpool_limits(args.threads):
        for name, l1, sk_solver in configs:
            l1v = 0.0 if l1 is None else l1
            ours = LogisticRegression(C=C, l1_ratio=l1, class_weight="balanced", n_jobs=args.threads)
            t_ours, m = best_of(lambda: ours.fit(X, y), repeat=3)
            obj_ours = objective(Xs, y, s, m.coef_standardized_[0], m.intercept_standardized_[0], C, l1v)
            oursf = LogisticRegression(C=C, l1_ratio=l1, class_weight="balanced", n_jobs=args.threads)
            t_ours_f, mf = best_of(lambda: oursf.fit(Xf, y), repeat=1)
            obj_ours_f = objective(Xs, y, s, mf.coef_standardized_[0], mf.intercept_standardized_[0], C, l1v)
            kw = dict(C=C, class_weight="balanced", solver=sk_solver)
            if l1 is not None:
                kw["l1_ratio"] = l1
            sk = SkLR(**kw)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                sk.fit(Xs, y)
                t_sk = time.perf_counter() - t0
            sk_conv = not any("converge" in str(w.message).lower() for w in caught)
            obj_sk = objective(Xs, y, s, sk.coef_[0], sk.intercept_[0], C, l1v)
            entry = {
                "propensity_seconds": t_ours, "propensity_objective": obj_ours,
                "propensity_n_iter": int(m.n_iter_[0]),
                "propensity_float64_uncompressed_seconds": t_ours_f,
                "propensity_float64_uncompressed_objective": obj_ours_f,
                "sklearn_solver": sk_solver, "sklearn_seconds": t_sk, "sklearn_objective": obj_sk,
                "sklearn_n_iter": int(sk.n_iter_[0]), "sklearn_converged": sk_conv,
                "speedup": t_sk / t_ours, "speedup_uncompressed": t_sk / t_ours_f,
                "objective_rel_diff": (obj_ours - obj_sk) / abs(obj_sk),
                "max_abs_coef_diff": float(np.abs(m.coef_standardized_[0] - sk.coef_[0]).max()),
            }
            results[name] = entry
            rows.append({"model": name, "ours_s": t_ours, "ours_f64_s": t_ours_f,
                         "sklearn_s": t_sk, "speedup": t_sk / t_ours, "ours_obj": obj_ours,
                         "sklearn_obj": obj_sk, "sk_conv": sk_conv})
    print_table(rows, ["model", "ours_s", "ours_f64_s", "sklearn_s", "speedup", "ours_obj",
                       "sklearn_obj", "sk_conv"])
    path = save_results("logreg", {
        "data": {"rows": n, "columns": p, "unique_rows": int(n_unique), "positive_rate": float(y.mean()),
                 "generator": "propensity.datasets.make_sessions(seed=0) + the 10 SPEC "
                              "interaction features"},
        "config": {"C": C, "class_weight": "balanced", "threads": args.threads,
                   "propensity_tol": 1e-6, "sklearn": "default tol/max_iter, fitted on the "
                   "standardised float64 matrix (standardisation not timed)",
                   "timing": "propensity best of 3 (compressed uint8 input, compression included); "
                             "float64 run and sklearn once"},
        "results": results,
        "versions": versions("numpy", "sklearn", "propensity"),
    })
    print(f"saved {path}")
    _ = (propensity, sklearn)


if __name__ == "__main__":
    main()
