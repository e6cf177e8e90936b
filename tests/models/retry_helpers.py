"""Shared by the model tests: retry rows with a count of earlier messages confounded with
the wait, and a retry model fitted on such frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from training.config.params import ModelParams
from training.models.calibrated import CalibratedModel, fit_calibrated

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


def fit_retry(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    params: ModelParams,
    **extra: Any,
) -> CalibratedModel:
    """A retry model on the frames' ``features`` and their outcome ``y``, calibrated per
    decline category and retry rank; ``extra``: the rest of :func:`fit_calibrated`'s
    arguments (groups, count or calendar effect)."""
    return fit_calibrated(
        "retry",
        (train[features], train["y"].to_numpy()),
        (valid[features], valid["y"].to_numpy()),
        features,
        ["inv_decline_category"],
        params,
        calibration_groups=("inv_decline_category", "retries_before"),
        **extra,
    )


def fit_drawn_retry(
    rows: Callable[[np.random.Generator, int], pd.DataFrame],
    sizes: tuple[int, int],
    features: list[str],
    params: ModelParams,
    **extra: Any,
) -> CalibratedModel:
    """:func:`fit_retry` on a training and a validation frame of ``sizes`` rows drawn by
    ``rows`` from one seeded generator, each training row its own cross-fitting group."""
    rng = np.random.default_rng(11)
    train, valid = rows(rng, sizes[0]), rows(rng, sizes[1])
    return fit_retry(train, valid, features, params, groups=np.arange(len(train)), **extra)
