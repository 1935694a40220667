"""Write notebooks/exploration.ipynb (outputs stripped) from the cells below.

    python notebooks/build_notebook.py          # rewrite the notebook
    python notebooks/build_notebook.py --check  # exit 1 if the committed notebook is stale

Edit the cells here, not in Jupyter, so the notebook stays reviewable as plain Python.
Markdown cells start with ``MD``, code cells with ``CODE``.
"""
import argparse
import os
import sys

import nbformat
from nbformat import v4

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK = os.path.join(HERE, "exploration.ipynb")

MD, CODE = "markdown", "code"

CELLS = [
    (MD, """\
# Who is going to buy? Purchase propensity from website sessions

This notebook walks through the data and the models behind the **propensity** package,
in the order a marketing analyst would ask the questions:

1. **The data** - what visitors do on the site, and which behaviours go with an order.
2. **The funnel** - how many sessions reach each step on the way to checkout.
3. **How behaviours relate** - a correlation heatmap.
4. **Three models** - logistic regression, random forest and gradient boosting, trained and
   compared (accuracy table, ROC and precision-recall curves, calibration).
5. **Choosing who to contact** - precision, recall and campaign profit for every decision
   threshold.
6. **Intent segments** - High / Medium / Low purchase intent, with their sizes and conversion.
7. **What drives the predictions** - feature importance.
8. **Scoring a file** - train with the packaged pipeline and score a new file in chunks, the
   way it runs in production.
9. **Why this customer?** - the reasons behind three customers' scores.

You do not need to read the code to follow along: every chart has a short explanation above
it. To use your own data, change the settings in the next cell and run everything
(*Run > Run All Cells*)."""),
    (MD, """\
## Settings

* `DATA_PATH` - your own sessions file (CSV with a `UserID` column, the 0/1 behaviour columns
  and the `ordered` column). Leave it as `None` to use the built-in stand-in data, which
  mimics the real 455,401-session training file.
* `SAMPLE_ROWS` - how many sessions to use (a random sample when the file is larger).
  100,000 sessions run in well under a minute; the conclusions hardly change with more.
* `CONTACT_COST` and `ORDER_VALUE` - the campaign economics used in section 5: what it
  costs to contact one customer (a voucher, an e-mail, an ad impression) and what one extra
  order is worth to you (its margin)."""),
    (CODE, """\
DATA_PATH = None        # e.g. "training_sample.csv"; None = built-in stand-in data
SAMPLE_ROWS = 100_000   # sessions used by this notebook
CONTACT_COST = 1.00     # cost of contacting one customer (currency units)
ORDER_VALUE = 15.00     # value of one order won by the campaign (margin, same units)
SEED = 42               # makes the sample, the split and the models reproducible"""),
    (CODE, """\
import os
import tempfile
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import propensity
from propensity.datasets import ID_COLUMN, TARGET, make_sessions

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False,
                     "font.size": 10})
pd.set_option("display.precision", 3)


def formatted(table, formats):
    # a copy of the table with numbers written for reading, e.g. {"rate": "{:.1%}"}
    out = table.copy()
    for column, fmt in formats.items():
        out[column] = out[column].map(fmt.format)
    return out


print("propensity", propensity.__version__)"""),
    (MD, """\
## 1. The data

Each row is one website session. The columns say whether the visitor did something during
the session (1) or not (0) - clicked the basket icon, signed in, saw the checkout page,
used a mobile phone, ... - and `ordered` says whether the session ended with an order."""),
    (CODE, """\
if DATA_PATH is None:
    sessions = make_sessions(SAMPLE_ROWS, seed=0)
    source = "built-in stand-in data"
else:
    sessions = pd.read_csv(DATA_PATH)
    if len(sessions) > SAMPLE_ROWS:
        sessions = sessions.sample(SAMPLE_ROWS, random_state=SEED).reset_index(drop=True)
    source = DATA_PATH

features = [c for c in sessions.columns if c not in (ID_COLUMN, TARGET)]
y = sessions[TARGET].to_numpy()
print(f"{len(sessions):,} sessions from {source}, {len(features)} behaviour columns")
print(f"{int(y.sum()):,} sessions ended with an order: a conversion rate of {y.mean():.2%}")
sessions.head()"""),
    (MD, """\
### How often does each behaviour happen?

Most sessions are short: a large majority come from a phone, many see the home page, but
only a small share put something in the basket or reach the checkout."""),
    (CODE, """\
share = sessions[features].mean().sort_values()
fig, ax = plt.subplots(figsize=(8, 7))
ax.barh(share.index, share.values * 100, color="tab:blue")
ax.set_xlabel("sessions with this behaviour (%)")
ax.set_title("How often each behaviour happens")
for i, v in enumerate(share.values):
    ax.text(v * 100 + 0.5, i, f"{v:.1%}", va="center", fontsize=8)
ax.set_xlim(0, share.max() * 100 * 1.15)
plt.tight_layout()
plt.show()"""),
    (MD, """\
### Conversion rate by behaviour

For every behaviour, the share of sessions that ordered **when the visitor did it** (orange)
and **when they did not** (grey). The dashed line is the overall conversion rate. The
*lift* in the table is how many times more likely an order is when the behaviour happened,
compared with the average session."""),
    (CODE, """\
overall = y.mean()
by_feature = pd.DataFrame({
    "sessions with it": sessions[features].sum(),
    "rate when done": [y[sessions[f].to_numpy() == 1].mean() for f in features],
    "rate when not done": [y[sessions[f].to_numpy() == 0].mean() for f in features],
}, index=features)
by_feature["lift"] = by_feature["rate when done"] / overall
by_feature = by_feature.sort_values("rate when done")

fig, ax = plt.subplots(figsize=(9, 8))
pos = np.arange(len(by_feature))
ax.barh(pos + 0.2, by_feature["rate when done"] * 100, height=0.4,
        color="tab:orange", label="did it")
ax.barh(pos - 0.2, by_feature["rate when not done"] * 100, height=0.4,
        color="tab:gray", label="did not")
ax.axvline(overall * 100, color="black", ls="--", lw=1,
           label=f"all sessions ({overall:.1%})")
ax.set_yticks(pos, by_feature.index)
ax.set_xlabel("conversion rate (% of sessions that ordered)")
ax.set_title("Conversion rate with and without each behaviour")
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()
formatted(by_feature.sort_values("lift", ascending=False),
          {"sessions with it": "{:,.0f}", "rate when done": "{:.1%}",
           "rate when not done": "{:.1%}", "lift": "{:.1f}x"})"""),
    (MD, """\
Reading the chart: checkout, delivery checks and signing in are by far the strongest
signals - a visitor who looked at the delivery details orders most of the time. In the real
data **nobody ordered without seeing the checkout page**. The device and whether the visitor
is a returning user change the odds only a little."""),
    (MD, """\
## 2. The funnel

The typical path to an order: visit -> put something in the basket -> see the checkout
-> check the delivery details -> order. The bars show how many sessions took each step;
the labels give the share of all sessions and the conversion rate of the sessions that
took it."""),
    (CODE, """\
def took(columns):
    cols = [c for c in columns if c in sessions.columns]
    if not cols:
        return np.zeros(len(sessions), dtype=bool)
    return sessions[cols].to_numpy().max(axis=1) == 1

steps = {
    "visited the site": np.ones(len(sessions), dtype=bool),
    "added to basket": took(["basket_add_list", "basket_add_detail"]),
    "saw the checkout": took(["saw_checkout"]),
    "checked delivery details": took(["checked_delivery_detail"]),
    "ordered": y == 1,
}
funnel = pd.DataFrame({
    "sessions": [int(m.sum()) for m in steps.values()],
    "conversion rate": [y[m].mean() if m.any() else np.nan for m in steps.values()],
}, index=list(steps))
funnel["share of sessions"] = funnel["sessions"] / len(sessions)

fig, ax = plt.subplots(figsize=(9, 4))
pos = np.arange(len(funnel))[::-1]
ax.barh(pos, funnel["sessions"], color=plt.cm.Blues(np.linspace(0.9, 0.4, len(funnel))))
ax.set_yticks(pos, funnel.index)
ax.set_xlabel("number of sessions")
ax.set_title("The shopping funnel")
for p, (step, row) in zip(pos, funnel.iterrows()):
    label = f"  {row['share of sessions']:.1%} of sessions"
    if step != "ordered":
        label += f", {row['conversion rate']:.0%} of them ordered"
    ax.text(row["sessions"], p, label, va="center", fontsize=9)
ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
ax.set_xlim(0, funnel["sessions"].max() * 1.5)
plt.tight_layout()
plt.show()
formatted(funnel, {"sessions": "{:,.0f}", "conversion rate": "{:.1%}",
                   "share of sessions": "{:.1%}"})"""),
    (MD, """\
The big drop is between visiting and the basket: most sessions never put anything in it.
Once a visitor has seen the checkout, the odds of an order are high. The models below
put a number on every session - its probability of ending in an order - so that a
campaign can focus on the sessions where a nudge is worth its cost."""),
    (MD, """\
## 3. How the behaviours relate to each other

Each square is the correlation between two columns: red when they tend to happen together,
blue when one tends to exclude the other (the three device columns, for example), white when
they are unrelated. The last row and column is `ordered`."""),
    (CODE, """\
corr = sessions[features + [TARGET]].astype(float).corr()
fig, ax = plt.subplots(figsize=(10, 8.5))
im = ax.imshow(corr.values, cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=8)
ax.set_yticks(range(len(corr)), corr.index, fontsize=8)
ax.grid(False)
fig.colorbar(im, ax=ax, shrink=0.8, label="correlation")
ax.set_title("Correlation between behaviours and ordering")
plt.tight_layout()
plt.show()
print("Most related to ordering:")
print(corr[TARGET].drop(TARGET).sort_values(ascending=False).head(8).round(2).to_string())"""),
    (MD, """\
## 4. Three models

We hold back 20 % of the sessions (chosen at random, keeping the same share of orders) to
test the models on data they have never seen, and train three kinds of model on the other
80 %:

* **Logistic regression** - a weighted score of the behaviours; simple and transparent.
* **Random forest** - many decision trees voting together.
* **Gradient boosting** - trees built one after the other, each correcting the previous ones.

Each model is wrapped in a `PropensityModel`, as the production pipeline does: it adds the
combined features (e.g. *signed in and saw checkout*), corrects the scores so that they are
real probabilities (*calibration*), and picks the decision threshold with the best balance
of precision and recall (F1), estimated by cross-validation on the training sessions."""),
    (CODE, """\
from propensity import (GradientBoostingClassifier, LogisticRegression, PropensityModel,
                        RandomForestClassifier)
from propensity.learn import metrics
from propensity.learn.model_selection import stratified_split

train_idx, val_idx = stratified_split(y, test_size=0.2, seed=SEED)
X_train, y_train = sessions[features].iloc[train_idx], y[train_idx]
X_val, y_val = sessions[features].iloc[val_idx], y[val_idx]
balance = (y_train == 0).sum() / y_train.sum()   # non-buyers per buyer
print(f"training: {len(y_train):,} sessions, validation: {len(y_val):,} sessions")

estimators = {
    "Logistic regression": LogisticRegression(C=1.0, l1_ratio=0.5, class_weight="balanced"),
    "Random forest": RandomForestClassifier(n_estimators=100, max_depth=10,
                                            class_weight="balanced", random_state=SEED),
    "Gradient boosting": GradientBoostingClassifier(n_estimators=100, max_depth=6,
                                                    learning_rate=0.1,
                                                    scale_pos_weight=balance,
                                                    random_state=SEED),
}
models, proba = {}, {}
for name, estimator in estimators.items():
    start = time.perf_counter()
    models[name] = PropensityModel(estimator=estimator, random_state=SEED).fit(X_train, y_train)
    proba[name] = models[name].predict_proba(X_val)[:, 1]
    print(f"{name:<20} trained in {time.perf_counter() - start:5.2f} s")"""),
    (MD, """\
### How well do they do?

Measured on the held-back validation sessions:

* **precision** - of the sessions the model flags as buyers, the share that really ordered;
* **recall** - of the sessions that ordered, the share the model found;
* **F1** - a single score that balances the two;
* **ROC-AUC** and **average precision** - how well the model ranks buyers above
  non-buyers, whatever the threshold (1.0 is perfect);
* **Brier score** - the average squared error of the probabilities (lower is better)."""),
    (CODE, """\
rows = {}
for name, model in models.items():
    m = metrics.binary_metrics(y_val, proba[name], model.threshold_)
    rows[name] = {"F1": m["f1"], "precision": m["precision"], "recall": m["recall"],
                  "ROC-AUC": m["roc_auc"], "average precision": m["avg_precision"],
                  "Brier score": m["brier"], "threshold": m["threshold"]}
comparison = pd.DataFrame(rows).T.sort_values("F1", ascending=False)
best_name = comparison.index[0]
best_model = models[best_name]
print(f"Best model by F1 on the validation sessions: {best_name}")
comparison.round(4)"""),
    (CODE, """\
fig, ax = plt.subplots(figsize=(9, 4))
shown = ["F1", "precision", "recall", "ROC-AUC"]
width = 0.8 / len(comparison)
for i, name in enumerate(comparison.index):
    x = np.arange(len(shown)) + i * width
    ax.bar(x, comparison.loc[name, shown], width, label=name)
    for xi, v in zip(x, comparison.loc[name, shown]):
        ax.text(xi, v + 0.003, f"{v:.3f}", ha="center", fontsize=7)
ax.set_xticks(np.arange(len(shown)) + width * (len(comparison) - 1) / 2, shown)
ax.set_ylim(max(0.0, comparison[shown].values.min() - 0.1), 1.02)
ax.set_ylabel("score on validation sessions")
ax.set_title("Model comparison")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(comparison), frameon=False)
plt.tight_layout()
plt.show()"""),
    (MD, """\
### ROC and precision-recall curves

The **ROC curve** (left) shows, as the threshold moves, the share of buyers found against
the share of non-buyers wrongly flagged; the closer to the top-left corner, the better.
With only a few percent of buyers, the **precision-recall curve** (right) is more telling:
it shows how precise the list of contacted customers stays as we try to reach more of the
buyers. The dots mark each model's chosen threshold."""),
    (CODE, """\
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
zoom = ax1.inset_axes([0.38, 0.3, 0.57, 0.45])
for name, p in proba.items():
    fpr, tpr, _ = metrics.roc_curve(y_val, p)
    auc = comparison.loc[name, "ROC-AUC"]
    ax1.plot(fpr, tpr, lw=2, label=f"{name} (AUC {auc:.3f})")
    zoom.plot(fpr, tpr, lw=2)
    prec, rec, _ = metrics.precision_recall_curve(y_val, p)
    ap = comparison.loc[name, "average precision"]
    line, = ax2.step(rec, prec, where="post", lw=2, label=f"{name} (AP {ap:.3f})")
    ax2.plot(comparison.loc[name, "recall"], comparison.loc[name, "precision"], "o",
             color=line.get_color(), ms=8)
ax1.plot([0, 1], [0, 1], ls="--", color="gray", label="random guess")
ax1.set_xlabel("false positive rate (non-buyers flagged)")
ax1.set_ylabel("true positive rate (buyers found)")
zoom.set_xlim(0, 0.05)
zoom.set_ylim(0.8, 1.005)
zoom.set_title("zoom: top-left corner", fontsize=9)
zoom.tick_params(labelsize=8)
ax1.set_title("ROC curves")
ax1.legend(loc="lower right", fontsize=9)
ax2.axhline(y_val.mean(), ls="--", color="gray", label=f"random guess ({y_val.mean():.1%})")
ax2.set_xlabel("recall (share of buyers found)")
ax2.set_ylabel("precision (share of flagged who buy)")
ax2.set_title("Precision-recall curves")
ax2.set_ylim(0, 1.02)
ax2.legend(loc="lower left")
plt.tight_layout()
plt.show()"""),
    (MD, """\
### Can we trust the probabilities? (calibration)

If a model says "30 % chance of an order" for a group of sessions, about 30 % of them should
order. The chart groups the validation sessions by predicted probability and compares it
with the share that actually ordered: points on the diagonal are well calibrated. The
dotted line is the random forest *before* calibration - class balancing makes raw scores
far too optimistic, which is why the package calibrates them."""),
    (CODE, """\
def reliability(y_true, p, n_bins=10, min_sessions=30):
    # mean predicted probability and observed order rate per probability band;
    # bands with fewer than min_sessions sessions are too noisy to show
    bands = np.minimum((p * n_bins).astype(int), n_bins - 1)
    table = pd.DataFrame({"p": p, "y": y_true, "band": bands}).groupby("band")
    table = table.agg(predicted=("p", "mean"), observed=("y", "mean"), sessions=("y", "size"))
    return table[table["sessions"] >= min_sessions]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
for name, p in proba.items():
    r = reliability(y_val, p)
    ax1.plot(r["predicted"], r["observed"], "o-", lw=2, label=name)
r = reliability(y_val, models["Random forest"].predict_raw(X_val))
ax1.plot(r["predicted"], r["observed"], "s:", color="gray", label="Random forest, uncalibrated")
ax1.plot([0, 1], [0, 1], ls="--", color="black", lw=1, label="perfect calibration")
ax1.set_xlabel("predicted probability of an order")
ax1.set_ylabel("observed share that ordered")
ax1.set_title("Calibration (probability bands of at least 30 sessions)")
ax1.legend(loc="upper left", fontsize=9)
ax2.hist(proba[best_name], bins=np.linspace(0, 1, 21), color="tab:blue")
ax2.set_yscale("log")
ax2.set_xlabel(f"predicted probability ({best_name})")
ax2.set_ylabel("number of sessions (log scale)")
ax2.set_title("Most sessions get a very low probability")
plt.tight_layout()
plt.show()"""),
    (MD, """\
## 5. Choosing who to contact: the threshold trade-off

A campaign contacts every customer whose probability is above a **threshold**. A low
threshold reaches almost every buyer but also many people who will not buy (low precision,
high cost); a high threshold gives a short, precise list that misses buyers.

To put money on it we use the settings from the top: each contact costs `CONTACT_COST`,
and each buyer reached is worth `ORDER_VALUE`. The right-hand chart shows the campaign's
net result on the validation sessions, scaled to 10,000 sessions, for the best model: the
black line counts the buyers actually reached, the dashed blue line is what the model's
probabilities predict before anyone orders - they agree when the probabilities are well
calibrated."""),
    (CODE, """\
p_best = proba[best_name]
thresholds = np.linspace(0.005, 0.995, 199)
flagged = p_best[None, :] >= thresholds[:, None]
contacted = flagged.sum(axis=1)
buyers_reached = (flagged & (y_val[None, :] == 1)).sum(axis=1)
precision_t = np.where(contacted > 0, buyers_reached / np.maximum(contacted, 1), np.nan)
recall_t = buyers_reached / y_val.sum()
scale = 10_000 / len(y_val)
benefit = buyers_reached * ORDER_VALUE * scale
cost = contacted * CONTACT_COST * scale
net = benefit - cost
# what the model itself expects, without knowing who ordered (what you would use on new
# customers): each contacted customer brings ORDER_VALUE times their probability
expected_net = ((flagged * p_best[None, :]).sum(axis=1) * ORDER_VALUE * scale) - cost
# probabilities take few distinct values, so neighbouring thresholds often tie for the
# best result: find that whole range and take its middle
tied = np.isclose(net, net.max())
lo = hi = int(np.argmax(net))
while lo > 0 and tied[lo - 1]:
    lo -= 1
while hi < len(net) - 1 and tied[hi + 1]:
    hi += 1
low_t, high_t, i = thresholds[lo], thresholds[hi], (lo + hi) // 2

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
ax1.plot(thresholds, precision_t, lw=2, label="precision")
ax1.plot(thresholds, recall_t, lw=2, label="recall")
f1_t = 2 * precision_t * recall_t / (precision_t + recall_t)
ax1.plot(thresholds, f1_t, lw=2, ls="--", label="F1")
ax1.axvline(best_model.threshold_, color="gray", ls=":",
            label=f"model threshold ({best_model.threshold_:.2f})")
ax1.set_xlabel("threshold (contact if probability >= threshold)")
ax1.set_ylabel("score")
ax1.set_title(f"Precision and recall vs threshold ({best_name})")
ax1.legend(loc="lower center")
ax2.plot(thresholds, benefit, lw=2, color="tab:green", label="value of orders reached")
ax2.plot(thresholds, cost, lw=2, color="tab:red", label="cost of contacts")
ax2.plot(thresholds, net, lw=3, color="black", label="net result")
ax2.plot(thresholds, expected_net, lw=2, ls="--", color="tab:blue",
         label="net result expected by the model")
ax2.axvspan(low_t, high_t, color="gold", alpha=0.3,
            label=f"most profitable ({low_t:.2f} to {high_t:.2f})")
ax2.set_xlabel("threshold (contact if probability >= threshold)")
ax2.set_ylabel("per 10,000 sessions (currency units)")
ax2.set_title(f"Campaign economics: contact {CONTACT_COST:g}, order {ORDER_VALUE:g}")
ax2.legend(loc="center left")
plt.tight_layout()
plt.show()
print(f"Most profitable thresholds: {low_t:.2f} to {high_t:.2f}. At {thresholds[i]:.2f}: "
      f"contact {contacted[i] * scale:,.0f} of every 10,000 sessions, reach "
      f"{recall_t[i]:.0%} of buyers at {precision_t[i]:.0%} precision, "
      f"net {net[i]:,.0f} per 10,000 sessions.")
print(f"Break-even: a contact pays off when the probability of an order is above "
      f"CONTACT_COST / ORDER_VALUE = {CONTACT_COST / ORDER_VALUE:.3f}.")"""),
    (MD, """\
With cheap contacts the profit curve is flat over a wide range: contacting a few extra
low-probability customers costs little. As `CONTACT_COST` grows relative to `ORDER_VALUE`
the best threshold moves up - a contact pays off only when the probability of an order is
above `CONTACT_COST / ORDER_VALUE`. Change the two settings at the top and re-run to see
it for your own campaign."""),
    (MD, """\
## 6. Intent segments

For campaign planning the predictor sorts customers into three groups by their probability
of ordering: **High** (above 50 %), **Medium** (10 % to 50 %) and **Low** (below 10 %). The
table shows, for the validation sessions, how big each group is, how often its sessions
really ordered, and which share of all orders it holds."""),
    (CODE, """\
from propensity.scoring.predictor import segment_of

seg = pd.DataFrame({"segment": segment_of(p_best), "ordered": y_val})
segments = seg.groupby("segment")["ordered"].agg(sessions="size", orders="sum")
segments = segments.reindex(["High", "Medium", "Low"]).fillna(0)
segments["share of sessions"] = segments["sessions"] / segments["sessions"].sum()
segments["conversion rate"] = segments["orders"] / segments["sessions"].replace(0, np.nan)
segments["share of orders"] = segments["orders"] / segments["orders"].sum()

colors = ["tab:green", "tab:orange", "tab:gray"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
pos = np.arange(len(segments))
for offset, column, color in ((-0.2, "share of sessions", "tab:blue"),
                              (0.2, "share of orders", "tab:red")):
    ax1.bar(pos + offset, segments[column] * 100, 0.4, color=color, label=column)
    for x, v in zip(pos + offset, segments[column]):
        ax1.text(x, v * 100 + 1, f"{v:.0%}", ha="center", fontsize=9)
ax1.set_xticks(pos, segments.index)
ax1.set_ylabel("% of all sessions / % of all orders")
ax1.set_ylim(0, 110)
ax1.set_title("Segment sizes: sessions vs orders")
ax1.legend(loc="upper center")
ax2.bar(segments.index, segments["conversion rate"] * 100, color=colors)
for i, r in enumerate(segments["conversion rate"]):
    ax2.text(i, r * 100 + 1, f"{r:.1%}", ha="center")
ax2.set_ylabel("conversion rate (%)")
ax2.set_ylim(0, 110)
ax2.set_title("How often each segment orders")
plt.tight_layout()
plt.show()
formatted(segments, {"sessions": "{:,.0f}", "orders": "{:,.0f}",
                     "share of sessions": "{:.1%}", "conversion rate": "{:.1%}",
                     "share of orders": "{:.1%}"})"""),
    (MD, """\
The High segment is small but holds most of the orders; the Medium segment is the natural
target for a nudge (a reminder, a free-delivery offer); the Low segment is most of the
traffic and rarely orders."""),
    (MD, """\
## 7. What drives the predictions?

Feature importance for the two tree models (how much each feature improves the trees'
splits), and for logistic regression the coefficients on standardised features, so that
they are comparable: green pushes towards an order, red away from it. Features with `_x_`
in their name are combinations of two behaviours, `engagement_score` and `intent_score`
count related behaviours, and `<device>_returning` is a returning visitor on that device."""),
    (CODE, """\
top = 12
fig, axes = plt.subplots(1, 3, figsize=(15, 5.5))
for ax, name in zip(axes, ["Random forest", "Gradient boosting"]):
    model = models[name]
    imp = pd.Series(model.estimator_.feature_importances_, index=model.feature_names_out_)
    imp = imp.sort_values().tail(top)
    ax.barh(imp.index, imp.values, color="tab:purple")
    ax.set_title(name)
    ax.set_xlabel("importance (share of the total)")

lr = models["Logistic regression"].estimator_
coef = pd.Series(np.ravel(getattr(lr, "coef_standardized_", lr.coef_)),
                 index=models["Logistic regression"].feature_names_out_)
coef = coef[coef.abs().sort_values().index].tail(top)
axes[2].barh(coef.index, coef.values,
             color=np.where(coef.values > 0, "tab:green", "tab:red"))
axes[2].axvline(0, color="black", lw=0.8)
axes[2].set_title("Logistic regression")
axes[2].set_xlabel("coefficient (green: more likely to order)")
for ax in axes:
    ax.tick_params(axis="y", labelsize=8)
fig.suptitle(f"Top {top} features per model")
plt.tight_layout()
plt.show()"""),
    (MD, """\
All three models agree on the essentials: reaching the checkout, checking delivery details
and signing in carry most of the signal. Behaviours such as browsing options or the device
matter much less."""),
    (MD, """\
## 8. Scoring a file, as in production

In production two commands do the work: `python -m propensity.train` trains all models and
saves them (with a manifest naming the best one) in an output folder, and
`CustomerPropensityPredictor` (or `python -m propensity.predict`) scores new sessions.
Here we run the same training library on our sample (with a reduced search grid so that
it is quick) into a temporary folder."""),
    (CODE, """\
from propensity.training.pipeline import run_training

workdir = tempfile.mkdtemp(prefix="propensity_notebook_")
train_csv = os.path.join(workdir, "training_sample.csv")
sessions.to_csv(train_csv, index=False)
quick_grid = {
    "logistic_regression": {"C": [1.0], "l1_ratio": [0.5]},
    "random_forest": {"n_estimators": [100], "max_depth": [10], "min_samples_split": [2]},
    "gradient_boosting": {"n_estimators": [100], "max_depth": [6], "learning_rate": [0.1]},
}
start = time.perf_counter()
result = run_training(train_file=train_csv, output_dir=os.path.join(workdir, "ml_outputs"),
                      grid=quick_grid, seed=SEED)
print(f"trained in {time.perf_counter() - start:.1f} s; best model: {result.best_model}")
print("files:", ", ".join(sorted(os.listdir(result.output_dir))))"""),
    (MD, """\
Now a file of new sessions to score: the next day's visitors (generated like the real
`testing_sample.csv`). The predictor loads the best model named in the manifest and
scores the file in chunks of 5,000 rows, so files larger than memory work the same way.
Each output row has the customer's id, the yes/no prediction, the probability and the
intent segment."""),
    (CODE, """\
from propensity import CustomerPropensityPredictor

new_csv = os.path.join(workdir, "new_sessions.csv")
make_sessions(20_000, seed=1, testing=True).to_csv(new_csv, index=False)

predictor = CustomerPropensityPredictor(result.output_dir)
predictor.load_best_model()
print("using", predictor.model_name)

scored_csv = os.path.join(workdir, "predictions.csv")
for i, chunk in enumerate(pd.read_csv(new_csv, chunksize=5_000)):
    predictions = predictor.predict(chunk, segments=True)
    predictions.to_csv(scored_csv, mode="w" if i == 0 else "a", header=(i == 0), index=False)

scored = pd.read_csv(scored_csv)
print(f"{len(scored):,} sessions scored in {i + 1} chunks")
scored.head()"""),
    (CODE, """\
summary = scored.groupby("segment").agg(
    sessions=("UserID", "size"), mean_probability=("purchase_probability", "mean"),
    flagged_as_buyers=("predicted_ordered", "sum")).reindex(["High", "Medium", "Low"])
summary["share"] = summary["sessions"] / summary["sessions"].sum()
summary["expected orders"] = summary["sessions"] * summary["mean_probability"]
formatted(summary, {"sessions": "{:,.0f}", "mean_probability": "{:.1%}",
                    "flagged_as_buyers": "{:,.0f}", "share": "{:.1%}",
                    "expected orders": "{:,.0f}"})"""),
    (MD, """\
## 9. Why this customer? Reason codes

A score alone does not tell a sales or CRM team what to say. `predict(..., explain=3)` adds
the three behaviours that push each customer's score up most (`reason_1..reason_3`) and
how much each adds (`reason_1_contribution..`). They are exact SHAP values of the model's
score before calibration (log-odds for gradient boosting and logistic regression, the
averaged probability for the random forest): each customer's contributions plus a common
`base_value` add up to that score. Below: the most likely buyer of the new file, a customer
in the middle and one of the least likely."""),
    (CODE, """\
new_sessions = pd.read_csv(new_csv)
order = scored["purchase_probability"].sort_values(kind="mergesort").index
three = new_sessions.loc[[order[-1], order[len(order) // 2], order[0]]].reset_index(drop=True)
reasons = predictor.predict(three, explain=3)
reasons[["UserID", "purchase_probability", "reason_1", "reason_1_contribution",
         "reason_2", "reason_2_contribution", "reason_3", "reason_3_contribution"]]"""),
    (CODE, """\
contrib = predictor.model.explain(three)
base = contrib.pop("base_value")
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharex=True)
for ax, (i, row), title in zip(axes, contrib.iterrows(), ["most likely", "middle", "least likely"]):
    top = row[row.abs().sort_values().index].tail(8)
    ax.barh(top.index, top.values, color=np.where(top.values > 0, "tab:green", "tab:red"))
    ax.axvline(0, color="black", lw=0.8)
    p = reasons.loc[i, "purchase_probability"]
    ax.set_title(f"{title}: p = {p:.1%}\\nbase {base[i]:.2f} + contributions = {base[i] + row.sum():.2f}")
    ax.tick_params(axis="y", labelsize=8)
axes[1].set_xlabel("contribution to the model's score (green: towards an order)")
plt.tight_layout()
plt.show()"""),
    (MD, """\
An interaction feature's share (for example `sign_in_x_saw_checkout`) is split equally
between the behaviours it is made of, so the reasons always name columns of the input file.
From the command line, `python -m propensity.predict ... --explain 3` writes the same columns."""),
    (MD, """\
For a large file, `predictor.predict_from_file(input_csv, output_csv, segments=True)` does
the same streaming in the fast C reader, or from the command line:

```bash
python -m propensity.predict --input_file new_sessions.csv --output_file predictions.csv
```

The temporary folder is removed below."""),
    (MD, """\
## 10. Text columns: campaigns, regions, device models

Marketing files often carry a text column with many values: the campaign that brought the
visitor, a region, a device model. `PropensityModel(categorical="auto")` (the default, and
`--categorical auto` of the training run) makes each text column **one categorical
feature**: the trees split it into two sets of values, logistic regression replaces each
value by its (cross-fitted) rate of orders. `categorical="onehot"` writes one 0/1 column
per value instead, which is slower and, with many small values, less accurate.

Below, every session gets the campaign that brought it: 300 campaigns, a few large and many
small, some converting far better than others (buyers came more often through the good
ones). The same gradient boosting is trained both ways."""),
    (CODE, """\
rng = np.random.default_rng(SEED)
n_campaigns = 300
quality = rng.normal(0.0, 2.0, n_campaigns)          # how well each campaign converts
size = 1.0 / (np.arange(n_campaigns) + 10.0)         # a few large campaigns, many small ones
p_buyer = size * np.exp(quality) / (size * np.exp(quality)).sum()
p_other = size / size.sum()
campaign = np.where(y == 1, rng.choice(n_campaigns, len(y), p=p_buyer),
                    rng.choice(n_campaigns, len(y), p=p_other))
with_campaign = sessions[features].assign(campaign=[f"campaign_{c:03d}" for c in campaign])
Xc_train, Xc_val = with_campaign.iloc[train_idx], with_campaign.iloc[val_idx]

rows, campaign_models = {}, {}
for name, mode, columns in [("campaign as one categorical feature", "auto", None),
                            ("campaign one-hot", "onehot", None),
                            ("without the campaign", "auto", features)]:
    train_x = Xc_train if columns is None else Xc_train[columns]
    val_x = Xc_val if columns is None else Xc_val[columns]
    start = time.perf_counter()
    model = PropensityModel(
        estimator=GradientBoostingClassifier(n_estimators=100, max_depth=6, learning_rate=0.1,
                                             scale_pos_weight=balance, random_state=SEED),
        categorical=mode, random_state=SEED).fit(train_x, y_train)
    seconds = time.perf_counter() - start
    campaign_models[name] = model
    p_val = model.predict_proba(val_x)[:, 1]
    rows[name] = {"model features": len(model.feature_names_out_), "training seconds": seconds,
                  "average precision": metrics.average_precision_score(y_val, p_val),
                  "F1": metrics.f1_score(y_val, model.predict(val_x)),
                  "ROC-AUC": metrics.roc_auc_score(y_val, p_val)}
formatted(pd.DataFrame(rows).T, {"model features": "{:.0f}", "training seconds": "{:.2f}",
                                 "average precision": "{:.4f}", "F1": "{:.4f}",
                                 "ROC-AUC": "{:.4f}"})"""),
    (MD, """\
The campaign adds what the behaviours cannot say (average precision and F1 rise); as one
categorical feature it trains faster than its 300 one-hot columns and uses the small
campaigns better, because a split can group many of them at once."""),
    (MD, """\
A value the model has not seen (a campaign launched after training) or one of the rarest
values beyond the 254 a column keeps gets the shared "other" category, and an empty cell
is a missing value: both are scored, never refused. Here the same session under a known
campaign, a new one and none:"""),
    (CODE, """\
categorical = campaign_models["campaign as one categorical feature"]
p_val = categorical.predict_proba(Xc_val)[:, 1]
middle = int(np.argmin(np.abs(p_val - 0.5)))   # a session the campaign can tip either way
best, worst = (f"campaign_{c:03d}" for c in (np.argmax(quality), np.argmin(quality)))
one = Xc_val.iloc[[middle] * 4].reset_index(drop=True)
one["campaign"] = [best, worst, "spring_launch_2027", None]
one.assign(purchase_probability=categorical.predict_proba(one)[:, 1])[
    ["campaign", "purchase_probability"]]"""),
    (CODE, """\
import shutil

shutil.rmtree(workdir, ignore_errors=True)"""),
]


def build():
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, text) in enumerate(CELLS):
        cell = v4.new_markdown_cell(text) if kind == MD else v4.new_code_cell(text)
        cell["id"] = f"cell-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render():
    return nbformat.writes(build()) + "\n"


def cells_of(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if notebooks/exploration.ipynb differs from the cells here")
    args = ap.parse_args(argv)
    if args.check:
        # compare the cells, not the JSON text: another nbformat version may write the
        # same notebook slightly differently
        try:
            current = cells_of(nbformat.read(NOTEBOOK, as_version=4))
        except FileNotFoundError:
            current = None
        if current != cells_of(build()):
            print(f"{NOTEBOOK} is stale: run python notebooks/build_notebook.py", file=sys.stderr)
            return 1
        return 0
    with open(NOTEBOOK, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {NOTEBOOK} ({len(CELLS)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
