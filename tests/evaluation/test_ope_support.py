"""Bucketed, smoothed OPE with a typed refusal on thin overlap (synthetic, known value)."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedIPW,
)
from training.evaluation.ope_buckets import (
    bucket_feedback,
    smoothed_target_probability,
    time_bucket,
)
from training.evaluation.ope_support import (
    CannotEstimate,
    PolicyValueEstimate,
    SupportThresholds,
    estimate_with_support,
)

N_BUCKETS = 8
SUCCESS = np.linspace(0.2, 0.8, N_BUCKETS)
ESTIMAND = "recovery rate of the smoothed bucket policy"


def _world(seed: int, n: int, fixed_share: float, smoothing: float = 0.3):
    """Logging: ``fixed_share`` to bucket 2, else uniform; target: a bucket per unit."""
    rng = np.random.default_rng(seed)
    fixed = rng.random(n) < fixed_share
    logged = np.where(fixed, 2, rng.integers(0, N_BUCKETS, n))
    mu = (1 - fixed_share) / N_BUCKETS + fixed_share * (logged == 2)
    reward = (rng.random(n) < SUCCESS[logged]).astype(float)
    target = rng.integers(1, N_BUCKETS - 1, n)
    pi_all = np.stack(
        [smoothed_target_probability(np.full(n, b), target, smoothing) for b in range(N_BUCKETS)],
        axis=1,
    )
    truth = float((pi_all @ SUCCESS).mean())
    model = np.clip(SUCCESS + 0.05, 0, 1)  # a slightly biased reward model
    feedback = bucket_feedback(
        reward,
        logged,
        target,
        mu,
        smoothing,
        target_value=pi_all @ model,
        logged_value=model[logged],
    )
    return feedback, truth


def test_time_bucket_maps_day_and_part_of_day():
    assert time_bucket([0, 5.9, 6, 23.9, 24, 30], parts_per_day=4).tolist() == [0, 0, 1, 3, 4, 5]
    with pytest.raises(ValueError, match="unit 1"):
        time_bucket([1.0, -2.0])


def test_smoothing_is_a_distribution_over_buckets():
    target = np.array([0, 3, 3])
    rows = np.stack(
        [smoothed_target_probability(np.full(3, b), target, 0.3) for b in range(N_BUCKETS)]
    )
    np.testing.assert_allclose(rows.sum(axis=0), 1.0)
    assert rows[3, 1] == pytest.approx(0.7) and rows[2, 1] == pytest.approx(0.15)
    assert rows[1, 0] == pytest.approx(0.3)


def test_missing_propensity_means_the_logger_did_not_randomize():
    feedback = bucket_feedback([1.0, 0.0], [1, 1], [1, 4], [np.nan, 0.5], smoothing=0.2)
    np.testing.assert_allclose(feedback.weight, [0.8, 0.0])


@pytest.mark.parametrize(
    "estimator", [InverseProbabilityWeighting(), SelfNormalizedIPW(), DoublyRobust()]
)
def test_intervals_cover_the_known_value(estimator):
    """Seeded: the 95% interval covers the smoothed policy's true value on >= 85% of worlds."""
    covered = []
    for seed in range(30):
        feedback, truth = _world(seed, n=1500, fixed_share=0.5)
        result = estimate_with_support(
            estimator, feedback, ESTIMAND, n_bootstrap=300, random_state=seed
        )
        assert isinstance(result, PolicyValueEstimate)
        assert result.estimand == ESTIMAND
        covered.append(result.covers(truth))
    assert np.mean(covered) >= 0.85


def test_mostly_deterministic_logging_still_supports_an_estimate():
    feedback, truth = _world(1, n=3000, fixed_share=0.9)
    result = estimate_with_support(DoublyRobust(), feedback, ESTIMAND, random_state=1)
    assert isinstance(result, PolicyValueEstimate)
    assert abs(result.value - truth) < 0.05


def test_thin_overlap_yields_cannot_estimate():
    """A deterministic logger (no propensities) never picked the target's buckets."""
    n = 500
    feedback = bucket_feedback(
        reward=np.ones(n),
        logged_bucket=np.zeros(n, dtype=int),
        target_bucket=np.full(n, 5),
        logging_bucket_probability=np.full(n, np.nan),
        target_value=np.full(n, 0.5),
        logged_value=np.full(n, 0.5),
    )
    for estimator in (InverseProbabilityWeighting(), SelfNormalizedIPW(), DoublyRobust()):
        result = estimate_with_support(estimator, feedback, ESTIMAND)
        assert isinstance(result, CannotEstimate)
        assert "effective sample size 0.0" in result.reason
        assert result.diagnostics.n_matched == 0
    assert isinstance(
        estimate_with_support(DirectMethod(), feedback, ESTIMAND), PolicyValueEstimate
    )


def test_one_heavy_unit_yields_cannot_estimate():
    feedback, _ = _world(2, n=200, fixed_share=0.5)
    result = estimate_with_support(
        InverseProbabilityWeighting(),
        feedback,
        ESTIMAND,
        thresholds=SupportThresholds(min_effective_sample_size=1, max_weight_share=0.001),
    )
    assert isinstance(result, CannotEstimate)
    assert "total weight" in result.reason


def test_weights_that_do_not_average_one_yield_cannot_estimate():
    """The logger drew each bucket with 1/8, but the log claims 1/2 (or the target's
    buckets were out of its reach): the weights average 1/4 and the estimate is refused,
    while the same logs with the true probabilities are accepted."""
    rng = np.random.default_rng(5)
    n = 4000
    logged = rng.integers(0, N_BUCKETS, n)
    reward = (rng.random(n) < SUCCESS[logged]).astype(float)
    target = rng.integers(0, N_BUCKETS, n)
    true_mu = np.full(n, 1 / N_BUCKETS)
    right = bucket_feedback(reward, logged, target, true_mu, smoothing=0.3)
    wrong = bucket_feedback(reward, logged, target, np.full(n, 0.5), smoothing=0.3)
    accepted = estimate_with_support(InverseProbabilityWeighting(), right, ESTIMAND, random_state=5)
    assert isinstance(accepted, PolicyValueEstimate)
    assert abs(accepted.diagnostics.mean_weight - 1) < 0.1
    for estimator in (InverseProbabilityWeighting(), SelfNormalizedIPW(), DoublyRobust()):
        result = estimate_with_support(estimator, wrong, ESTIMAND, random_state=5)
        assert isinstance(result, CannotEstimate)
        assert "the weights average 0.2" in result.reason
        assert "effective sample size" not in result.reason


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="max_weight_share"):
        SupportThresholds(max_weight_share=0)
    with pytest.raises(ValueError, match="mean_weight_tolerance"):
        SupportThresholds(mean_weight_tolerance=-0.1)
