"""Retry rows with a count of earlier messages confounded with the wait, shared by the
count effect's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["retries_before", "hours_since_failure", "inv_decline_category", "messages_before"]


def retry_rows(rng: np.random.Generator, n: int, slope: float) -> pd.DataFrame:
    """Retries whose success rises with the wait, after messages whose count rises with
    it too (a plan's fixed offsets) but varies between plans at the same time."""
    rank = rng.integers(0, 3, n).astype(float)
    hours = 24.0 + 48.0 * rank + rng.uniform(0, 48, n)
    plan_shift = rng.integers(-1, 2, n)  # explored plans send earlier or later
    count = np.clip(np.floor(hours / 60.0) + plan_shift, 0, 3).astype(float)
    category = rng.choice(["insufficient_funds", "do_not_honor"], n)
    logit = -2.6 + 0.006 * hours - 0.4 * rank + 0.3 * (category == "do_not_honor")
    p = 1.0 / (1.0 + np.exp(-(logit + slope * count)))
    return pd.DataFrame(
        {
            "retries_before": rank,
            "hours_since_failure": hours,
            "inv_decline_category": category,
            "messages_before": count,
            "y": (rng.random(n) < p).astype(int),
        }
    )
