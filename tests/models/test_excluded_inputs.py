"""``train.model.excluded_inputs``: inputs left out of every model that has them (an
input that grows with calendar time, such as ``cust_observed_days``, lies beyond every
training value on the held-out period; docs/evaluation.md, h78)."""

from __future__ import annotations

import pytest

from tests.conftest import FAST_MODEL, SmallWorld
from training.config.params import ModelParams, TrainParams
from training.config.retry_limits import RetryLimits
from training.declines.table import load_decline_table
from training.models.datasets import build_training_data
from training.models.fit import MODEL_FEATURES, check_monotone_inputs, fit_models, model_inputs


def test_an_excluded_input_is_left_out_of_each_model_that_has_it():
    params = ModelParams(excluded_inputs=("cust_observed_days", "hour_click_rate"))
    for name in ("retry", "message", "self_cure"):
        kept = model_inputs(name, params)
        assert "cust_observed_days" not in kept and "hour_click_rate" not in kept
        expected = [c for c in MODEL_FEATURES[name] if c not in params.excluded_inputs]
        assert kept == expected
    assert model_inputs("retry", ModelParams()) == list(MODEL_FEATURES["retry"])


def test_an_excluded_name_no_model_has_is_refused():
    check_monotone_inputs(ModelParams(excluded_inputs=("cust_observed_days",)))
    with pytest.raises(ValueError, match="cust_observed_dais"):
        check_monotone_inputs(ModelParams(excluded_inputs=("cust_observed_dais",)))


def test_the_fitted_model_has_no_excluded_input(small_world: SmallWorld):
    history = small_world.history
    params = TrainParams(
        model=FAST_MODEL.model_copy(update={"excluded_inputs": ("cust_observed_days",)})
    )
    data = build_training_data(
        history, load_decline_table(), params.window_days, RetryLimits().update_requests
    )
    fitted, _, _ = fit_models(data, small_world.split, params, ("retry",))
    assert "cust_observed_days" not in fitted["retry"].features
    assert len(fitted["retry"].features) == len(MODEL_FEATURES["retry"]) - 1
