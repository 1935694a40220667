"""From scores to a campaign: decile lift and gains, targeting policies and what a
policy yields (contacts, buyers reached, expected profit).

All figures take weighted distinct rows (``sample_weight``: how many rows each stands
for) and equal those of the rows they stand for. Scores are ranked from the highest
down; a tie group (rows of one score) that straddles a cut is split in proportion
(:func:`propensity.learn.metrics.gains_at`), so deciles hold equal sessions.

Targeting policies (chosen on the calibrated out-of-fold scores of the training split):

``f1``
    the threshold of best out-of-fold F1 (the default).
``profit``
    contact a session when that maximises the expected profit
    ``order_value * p - contact_cost`` summed over the contacted sessions, ``p`` the
    calibrated probability: the threshold of the highest expected profit on the
    out-of-fold scores.
``top-percent``
    contact the ``percent`` % of sessions with the highest scores: of the cuts between
    distinct out-of-fold scores, the one whose share is nearest to it (off by less than
    the tie group at the cut; at least the top tie group is flagged).
``budget``
    ``budget`` contacts per ``budget_sessions`` sessions scored (by default per the number
    of rows of the training data): ``top-percent`` with ``100 * budget / budget_sessions``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math

import numpy as np

from ..learn import metrics as M

POLICIES = ("f1", "profit", "top-percent", "budget")
N_DECILES = 10
SHARE_POINTS = 2000   # points of the score distribution stored with a model


@dataclass(frozen=True)
class TargetPolicy:
    """How a model's decision threshold is chosen (see the module docstring).

    ``contact_cost`` and ``order_value`` are required by ``profit``; with any other
    policy they are optional and give the expected profit in the evaluation."""
    kind: str = "f1"
    contact_cost: float | None = None
    order_value: float | None = None
    percent: float | None = None
    budget: float | None = None
    budget_sessions: float | None = None

    def checked(self) -> TargetPolicy:
        """The policy itself; ValueError with a one-line reason when it is unusable."""
        if self.kind not in POLICIES:
            raise ValueError(f"unknown target policy {self.kind!r}; choose from "
                             f"{', '.join(POLICIES)}")
        for name in ("contact_cost", "order_value", "percent", "budget", "budget_sessions"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ValueError(f"{_option(name)} must be a finite number, got {v!r}")
        c, v = self.contact_cost, self.order_value
        if (c is None) != (v is None):
            raise ValueError("--contact-cost and --order-value go together: give both")
        if self.kind == "profit" and c is None:
            raise ValueError("--target-policy profit needs --contact-cost and --order-value")
        if c is not None and v is not None:
            if c <= 0:
                raise ValueError(f"--contact-cost must be > 0, got {c:g}")
            if v <= c:
                raise ValueError(f"--order-value {v:g} is not above --contact-cost {c:g}: "
                                 f"no contact can be profitable")
        if self.kind == "top-percent":
            if self.percent is None:
                raise ValueError("--target-policy top-percent needs --top-percent P")
            check_percent(self.percent)
        elif self.percent is not None:
            raise ValueError("--top-percent goes with --target-policy top-percent")
        if self.kind == "budget":
            if self.budget is None:
                raise ValueError("--target-policy budget needs --budget N")
            if self.budget <= 0:
                raise ValueError(f"--budget must be > 0 contacts, got {self.budget:g}")
            if self.budget_sessions is not None:
                check_budget(self.budget, self.budget_sessions)
        elif self.budget is not None or self.budget_sessions is not None:
            raise ValueError("--budget and --budget-sessions go with --target-policy budget")
        return self

    @property
    def has_economics(self) -> bool:
        return self.contact_cost is not None


def _option(name):
    return "--" + {"percent": "top-percent"}.get(name, name).replace("_", "-")


def check_percent(percent):
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"--top-percent must be in (0, 100], got {percent:g}")
    return percent


def check_budget(budget, sessions):
    """``budget / sessions`` (the share contacted); ValueError when out of range."""
    if sessions <= 0:
        raise ValueError(f"--budget-sessions must be > 0, got {sessions:g}")
    if budget <= 0:
        raise ValueError(f"--budget must be > 0 contacts, got {budget:g}")
    if budget > sessions:
        raise ValueError(f"--budget {budget:g} is above the {sessions:g} sessions it is "
                         f"spread over: at most one contact per session")
    return budget / sessions


def as_policy(policy) -> TargetPolicy:
    """A :class:`TargetPolicy` from None (f1), a policy or a dict of its fields, checked."""
    if policy is None:
        return TargetPolicy()
    if isinstance(policy, dict):
        policy = TargetPolicy(**policy)
    return policy.checked()


# ---------------------------------------------------------------------------------------
# lift and gains
# ---------------------------------------------------------------------------------------
def lift_table(y_true, y_score, sample_weight=None, n_bins=N_DECILES):
    """The decile table: one dict per decile (1 = highest scores) with sessions, buyers,
    response_rate, lift, cumulative_buyers_pct, cumulative_lift."""
    shares = np.arange(n_bins + 1) / n_bins
    rows, buyers = M.gains_at(y_true, y_score, shares, sample_weight)
    total_rows, total_buyers = rows[-1], buyers[-1]
    base = total_buyers / total_rows
    out = []
    for k in range(1, n_bins + 1):
        sessions = rows[k] - rows[k - 1]
        got = buyers[k] - buyers[k - 1]
        rate = got / sessions
        cum_rate = buyers[k] / rows[k]
        out.append({
            "decile": k, "sessions": float(sessions), "buyers": float(got),
            "response_rate": float(rate),
            "lift": float(rate / base) if base > 0 else 0.0,
            "cumulative_buyers_pct": float(100.0 * buyers[k] / total_buyers)
            if total_buyers > 0 else 0.0,
            "cumulative_lift": float(cum_rate / base) if base > 0 else 0.0,
        })
    return out


def gains_curve(y_true, y_score, sample_weight=None, n_points=101):
    """``(share of sessions contacted, share of buyers reached)`` at ``n_points`` evenly
    spaced shares (for plots: aggregated, whatever the number of rows)."""
    shares = np.linspace(0.0, 1.0, n_points)
    _, buyers = M.gains_at(y_true, y_score, shares, sample_weight)
    return shares, buyers / buyers[-1] if buyers[-1] > 0 else buyers


# ---------------------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------------------
def _profit_curve(y_true, proba, sample_weight, contact_cost, order_value):
    """Per distinct score (highest first): thresholds, sessions at or above it, buyers
    among them, expected buyers (sum of calibrated p), expected and realised profit."""
    tps, fps, thr = M.cumulative_counts(y_true, proba, sample_weight)
    rows = tps + fps
    expected = np.cumsum(thr * np.diff(np.r_[0.0, rows]))
    return {"thresholds": thr, "contacts": rows, "buyers": tps, "expected_buyers": expected,
            "expected_profit": order_value * expected - contact_cost * rows,
            "profit": order_value * tps - contact_cost * rows}


def score_shares(proba, sample_weight=None, max_points=SHARE_POINTS):
    """The score distribution a threshold for a share is read from: the distinct scores
    (highest first) and the share of the weight at or above each; at most ``max_points``
    of them (evenly spaced in rank, the lowest kept)."""
    p = np.asarray(proba, dtype=np.float64)
    w = np.ones(p.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    order = np.argsort(-p, kind="mergesort")
    p, w = p[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(p)), p.size - 1]
    scores, shares = p[last], np.cumsum(w)[last] / w.sum()
    if scores.size > max_points:
        keep = np.unique(np.r_[np.linspace(0, scores.size - 1, max_points).astype(np.int64),
                               scores.size - 1])
        scores, shares = scores[keep], shares[keep]
    return {"scores": scores.tolist(), "shares": shares.tolist()}


def threshold_for_share(distribution, share):
    """The threshold flagging ``share`` (0-1] of a score distribution
    (:func:`score_shares`): of the cuts between its distinct scores, the one whose share
    at or above it is nearest to ``share`` (the higher cut on a tie, never below the top
    score), halfway down to the next distinct score."""
    scores = np.asarray(distribution["scores"], dtype=np.float64)
    shares = np.asarray(distribution["shares"], dtype=np.float64)
    i = min(int(np.searchsorted(shares, share * (1 - 1e-12), side="left")), scores.size - 1)
    if i > 0 and share - shares[i - 1] <= shares[i] - share:
        i -= 1
    return M.threshold_below(scores, i)


def choose(policy: TargetPolicy, y_true, proba, sample_weight=None, n_rows=None):
    """The policy's threshold on (out-of-fold, calibrated) scores: the policy document
    stored with the model (kind, parameters, threshold, the score distribution)."""
    distribution = score_shares(proba, sample_weight)
    doc = {k: v for k, v in asdict(policy).items() if v is not None}
    if policy.kind == "f1":
        threshold, _ = M.best_f1_threshold(y_true, proba, sample_weight)
    elif policy.kind == "profit":
        curve = _profit_curve(y_true, proba, sample_weight, policy.contact_cost,
                              policy.order_value)
        i = int(np.argmax(curve["expected_profit"]))
        threshold = M.threshold_below(curve["thresholds"], i) \
            if curve["expected_profit"][i] > 0 else 1.0
    else:
        if policy.kind == "top-percent":
            assert policy.percent is not None   # checked()
            share = policy.percent / 100.0
        else:
            sessions = policy.budget_sessions if policy.budget_sessions is not None else n_rows
            share = check_budget(policy.budget, sessions)
            doc["budget_sessions"] = float(sessions)
        doc["share"] = share
        full = score_shares(proba, sample_weight, max_points=np.iinfo(np.int64).max)
        threshold = threshold_for_share(full, share)
    doc["threshold"] = float(threshold)
    doc["score_distribution"] = distribution
    return doc


def evaluate(policy_doc, y_true, proba, sample_weight=None):
    """What the policy's threshold yields on (validation) rows: contacts (and their share
    of the sessions), buyers reached (and their share of the buyers), expected buyers
    (sum of calibrated p over the contacted) and, when the policy has a contact cost and
    order value, the expected and realised profit."""
    t, p, w = M._prepare(y_true, proba, sample_weight)
    hit = p >= policy_doc["threshold"]
    contacts, buyers = float(w[hit].sum()), float(w[hit & t].sum())
    expected = float((w[hit] * p[hit]).sum())
    out = {"threshold": float(policy_doc["threshold"]), "contacts": contacts,
           "contacts_pct": 100.0 * contacts / float(w.sum()), "buyers": buyers,
           "buyers_pct": 100.0 * buyers / float(w[t].sum()) if w[t].sum() > 0 else 0.0,
           "expected_buyers": expected}
    c, v = policy_doc.get("contact_cost"), policy_doc.get("order_value")
    if c is not None:
        out["expected_profit"] = v * expected - c * contacts
        out["profit"] = v * buyers - c * contacts
    return out


def profit_curve(y_true, proba, sample_weight, contact_cost, order_value, n_points=201):
    """``(share of sessions contacted, expected profit, realised profit)`` at
    ``n_points`` evenly spaced shares (ties split in proportion, as the gains)."""
    curve = _profit_curve(y_true, proba, sample_weight, contact_cost, order_value)
    rows = curve["contacts"]
    shares = np.linspace(0.0, 1.0, n_points)
    cut = shares * rows[-1]
    x = np.r_[0.0, rows]
    expected = np.interp(cut, x, np.r_[0.0, curve["expected_buyers"]])
    buyers = np.interp(cut, x, np.r_[0.0, curve["buyers"]])
    return (shares, order_value * expected - contact_cost * cut,
            order_value * buyers - contact_cost * cut)
