"""From scores to a campaign: decile lift and gains.

All figures take weighted distinct rows (``sample_weight``: how many rows each stands
for) and equal those of the rows they stand for. Scores are ranked from the highest
down; a tie group (rows of one score) that straddles a cut is split in proportion
(:func:`propensity.learn.metrics.gains_at`), so deciles hold equal sessions.
"""
from __future__ import annotations

import numpy as np

from ..learn import metrics as M

N_DECILES = 10


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
