"""Training rows weighted by the logged propensities: explored rows count more."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams, SimulateParams
from training.config.retry_limits import RetryLimits
from training.declines.table import load_decline_table
from training.models.calibrated import Calibrator, _dense_predict, encode, fit_calibrated
from training.models.datasets import build_training_data
from training.models.propensity_weights import propensity_weights
from training.simulator.logging_policy import LoggingPolicy
from training.simulator.run import simulate_history


def test_explored_rows_weigh_their_clipped_inverse_propensity_relative_to_the_plans():
    propensity = np.array([0.9, 0.9, 0.02, 0.25, np.nan])
    weight = propensity_weights(propensity, clip=10.0)
    assert weight is not None
    assert weight.mean() == pytest.approx(1.0)
    # 1/0.9, 1/0.9, clipped 10, 4, and 1 for the row without a propensity
    raw = np.array([1 / 0.9, 1 / 0.9, 10.0, 4.0, 1.0])
    np.testing.assert_allclose(weight, raw / raw.mean())
    assert weight[2] / weight[0] == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("propensity", "clip"),
    [
        (np.array([0.9, 0.02]), 1.0),  # clip 1: the weighting is off
        (np.full(3, np.nan), 10.0),  # an export without propensities
        (None, 10.0),  # rows that are no logged decision
        (np.zeros(0), 10.0),
    ],
)
def test_no_weights_when_nothing_says_a_row_was_explored(propensity, clip):
    assert propensity_weights(propensity, clip) is None


def test_equal_propensities_give_equal_weights():
    weight = propensity_weights(np.full(4, 0.05), clip=10.0)
    assert weight is not None
    np.testing.assert_allclose(weight, 1.0)


@pytest.fixture(scope="module")
def explored_history():
    """A small history of a mostly deterministic team: the legacy plan, 30% of its
    retries and messages delayed by 0-47 random hours, a propensity per decision."""
    policy = LoggingPolicy(explore_rate=0.3, explore_mode="random_hours")
    return simulate_history(SimulateParams(invoices=600, seed=3, months=4), policy=policy).history


def _rows(history):
    return build_training_data(history, load_decline_table(), 30, RetryLimits().update_requests)


def test_training_rows_carry_the_logged_propensity_and_explored_rows_weigh_more(
    explored_history,
):
    data = _rows(explored_history)
    retries = explored_history.attempts
    for dataset in (data.retry, data.message):
        assert dataset.propensity is not None
        assert len(dataset.propensity) == len(dataset.label)
        assert np.isfinite(dataset.propensity).all()
    # the retry rows' propensities are the logged retries' own (the original charge has none)
    merchant = retries[(retries["initiated_by"] == "merchant") & retries["propensity"].notna()]
    assert sorted(data.retry.propensity) == pytest.approx(sorted(merchant["propensity"]))
    weight = propensity_weights(data.retry.propensity, clip=20.0)
    assert weight is not None
    explored = data.retry.propensity < 0.5
    assert 0 < explored.sum() < len(explored)
    # explored: 1 / (0.3 / 48) clipped to 20; the plan's times: 1 / (0.7 + 0.3 / 48)
    assert weight[explored].min() / weight[~explored].max() == pytest.approx(20 * (0.7 + 0.3 / 48))
    assert data.self_cure.propensity is None


def test_an_export_without_propensities_trains_unweighted(explored_history):
    history = replace(
        explored_history,
        attempts=explored_history.attempts.assign(propensity=np.nan),
        messages=explored_history.messages.drop(columns="propensity"),
    )
    data = _rows(history)
    assert np.isnan(data.retry.propensity).all() and np.isnan(data.message.propensity).all()
    assert propensity_weights(data.retry.propensity, clip=20.0) is None


def _synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n)})
    y = (rng.uniform(0, 1, n) < 0.1 + 0.4 * x["a"] * x["b"]).astype(int).to_numpy()
    return x, y


def test_weights_move_the_trees_and_leave_the_calibration_map_unweighted():
    train, valid = _synthetic(3000, 1), _synthetic(1000, 2)
    params = ModelParams(num_boost_round=40, calibration_folds=0, calibration_group_strength=0)
    weight = np.where(train[0]["a"].to_numpy() > 0.8, 8.0, 1.0)
    plain = fit_calibrated("retry", train, valid, ["a", "b"], [], params)
    ones = fit_calibrated("retry", train, valid, ["a", "b"], [], params, row_weight=np.ones(3000))
    weighted = fit_calibrated("retry", train, valid, ["a", "b"], [], params, row_weight=weight)
    rows = encode(valid[0], ["a", "b"], {})
    np.testing.assert_array_equal(plain.predict(valid[0]), ones.predict(valid[0]))
    assert not np.allclose(plain.predict(valid[0]), weighted.predict(valid[0]))
    # the map is the one an unweighted fit on the validation rows' scores gives
    scores = _dense_predict(weighted.booster, rows, num_iteration=weighted.best_iteration)
    expected = Calibrator.fit("sigmoid", scores, valid[1])
    np.testing.assert_allclose(weighted.predict(valid[0]), expected.predict(scores))
