"""Fit the session model of propensity.datasets to the published statistics.

Two steps, both offline (the package only reads their JSON output):

1. ``--reference DIR`` turns the published statistics of the real data set
   (binary_summary.csv, bivariate_binary_vs_target.csv, binary_correlation_matrix.csv,
   target_distribution.csv, model_evaluation_results.json) into the package data file
   ``propensity/data/calibration.json``: the calibration targets, also read by the tests.
2. The funnel model is fitted to those targets and written to
   ``propensity/data/session_model.json``.

The model (see propensity/datasets.py) is a chain along the shopping funnel: the device
(a categorical draw: one device, or rarely two), then every other column in funnel order,
each a logistic function of the columns before it, with `ordered` only possible after
`saw_checkout`. Each conditional is the maximum-entropy one that reproduces the target
rate of the column and its joint rate with every earlier column: a convex moment-matching
problem, solved by Newton's method on the EXACT distribution of the earlier columns
(enumerated pattern by pattern, patterns below 1e-13 probability pruned), so the fitted
model's expected rates and correlations equal the targets, not a sample's.

    python scripts/calibrate_datasets.py --reference /work/shared/reference
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(HERE, os.pardir, "propensity", "data")


def _load_schema():
    """propensity/_layout.py (the column layout), read without importing the package,
    which needs its compiled core."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "_propensity_schema", os.path.join(HERE, os.pardir, "propensity", "_layout.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SCHEMA = _load_schema()
FEATURES, TARGET = _SCHEMA.FEATURES, _SCHEMA.TARGET
DEVICES = ["device_mobile", "device_computer", "device_tablet"]
# Funnel order after the device: who the visitor is, how they land and browse, what goes
# into the basket, signing in, checkout, the delivery / returns checks, and the order.
FUNNEL = [
    "loc_uk", "returning_user", "saw_homepage", "list_size_dropdown", "sort_by",
    "image_picker", "promo_banner_click", "saw_sizecharts", "detail_wishlist_add",
    "basket_add_list", "basket_add_detail", "basket_icon_click", "closed_minibasket_click",
    "account_page_click", "saw_account_upgrade", "sign_in", "saw_checkout",
    "checked_delivery_detail", "checked_returns_detail", "saw_delivery", "ordered",
]
GATES = {"ordered": "saw_checkout"}   # structural zeros: no order without checkout
PRUNE = 1e-13
RIDGE = 1e-9


# ----------------------------------------------------------------------------- targets
def build_calibration(ref):
    import pandas as pd
    summary = pd.read_csv(os.path.join(ref, "binary_summary.csv"), index_col="column")
    biv = pd.read_csv(os.path.join(ref, "bivariate_binary_vs_target.csv"), index_col="feature")
    corr = pd.read_csv(os.path.join(ref, "binary_correlation_matrix.csv"), index_col=0)
    tdist = pd.read_csv(os.path.join(ref, "target_distribution.csv"), index_col="ordered")
    with open(os.path.join(ref, "model_evaluation_results.json")) as f:
        evaluation = json.load(f)
    columns = FEATURES + [TARGET]
    n = int(summary["total"].iloc[0])
    assert (summary["total"] == n).all()
    corr = corr.loc[columns, columns]
    return {
        "description": "Published statistics of the real training_sample.csv (455,401 "
                       "sessions), the calibration targets of propensity.datasets.",
        "n_rows": n,
        "n_rows_testing": 151655,
        "columns": columns,
        "ones": {c: int(summary.loc[c, "one"]) for c in columns},
        "target_counts": {"0": int(tdist.loc[0, "count"]), "1": int(tdist.loc[1, "count"])},
        "bivariate": {f: {"support_1": int(biv.loc[f, "support_1"]),
                          "support_0": int(biv.loc[f, "support_0"]),
                          "rate_when_1": float(biv.loc[f, "rate_when_1"]),
                          "rate_when_0": float(biv.loc[f, "rate_when_0"])} for f in FEATURES},
        "correlation": [[float(v) for v in row] for row in corr.to_numpy()],
        "model_evaluation": evaluation,
    }


def pair_targets(cal):
    """Joint rate P(a=1, b=1) for every pair, from the bivariate file where `ordered` is
    involved (exact counts), else from the correlation (3 decimals); clipped strictly
    inside the Frechet bounds."""
    cols = cal["columns"]
    n = cal["n_rows"]
    p = {c: cal["ones"][c] / n for c in cols}
    corr = np.array(cal["correlation"])
    q = {}
    eps = 0.5 / n
    for i, a in enumerate(cols):
        for j, b in enumerate(cols):
            if i == j:
                continue
            if b == TARGET:
                v = cal["bivariate"][a]["rate_when_1"] * cal["bivariate"][a]["support_1"] / n
            elif a == TARGET:
                v = cal["bivariate"][b]["rate_when_1"] * cal["bivariate"][b]["support_1"] / n
            else:
                sd = math.sqrt(p[a] * (1 - p[a]) * p[b] * (1 - p[b]))
                v = corr[i, j] * sd + p[a] * p[b]
            lo = max(0.0, p[a] + p[b] - 1) + eps
            hi = min(p[a], p[b]) - eps
            if {a, b} == {TARGET, GATES[TARGET]}:
                lo = hi = p[TARGET]          # every order saw the checkout
            q[a, b] = min(max(v, lo), hi)
    return p, q


