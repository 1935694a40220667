"""The pipeline's PNG figures (matplotlib, headless: Figure + Agg canvas, no pyplot
state, so it works without a display and never changes the user's backend)."""
import os

import numpy as np

from ..learn import metrics as M

LABELS = {"logistic_regression": "Logistic regression", "random_forest": "Random forest",
          "gradient_boosting": "Gradient boosting"}
COLORS = {"logistic_regression": "#1f77b4", "random_forest": "#2ca02c",
          "gradient_boosting": "#d62728"}


def preload():
    """Import matplotlib's figure and Agg canvas and find the default font (about 0.3 s of
    CPU): a training run does it in a thread while its file is read, not before its plots."""
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    font_manager.findfont(font_manager.FontProperties())


def _figure(width=7.0, height=5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, folder, name):
    from ..io.fileio import output_error

    fig.tight_layout()
    path = os.path.join(folder, name)
    try:
        fig.savefig(path)
    except OSError as exc:  # disk full, file-size limit: named like every other output
        raise output_error(path, exc) from None


def model_comparison(folder, evaluation):
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    names = list(evaluation)
    keys = [("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"), ("roc_auc", "ROC-AUC")]
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    for i, fam in enumerate(names):
        vals = [evaluation[fam][k] for k, _ in keys]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width,
                      label=LABELS.get(fam, fam), color=COLORS.get(fam))
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.005, f"{v:.3f}", ha="center",
                    va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, [label for _, label in keys])
    lo = min(evaluation[f][k] for f in names for k, _ in keys)
    ax.set_ylim(max(0.0, lo - 0.1), 1.12)
    ax.set_xlabel("Metric (validation split)")
    ax.set_ylabel("Score")
    ax.set_title("Model comparison at each model's tuned threshold")
    ax.legend(loc="upper center", ncol=len(names), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, folder, "model_comparison.png")


def roc_curves(folder, detailed):
    fig = _figure(6, 6)
    ax = fig.add_subplot()
    for fam, d in detailed.items():
        fpr, tpr, _ = M.roc_curve(d["y_true"], d["probabilities"], d.get("sample_weight"))
        ax.plot(fpr, tpr, color=COLORS.get(fam), lw=1.8,
                label=f"{LABELS.get(fam, fam)} (AUC {d['metrics']['roc_auc']:.4f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="Chance")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate (recall)")
    ax.set_title("ROC curves (validation split)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, folder, "roc_curves.png")


def pr_curves(folder, detailed):
    fig = _figure(6, 6)
    ax = fig.add_subplot()
    for fam, d in detailed.items():
        prec, rec, _ = M.precision_recall_curve(d["y_true"], d["probabilities"],
                                                d.get("sample_weight"))
        ax.step(rec, prec, where="post", color=COLORS.get(fam), lw=1.8,
                label=f"{LABELS.get(fam, fam)} (AP {d['metrics']['avg_precision']:.4f})")
        m = d["metrics"]
        ax.plot([m["recall"]], [m["precision"]], "o", color=COLORS.get(fam), ms=6)
    first = next(iter(detailed.values()))
    base = float(np.average(first["y_true"], weights=first.get("sample_weight")))
    ax.axhline(base, ls="--", color="grey", lw=1, label=f"Positive rate ({base:.3f})")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title("Precision-recall curves (dots: tuned thresholds)")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    _save(fig, folder, "precision_recall_curves.png")


def _reliability(y, p, w=None, n_bins=10):
    w = np.ones(p.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    cnt = np.bincount(idx, weights=w, minlength=n_bins)
    mean_p = np.bincount(idx, weights=p * w, minlength=n_bins)
    frac = np.bincount(idx, weights=y * w, minlength=n_bins)
    keep = cnt > 0
    return mean_p[keep] / cnt[keep], frac[keep] / cnt[keep]


def calibration(folder, detailed):
    fig = _figure(11, 5)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in ((axes[0], "raw_scores", "Before calibration (model score)"),
                           (axes[1], "probabilities", "After calibration")):
        for fam, d in detailed.items():
            w = d.get("sample_weight")
            mp, fp = _reliability(d["y_true"].astype(float), np.asarray(d[key], float), w)
            brier = M.brier_score_loss(d["y_true"], np.clip(d[key], 0, 1), w)
            ax.plot(mp, fp, "o-", color=COLORS.get(fam), lw=1.5, ms=4,
                    label=f"{LABELS.get(fam, fam)} (Brier {brier:.4f})")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="Perfectly calibrated")
        ax.set_xlabel("Mean predicted probability (10 bins)")
        ax.set_title(title)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Observed purchase rate")
    _save(fig, folder, "calibration.png")


SHAP_UNITS = {"random_forest": "probability", "gradient_boosting": "log-odds",
              "logistic_regression": "log-odds"}


def shap_summary(folder, detailed, top=15):
    """Bar plot per model of the mean |SHAP value| of its most important features on the
    validation split (``detailed[fam]['shap_importance']``), the largest on top."""
    fams = [f for f, d in detailed.items() if "shap_importance" in d]
    if not fams:
        return
    longest = max(len(str(n)) for f in fams for n in detailed[f]["shap_importance"]["feature"])
    fig = _figure(min(6.0 + 0.07 * longest, 9.0) * len(fams) * 0.75 + 1.0, 0.32 * top + 1.6)
    axes = fig.subplots(1, len(fams), squeeze=False)[0]
    for ax, fam in zip(axes, fams):
        imp = detailed[fam]["shap_importance"]
        vals = np.asarray(imp["mean_abs_shap"], dtype=np.float64)
        order = np.argsort(-vals, kind="stable")[:top][::-1]
        names = [str(imp["feature"][j]) for j in order]
        ax.barh(np.arange(len(order)), vals[order], color=COLORS.get(fam), height=0.7)
        ax.set_yticks(np.arange(len(order)), names, fontsize=8)
        ax.set_xlabel(f"mean |SHAP value| ({SHAP_UNITS.get(fam, 'raw score')})")
        ax.set_title(LABELS.get(fam, fam))
        ax.grid(axis="x", alpha=0.3)
        ax.margins(y=0.01)
    fig.suptitle(f"What drives each model's score: top {top} features on the validation split",
                 fontsize=11)
    _save(fig, folder, "shap_summary.png")


def cumulative_gains(folder, detailed):
    from .campaign import gains_curve
    fig = _figure(6, 6)
    ax = fig.add_subplot()
    for fam, d in detailed.items():
        x, g = gains_curve(d["y_true"], d["probabilities"], d.get("sample_weight"))
        ax.plot(100 * x, 100 * g, color=COLORS.get(fam), lw=1.8, label=LABELS.get(fam, fam))
    ax.plot([0, 100], [0, 100], ls="--", color="grey", lw=1, label="Random targeting")
    ax.set_xlabel("Sessions contacted, highest scores first (%)")
    ax.set_ylabel("Buyers reached (%)")
    ax.set_title("Cumulative gains (validation split)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 101)
    ax.set_xticks(range(0, 101, 10))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, folder, "cumulative_gains.png")


def lift_curve(folder, evaluation):
    fig = _figure(7, 5)
    ax = fig.add_subplot()
    for fam, rec in evaluation.items():
        table = rec["lift_table"]
        ax.plot([r["decile"] for r in table], [r["cumulative_lift"] for r in table], "o-",
                color=COLORS.get(fam), lw=1.8, ms=4, label=f"{LABELS.get(fam, fam)} cumulative")
        ax.plot([r["decile"] for r in table], [r["lift"] for r in table], ":",
                color=COLORS.get(fam), lw=1.2, label=f"{LABELS.get(fam, fam)} per decile")
    ax.axhline(1.0, ls="--", color="grey", lw=1, label="Random targeting (lift 1)")
    ax.set_xlabel("Decile (1 = highest scores)")
    ax.set_ylabel("Lift (response rate / overall rate)")
    ax.set_title("Lift by decile (validation split)")
    ax.set_xticks(range(1, 11))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, folder, "lift_curve.png")


