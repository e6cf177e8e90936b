"""The count effect (``train.model.count_effects``): a count confounded with the time of
the row (messages before a retry) gets the slope it has with the timing held fixed, the
trees never split on it, and the served model values one count fewer at the same time
as the data say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from retry_helpers import FEATURES, fit_drawn_retry
from retry_helpers import retry_rows as _rows

from training.config.params import ModelParams
from training.models.count_effect import fit_count_effect
from training.models.fit import _count_effect
from training.models.group_calibration import GroupCalibrator


def test_the_slope_is_found_with_the_timing_held_fixed_and_shrunk_when_unclear():
    rng = np.random.default_rng(3)
    rows = _rows(rng, 40000, slope=-0.4)
    # the count rises with the time since the failure, which helps the retry
    assert np.corrcoef(rows["messages_before"], rows["hours_since_failure"])[0, 1] > 0.5
    effect = fit_count_effect(
        rows, rows["y"].to_numpy(), "messages_before", FEATURES, "retries_before"
    )
    assert abs(effect.estimate + 0.4) < 0.12
    assert effect.per_unit < -0.25 and effect.position == 3
    flat = _rows(np.random.default_rng(4), 40000, slope=0.0)
    none = fit_count_effect(
        flat, flat["y"].to_numpy(), "messages_before", FEATURES, "retries_before"
    )
    assert abs(none.per_unit) < 0.5 * abs(none.estimate) + 0.02  # shrunk towards zero
    constant = flat.assign(messages_before=1.0)
    assert (
        fit_count_effect(
            constant, flat["y"].to_numpy(), "messages_before", FEATURES, "retries_before"
        ).per_unit
        == 0.0
    )


def _model(slope: float, effect: tuple[str, str] | None):
    params = ModelParams(num_boost_round=60, min_data_in_leaf=50, calibration_folds=2)
    return fit_drawn_retry(
        lambda rng, n: _rows(rng, n, slope), (30000, 8000), FEATURES, params, count_effect=effect
    )


def test_the_served_model_values_one_message_fewer_at_the_same_time():
    probe = _rows(np.random.default_rng(12), 4000, -0.5)
    probe = probe[probe["messages_before"] >= 1]
    fewer = probe.assign(messages_before=probe["messages_before"] - 1)
    model = _model(-0.5, ("messages_before", "retries_before"))
    gain = model.booster.feature_importance("gain")
    assert gain[FEATURES.index("messages_before")] == 0  # the trees never split on it
    ratio = model.predict(probe).mean() / model.predict(fewer).mean()
    assert ratio < 0.75  # truth: exp(-0.5) ~ 0.61 in odds
    plain = _model(-0.5, None)
    plain_ratio = plain.predict(probe).mean() / plain.predict(fewer).mean()
    assert ratio < plain_ratio
    # the map's own slope is served the same by its fast and its reference path
    matrix = np.column_stack(
        [
            probe["retries_before"],
            probe["hours_since_failure"],
            np.zeros(len(probe)),
            probe["messages_before"],
        ]
    )
    scores = np.full(len(probe), 0.1)
    calibrator = model.group_calibrator
    assert isinstance(calibrator, GroupCalibrator) and calibrator.slopes == (3,)
    assert np.allclose(
        calibrator.predict(scores, matrix), calibrator.predict_sparse(scores, matrix), atol=1e-12
    )


def test_a_count_effect_on_no_count_input_is_refused():
    assert _count_effect("retry", ModelParams()) == ("messages_before", "retries_before")
    assert _count_effect("self_cure", ModelParams()) is None
    with pytest.raises(ValueError, match="no count input"):
        _count_effect("retry", ModelParams(count_effects={"retry": "messages_sent"}))


def _closeness_rows(rng: np.random.Generator, n: int, slope: float) -> pd.DataFrame:
    """Messages whose answer rises with the closeness of their hour to the customer's
    active hour; half the customers have no active hour (missing) and answer more often
    than those far from theirs (new customers, as in the zoo's worlds)."""
    rank = rng.integers(0, 3, n).astype(float)
    hours = 72.0 * rank + rng.uniform(0, 72, n)
    closeness = rng.uniform(0, 1, n)
    missing = rng.random(n) < 0.5
    logit = -2.5 - 0.3 * rank + np.where(missing, 0.6, slope * closeness)
    p = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "messages_before": rank,
            "hours_since_failure": hours,
            "inv_decline_category": rng.choice(["insufficient_funds", "do_not_honor"], n),
            "active_hour_closeness": np.where(missing, np.nan, closeness),
            "y": (rng.random(n) < p).astype(int),
        }
    )


def test_a_missing_input_is_no_row_at_zero_in_the_slope():
    rows = _closeness_rows(np.random.default_rng(5), 60000, slope=0.9)
    columns = ["messages_before", "hours_since_failure", "inv_decline_category"]
    effect = fit_count_effect(
        rows,
        rows["y"].to_numpy(),
        "active_hour_closeness",
        [*columns, "active_hour_closeness"],
        "messages_before",
    )
    # counted as 0, the missing rows (which answer more) would flatten it to about 0
    assert abs(effect.estimate - 0.9) < 0.25 and effect.per_unit > 0.6
    assert effect.offsets(np.array([np.nan, 0.0, 1.0])).tolist() == [0.0, 0.0, effect.per_unit]


def test_the_message_model_takes_a_slope_on_the_closeness_never_on_its_rank():
    closeness = ModelParams(count_effects={"message": "active_hour_closeness"})
    assert _count_effect("message", closeness) == ("active_hour_closeness", "messages_before")
    with pytest.raises(ValueError, match="rank"):
        _count_effect("message", ModelParams(count_effects={"message": "messages_before"}))
    with pytest.raises(ValueError, match="no count input"):
        _count_effect("message", ModelParams(count_effects={"message": "template"}))
