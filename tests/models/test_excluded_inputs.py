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

DAYS, SHARE = "cust_observed_days", "cust_observed_share"


def test_an_excluded_input_is_left_out_of_each_model_that_has_it():
    params = ModelParams(
        excluded_inputs=("cust_observed_share", "hour_click_rate"), observed_share_input=True
    )
    for name in ("retry", "message", "self_cure"):
        kept = model_inputs(name, params)
        assert SHARE not in kept and "hour_click_rate" not in kept
        left_out = {*params.excluded_inputs, DAYS}
        assert kept == [c for c in MODEL_FEATURES[name] if c not in left_out]
    assert model_inputs("retry", ModelParams()) == [c for c in MODEL_FEATURES["retry"] if c != DAYS]


def test_the_observed_span_is_read_as_days_or_as_a_share_of_the_tenure():
    for name in ("retry", "message", "self_cure"):
        days = model_inputs(name, ModelParams(observed_share_input=False))
        share = model_inputs(name, ModelParams(observed_share_input=True))
        assert DAYS in days and SHARE not in days
        assert SHARE in share and DAYS not in share
        assert [c for c in days if c != DAYS] == [c for c in share if c != SHARE]


def test_an_excluded_name_no_model_has_is_refused():
    check_monotone_inputs(ModelParams(excluded_inputs=("cust_observed_days",)))
    with pytest.raises(ValueError, match="cust_observed_dais"):
        check_monotone_inputs(ModelParams(excluded_inputs=("cust_observed_dais",)))


def test_the_fitted_model_has_no_excluded_input_and_one_form_of_the_observed_span(
    small_world: SmallWorld,
):
    history = small_world.history
    params = TrainParams(
        model=FAST_MODEL.model_copy(update={"excluded_inputs": ("cust_failures_total",)})
    )
    data = build_training_data(
        history, load_decline_table(), params.window_days, RetryLimits().update_requests
    )
    assert data.retry.features[SHARE].between(0, 1).all()
    for share in (True, False):
        model = params.model.model_copy(update={"observed_share_input": share})
        fitted, _, _ = fit_models(data, small_world.split, TrainParams(model=model), ("retry",))
        inputs = fitted["retry"].features
        assert "cust_failures_total" not in inputs
        assert (SHARE in inputs, DAYS in inputs) == (share, not share)
        assert len(inputs) == len(MODEL_FEATURES["retry"]) - 2