def profit(folder, detailed, evaluation):
    """Profit by the share of sessions contacted (validation split), expected (calibrated
    probabilities) and realised (the labels), the chosen threshold of each model marked;
    only for a policy with a contact cost and an order value."""
    from .campaign import profit_curve
    fig = _figure(7, 5)
    ax = fig.add_subplot()
    for fam, d in detailed.items():
        pol = evaluation[fam]["policy"]
        c, v = pol["contact_cost"], pol["order_value"]
        x, expected, realised = profit_curve(d["y_true"], d["probabilities"],
                                             d.get("sample_weight"), c, v)
        ax.plot(100 * x, expected, color=COLORS.get(fam), lw=1.8,
                label=f"{LABELS.get(fam, fam)} expected")
        ax.plot(100 * x, realised, ":", color=COLORS.get(fam), lw=1.2,
                label=f"{LABELS.get(fam, fam)} realised")
        at = pol["validation"]
        ax.plot([at["contacts_pct"]], [at["expected_profit"]], "o", color=COLORS.get(fam), ms=7)
    ax.axhline(0.0, color="grey", lw=1)
    first = next(iter(evaluation.values()))["policy"]
    ax.set_xlabel("Sessions contacted, highest scores first (%)")
    ax.set_ylabel("Profit on the validation sessions")
    ax.set_title(f"Profit (contact cost {first['contact_cost']:g}, order value "
                 f"{first['order_value']:g}; dots: chosen policy)")
    ax.set_xlim(0, 100)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, folder, "profit_curve.png")


def write_plots(folder, detailed, evaluation):
    if all("contact_cost" in rec.get("policy", {}) for rec in evaluation.values()):
        profit(folder, detailed, evaluation)
    model_comparison(folder, evaluation)
    cumulative_gains(folder, detailed)
    lift_curve(folder, evaluation)
    roc_curves(folder, detailed)
    pr_curves(folder, detailed)
    calibration(folder, detailed)
    shap_summary(folder, detailed)
