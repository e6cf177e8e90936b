"""Inputs held fixed beside the timing in the count slope's regression
(``train.model.count_effect_held_fixed``): when the plans that send more messages also
send more update requests, which raise the later retries, the count's slope with the
timing alone held fixed takes part of their effect; held fixed as well, it does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from retry_helpers import fit_retry

from training.config.params import ModelParams
from training.models.count_effect import count_cells, fit_cells, fit_count_effect
from training.models.fit import count_effect_held

FEATURES = [
    "retries_before",
    "hours_since_failure",
    "inv_decline_category",
    "messages_before",
    "update_requests_before",
]
SLOPE, UPDATE = -0.3, 0.8


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Retries after messages; a plan sending one more message by then sends it as an
    update request more often than not, and each update request raises the retry."""
    rng = np.random.default_rng(seed)
    rank = rng.integers(0, 3, n).astype(float)
    hours = 24.0 + 48.0 * rank + rng.uniform(0, 48, n)
    extra = rng.integers(0, 2, n)  # the plans sending earlier: one message more
    count = np.clip(np.floor(hours / 60.0) + extra, 0, 3).astype(float)
    updates = np.minimum(extra * (rng.random(n) < 0.7), count).astype(float)
    category = rng.choice(["insufficient_funds", "do_not_honor"], n)
    logit = -2.4 + 0.005 * hours - 0.3 * rank + SLOPE * count + UPDATE * updates
    return pd.DataFrame(
        {
            "retries_before": rank,
            "hours_since_failure": hours,
            "inv_decline_category": category,
            "messages_before": count,
            "update_requests_before": updates,
            "y": (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int),
        }
    )


def test_holding_the_update_requests_fixed_recovers_the_counts_slope():
    rows = _rows(60000, 1)
    y = rows["y"].to_numpy()
    timing_only = fit_count_effect(rows, y, "messages_before", FEATURES, "retries_before")
    held = fit_count_effect(
        rows, y, "messages_before", FEATURES, "retries_before", held=("update_requests_before",)
    )
    assert timing_only.estimate > SLOPE + 0.15  # pulled towards the update requests' effect
    assert abs(held.estimate - SLOPE) < 2.5 * held.standard_error
    assert held.per_unit < timing_only.per_unit


def test_the_cells_carry_the_held_inputs():
    rows = _rows(20000, 2)
    y = rows["y"].to_numpy()
    held = ("update_requests_before",)
    cells = count_cells(rows, y, "messages_before", "retries_before", held=held)
    assert "update_requests_before" in cells.columns
    from_rows = fit_count_effect(rows, y, "messages_before", FEATURES, "retries_before", held=held)
    from_cells = fit_cells(cells, "messages_before", FEATURES, "retries_before", held=held)
    assert abs(from_cells.estimate - from_rows.estimate) < 2e-3
    assert abs(from_cells.standard_error - from_rows.standard_error) < 1e-4


def test_the_model_fits_its_slope_with_the_inputs_held_fixed():
    rng_rows = _rows(30000, 3), _rows(8000, 4)
    effects = []
    for held in ({}, {"retry": ["update_requests_before"]}):
        params = ModelParams(
            num_boost_round=30,
            min_data_in_leaf=50,
            calibration_folds=1,
            count_effect_held_fixed=held,
        )
        train, valid = rng_rows
        model = fit_retry(
            train,
            valid,
            FEATURES,
            params,
            count_effect=("messages_before", "retries_before"),
        )
        assert model.count_effect is not None
        effects.append(model.count_effect.estimate)
    assert effects[1] < effects[0] - 0.1


def test_only_numeric_inputs_of_a_model_with_a_count_effect_are_held():
    assert count_effect_held("retry", ModelParams()) == ("update_requests_before",)
    assert count_effect_held("retry", ModelParams(count_effect_held_fixed={})) == ()
    assert count_effect_held("message", ModelParams()) == ()
    ok = ModelParams(count_effect_held_fixed={"retry": ["update_requests_before"]})
    assert count_effect_held("retry", ok) == ("update_requests_before",)
    for bad in (
        {"retry": ["template"]},  # a message input, categorical
        {"retry": ["retries_before"]},  # the rank the timing cells hold
        {"retry": ["messages_before"]},  # the count itself
        {"retry": ["no_such_input"]},
    ):
        with pytest.raises(ValueError, match="count_effect_held_fixed"):
            count_effect_held("retry", ModelParams(count_effect_held_fixed=bad))
    # without a count effect there is nothing to hold fixed
    assert count_effect_held("retry", ModelParams(count_effects={})) == ()
