"""report.html (propensity.training.report): self-contained, aggregated, its numbers those
of model_evaluation_results.json, the SHAP section shown once the SHAP files exist."""
import base64
import json
import re
import shutil
from html.parser import HTMLParser

import pytest

GRID = {"logistic_regression": {"C": [1.0], "l1_ratio": [0.5]},
        "random_forest": {"n_estimators": [10], "max_depth": [6]}}


def train_small(out, rows=3000, **policy):
    from propensity.training.pipeline import run_training
    return run_training(None, None, out, embedded_rows=rows, embedded_test_rows=50,
                        models=tuple(GRID), grid=GRID, policy=policy or None)


@pytest.fixture(scope="module")
def profit_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    train_small(out, kind="profit", contact_cost=1.0, order_value=40.0)
    return out


class _Page(HTMLParser):
    """The numbers tagged with data-json, the img sources, every URL-bearing attribute."""

    def __init__(self):
        super().__init__()
        self.numbers, self.images, self.urls, self.ids = [], [], [], []
        self._path = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-json" in a:
            self._path = a["data-json"]
        if tag == "img":
            self.images.append(a.get("src", ""))
        for k in ("src", "href", "srcset", "action", "poster"):
            if k in a:
                self.urls.append(a[k])
        if "id" in a:
            self.ids.append(a["id"])

    def handle_data(self, data):
        if self._path is not None:
            self.numbers.append((self._path, data))
            self._path = None


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _lookup(doc, path):
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def test_report_numbers_equal_the_json(profit_run):
    ev = json.loads((profit_run / "model_evaluation_results.json").read_text())
    page = _parse(profit_run / "report.html")
    assert len(page.numbers) > 100
    seen = set()
    for path, text in page.numbers:
        value = _lookup(ev, path)
        digits = len(text.split(".")[1]) if "." in text else 0
        assert float(text.replace(",", "")) == pytest.approx(value, abs=0.51 * 10 ** -digits), \
            (path, text, value)
        seen.add(path.split(".", 1)[1])
    # every metric, the whole decile table of the best model and the policy figures
    for key in ("f1", "precision", "recall", "roc_auc", "brier", "threshold",
                "lift_table.9.cumulative_lift", "policy.validation.expected_profit",
                "policy.validation.profit", "policy.validation.buyers_pct"):
        assert key in seen, key


def test_report_is_self_contained_and_small(profit_run):
    html = (profit_run / "report.html").read_text(encoding="utf-8")
    page = _parse(profit_run / "report.html")
    assert not re.search(r"https?://", html), "a URL on the page"
    assert all(u.startswith("data:image/png;base64,") for u in page.urls)
    # the figures of the run, each the PNG file written beside it
    names = ["model_comparison.png", "cumulative_gains.png", "lift_curve.png",
             "profit_curve.png", "calibration.png", "shap_summary.png"]
    assert len(page.images) == len(names)
    for src, name in zip(page.images, names):
        assert base64.b64decode(src.split(",", 1)[1]) == (profit_run / name).read_bytes()
    assert len(html.encode()) <= 2 * 1024 * 1024
    assert {"data", "models", "lift", "policy", "calibration", "drivers", "scoring"} <= \
        set(page.ids)
    man = json.loads((profit_run / "manifest.json").read_text())
    assert "report.html" in man["files"]


def test_report_size_does_not_grow_with_the_rows(profit_run, tmp_path):
    from pathlib import Path
    big = Path(train_small(tmp_path / "big", rows=40000, kind="profit", contact_cost=1.0,
                           order_value=40.0).output_dir)

    def text_only(p):   # the page without its figures (whose size depends on the curves)
        return len(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "",
                          p.read_text(encoding="utf-8")))
    # 13x the rows: the same page but for the digits of a few counts
    assert abs(text_only(big / "report.html") - text_only(profit_run / "report.html")) < 300


def test_report_explanations_appear_with_the_shap_files(profit_run, tmp_path):
    from propensity.training import report
    folder = tmp_path / "run"
    shutil.copytree(profit_run, folder)
    for f in [*folder.glob("*_shap_importance.csv"), folder / "shap_summary.png"]:
        f.unlink(missing_ok=True)   # a run without explanations
    ev = json.loads((folder / "model_evaluation_results.json").read_text())
    import datetime
    kw = dict(evaluation=ev, best_model="random_forest",
              data={"source": "s", "target": "ordered", "n_rows": 10, "n_training": 8,
                    "n_validation": 2, "n_buyers": 1, "buyer_rate": 0.1, "n_inputs": 23,
                    "n_features": 33},
              created=datetime.datetime(2026, 1, 1), model_dir="ml_outputs")
    report.write_report(folder, **kw)
    assert "Reason codes (SHAP)" not in (folder / "report.html").read_text()
    (folder / "random_forest_shap_importance.csv").write_text(
        "feature,mean_abs_shap\nsaw_checkout,0.25\nsign_in,0.5\n")
    report.write_report(folder, **kw)
    html = (folder / "report.html").read_text()
    assert "Reason codes (SHAP)" in html
    shap = html[html.index("Reason codes"):]
    assert shap.index("<code>sign_in</code>") < shap.index("<code>saw_checkout</code>")
