"""``report.html``: the training run for a marketing reader, one self-contained page.

Rendered with Jinja2 from ``templates/report.html.j2`` (package data). Everything on the
page is aggregated (metrics, the decile tables, the top features, the PNG figures the run
wrote, inlined as base64 ``data:`` URLs), so its size does not grow with the data: no
row of the input is embedded, nothing is fetched from the network.
"""
from __future__ import annotations

import base64
import logging
import os

import pandas as pd

from .plots import LABELS

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
MAX_BYTES = 2 * 1024 * 1024     # the page's size limit (the figures are most of it)
TOP_FEATURES = 12

# the figures, in page order, with the section that shows them
FIGURES = ("model_comparison.png", "cumulative_gains.png", "lift_curve.png",
           "profit_curve.png", "calibration.png", "shap_summary.png")

METRICS = (("f1", "F1", 3), ("precision", "Precision", 3), ("recall", "Recall", 3),
           ("roc_auc", "ROC-AUC", 3), ("avg_precision", "Average precision", 3),
           ("brier", "Brier score", 4), ("threshold", "Threshold", 4))


def _image(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _drivers(folder, families):
    """Per model: its top features from the importance (or coefficient) file the run
    wrote and, once the reason-code outputs exist, the SHAP importance file."""
    out = {}
    for fam in families:
        entry = {}
        coef = os.path.join(folder, f"{fam}_feature_importance.csv")
        if fam == "logistic_regression":
            coef = os.path.join(folder, "logistic_regression_coefficients.csv")
        if os.path.exists(coef):
            df = pd.read_csv(coef).head(TOP_FEATURES)
            col = "coefficient" if "coefficient" in df.columns else "importance"
            entry["importance"] = {"kind": col, "file": os.path.basename(coef),
                                   "rows": list(zip(df["feature"].astype(str),
                                                    df[col].astype(float)))}
        shap = os.path.join(folder, f"{fam}_shap_importance.csv")
        if os.path.exists(shap):
            df = pd.read_csv(shap)
            value = next((c for c in df.columns if c != "feature"
                          and pd.api.types.is_numeric_dtype(df[c])), None)
            if "feature" in df.columns and value is not None:
                df = df.sort_values(value, ascending=False, kind="mergesort").head(TOP_FEATURES)
                entry["shap"] = {"kind": value, "file": os.path.basename(shap),
                                 "rows": list(zip(df["feature"].astype(str),
                                                  df[value].astype(float)))}
        out[fam] = entry
    return out


def render(context):
    """The page's HTML from the template (autoescaped)."""
    import jinja2
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("propensity.training", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


def write_report(folder, *, evaluation, best_model, data, created, model_dir):
    """Write ``report.html`` into ``folder`` (the run's outputs already there): returns
    its size in bytes. ``evaluation``: the records of model_evaluation_results.json;
    ``data``: the data summary (source, rows, split, buyers, features); ``model_dir``:
    the output folder the commands on the page name."""
    from ..io.fileio import output_error

    families = list(evaluation)
    best = evaluation[best_model]
    context = {
        "created": created.strftime("%Y-%m-%d %H:%M UTC"),
        "data": data, "best": best_model, "families": families, "labels": LABELS,
        "ev": evaluation, "metrics": METRICS, "policy": best["policy"],
        "images": {name: _image(folder, name) for name in FIGURES},
        "drivers": _drivers(folder, families), "model_dir": model_dir,
        "top10": best["lift_table"][0],
    }
    html = render(context)
    size = len(html.encode("utf-8"))
    if size > MAX_BYTES:   # only the figures can be large; they come from plots.py
        raise ValueError(f"report.html would be {size} bytes, over its {MAX_BYTES}-byte limit")
    path = os.path.join(folder, REPORT_NAME)
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(html)
    except OSError as exc:
        raise output_error(path, exc) from None
    logger.info("report written: %s (%d KB)", REPORT_NAME, size // 1024)
    return size