# ------------------------------------------------------------------------------- fit
def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_conditional(Z, w, t):
    """Newton's method for  min_theta  sum_r w_r softplus(Z_r theta) - theta.t  (+ ridge):
    at the optimum, sum_r w_r sigmoid(Z_r theta) Z_r = t, i.e. the expected rate and the
    expected joint rates equal the targets."""
    k = Z.shape[1]
    theta = np.zeros(k)
    p0 = t[0] / w.sum()
    theta[0] = math.log(p0 / (1 - p0))
    reg = np.full(k, RIDGE)
    reg[0] = 0.0

    def loss(th):
        z = Z @ th
        return float(w @ np.logaddexp(0.0, z) - th @ t + 0.5 * reg @ th ** 2)

    cur = loss(theta)
    for _ in range(200):
        s = sigmoid(Z @ theta)
        g = Z.T @ (w * s) - t + reg * theta
        if np.max(np.abs(g)) < 1e-15:
            break
        H = (Z * (w * s * (1 - s))[:, None]).T @ Z + np.diag(reg + 1e-300)
        step = np.linalg.solve(H + 1e-14 * np.eye(k), g)
        a = 1.0
        while a > 1e-10:
            new = theta - a * step
            nl = loss(new)
            if nl <= cur + 1e-18:
                break
            a *= 0.5
        if a <= 1e-10:
            break
        theta, cur = new, nl
    s = sigmoid(Z @ theta)
    return theta, Z.T @ (w * s) - t


def fit(cal):
    p, q = pair_targets(cal)
    # Device: categorical over one-hot plus the three two-device combinations.
    mc, mt, ct = (q["device_mobile", "device_computer"], q["device_mobile", "device_tablet"],
                  q["device_computer", "device_tablet"])
    cats = {"device_mobile": p["device_mobile"] - mc - mt,
            "device_computer": p["device_computer"] - mc - ct,
            "device_tablet": p["device_tablet"] - mt - ct,
            "device_mobile+device_computer": mc, "device_mobile+device_tablet": mt,
            "device_computer+device_tablet": ct}
    tot = sum(cats.values())
    cats = {k: v / tot for k, v in cats.items()}
    order = DEVICES + FUNNEL
    pos = {c: i for i, c in enumerate(order)}
    bits = np.array([sum(1 << pos[d] for d in k.split("+")) for k in cats], dtype=np.uint32)
    prob = np.array(list(cats.values()))

    steps, worst = [], 0.0
    for j in range(len(DEVICES), len(order)):
        col = order[j]
        prev = order[:j]
        gate = GATES.get(col)
        X = ((bits[:, None] >> np.arange(j, dtype=np.uint32)) & 1).astype(np.float64)
        active = np.ones(len(bits), bool) if gate is None else X[:, pos[gate]] == 1
        use = [c for c in prev if c != gate]
        Z = np.column_stack([np.ones(active.sum())] + [X[active, pos[c]] for c in use])
        t = np.array([p[col]] + [q[col, c] for c in use])
        theta, resid = fit_conditional(Z, prob[active], t)
        worst = max(worst, float(np.max(np.abs(resid))))
        weights = {c: float(v) for c, v in zip(use, theta[1:])}
        steps.append({"column": col, "bias": float(theta[0]), "gate": gate,
                      "weights": [weights.get(c, 0.0) for c in prev]})
        print(f"{col:26s} states {len(bits):8d}  |moment error| {np.max(np.abs(resid)):.2e}",
              file=sys.stderr)
        # Children of every state: column = 1 with sigmoid(eta), else 0.
        s = np.zeros(len(bits))
        s[active] = sigmoid(Z @ theta)
        bits = np.concatenate([bits, bits | np.uint32(1 << j)])
        prob = np.concatenate([prob * (1 - s), prob * s])
        keep = prob > PRUNE
        bits, prob = bits[keep], prob[keep]
    print(f"final states {len(bits)}, pruned mass {1 - prob.sum():.2e}, "
          f"worst moment error {worst:.2e}", file=sys.stderr)
    model = {
        "description": "Funnel chain of propensity.datasets, fitted by "
                       "scripts/calibrate_datasets.py to propensity/data/calibration.json.",
        "devices": {"categories": [k.split("+") for k in cats],
                    "probabilities": [float(v) for v in cats.values()]},
        "chain": steps,
    }
    return model, (bits, prob, order)


def expected_stats(bits, prob, order, cal):
    """Expected rates / correlations of the fitted model against the targets."""
    cols = cal["columns"]
    X = ((bits[:, None] >> np.arange(len(order), dtype=np.uint32)) & 1).astype(np.float64)
    X = X[:, [order.index(c) for c in cols]]
    prob = prob / prob.sum()
    m = prob @ X
    C = (X * prob[:, None]).T @ X - np.outer(m, m)
    sd = np.sqrt(np.diag(C))
    R = C / np.outer(sd, sd)
    n = cal["n_rows"]
    target = np.array([cal["ones"][c] / n for c in cols])
    print("max |rate - target| (pp):", 100 * np.max(np.abs(m - target)), file=sys.stderr)
    print("max |corr - target|:", np.max(np.abs(R - np.array(cal["correlation"]))),
          file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", help="folder of the published statistics; "
                    "rewrites propensity/data/calibration.json from it")
    ap.add_argument("--data-dir", default=DATA_DIR)
    args = ap.parse_args(argv)
    cal_path = os.path.join(args.data_dir, "calibration.json")
    if args.reference:
        cal = build_calibration(args.reference)
        os.makedirs(args.data_dir, exist_ok=True)
        with open(cal_path, "w") as f:
            json.dump(cal, f, indent=1)
            f.write("\n")
    with open(cal_path) as f:
        cal = json.load(f)
    model, (bits, prob, order) = fit(cal)
    expected_stats(bits, prob, order, cal)
    with open(os.path.join(args.data_dir, "session_model.json"), "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
