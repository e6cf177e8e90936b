"""Cross-fitted shrinkage of the searched gains (training/artifact/gain_shrinkage.py) and
the probability the decider reports with it."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from training.artifact.gain_shrinkage import (
    NO_SHRINKAGE,
    customer_halves,
    fit_gain_shrinkage,
    gain_threshold,
    shrinkage_factor,
)
from training.config.params import GainShrinkageParams, ModelParams, Params, TrainParams
from training.declines.table import load_decline_table
from training.features.invoice import events_from_history


@pytest.mark.parametrize(
    ("promised", "cross", "factor"),
    [
        (0.10, 0.10, 1.0),  # the other half sees the whole gain: nothing to shrink
        (0.10, 0.05, 0.75),  # half of it: the served models keep three quarters
        (0.10, 0.20, 1.0),  # never inflated
        (0.10, -0.20, 0.0),  # never below the fixed schedule's value
        (0.0, 0.05, 1.0),  # no promised gain
        (float("nan"), 0.05, 1.0),
    ],
)
def test_shrinkage_factor(promised, cross, factor):
    assert shrinkage_factor(promised, cross) == pytest.approx(factor)


def test_customer_halves_are_disjoint_and_keep_each_customers_rows(small_world):
    history = small_world.history
    a, b = customer_halves(history, seed=3)
    customers_a, customers_b = set(a.customers["customer_id"]), set(b.customers["customer_id"])
    assert not customers_a & customers_b
    assert customers_a | customers_b == set(history.customers["customer_id"])
    assert len(a.invoices) + len(b.invoices) == len(history.invoices)
    assert set(a.invoices["customer_id"]) <= customers_a
    assert set(a.attempts["invoice_id"]) <= set(a.invoices["invoice_id"])
    assert set(b.messages["invoice_id"]) <= set(b.invoices["invoice_id"])


def test_the_decision_reports_the_fixed_value_plus_the_shrunk_gain(small_world):
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    plain = small_world.artifact.decider(compiled=False).decide(events, None).events
    artifact = copy.copy(small_world.artifact)
    artifact.metadata = {**artifact.metadata, "gain_shrinkage": {"factor": 0.25}}
    shrunk = artifact.decider(compiled=False).decide(events, None).events
    fixed = plain["baseline_recovery_probability"].to_numpy()
    searched = plain["expected_recovery_probability"].to_numpy()
    np.testing.assert_allclose(
        shrunk["expected_recovery_probability"].to_numpy(), fixed + 0.25 * (searched - fixed)
    )
    np.testing.assert_allclose(shrunk["baseline_recovery_probability"].to_numpy(), fixed)


def test_without_a_fixed_value_the_models_own_is_reported(small_world):
    decider = small_world.artifact.decider(compiled=False)
    decider.gain_shrinkage = 0.5
    reported = decider.reported_recovery(np.array([0.6, 0.6]), np.array([0.4, np.nan]))
    np.testing.assert_allclose(reported, [0.5, 0.6])


def test_only_the_part_of_a_gain_above_the_threshold_is_shrunk(small_world):
    decider = small_world.artifact.decider(compiled=False)
    decider.gain_shrinkage, decider.gain_threshold = 0.5, 0.1
    fixed = np.array([0.4, 0.4, 0.4, 0.4])
    reported = decider.reported_recovery(np.array([0.3, 0.45, 0.5, 0.7]), fixed)
    # a loss and gains up to the threshold are kept; above it, half of the excess
    np.testing.assert_allclose(reported, [0.3, 0.45, 0.5, 0.6])
    searched = np.linspace(0.2, 0.9, 50)
    assert np.all(np.diff(decider.reported_recovery(searched, np.full(50, 0.4))) > 0)


def test_the_threshold_is_a_quantile_of_the_promised_gains_never_below_zero():
    promised = np.array([-0.05, 0.02, 0.1, 0.2, 0.4])
    assert gain_threshold(promised, 0.5) == pytest.approx(0.1)
    assert gain_threshold(promised, 0.0) == 0.0
    assert gain_threshold(np.array([-0.2, -0.1, 0.3]), 0.5) == 0.0


def test_an_artifact_carries_the_threshold_to_its_decider(small_world):
    artifact = copy.copy(small_world.artifact)
    artifact.metadata = {
        **artifact.metadata,
        "gain_shrinkage": {"factor": 0.8, "threshold": 0.12},
    }
    decider = artifact.decider(compiled=False)
    assert (decider.gain_shrinkage, decider.gain_threshold) == (0.8, 0.12)


def test_no_events_means_no_shrinkage(small_world):
    params = Params(train=TrainParams(gain_shrinkage=GainShrinkageParams(events=0)))
    fitted = fit_gain_shrinkage(
        small_world.history, small_world.artifact.log, [], params, load_decline_table()
    )
    assert fitted == NO_SHRINKAGE


@pytest.mark.slow
def test_the_factor_is_fitted_from_the_halves_search(small_world):
    params = Params(
        train=TrainParams(
            model=ModelParams(
                num_boost_round=80, learning_rate=0.1, early_stopping_rounds=15, calibration_folds=0
            ),
            gain_shrinkage=GainShrinkageParams(events=150),
        )
    )
    fitted = fit_gain_shrinkage(
        small_world.history,
        small_world.artifact.log,
        small_world.artifact.templates,
        params,
        load_decline_table(),
    )
    assert fitted.events == 150
    assert 0.0 <= fitted.factor <= 1.0
    assert fitted.promised_gain > 0
    assert fitted.factor == pytest.approx(shrinkage_factor(fitted.promised_gain, fitted.cross_gain))
    assert fitted.threshold >= 0.0
