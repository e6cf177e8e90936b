"""The off-logger part of the weights: its size, its refusal and its interval, on
constructed weights (known counts, rewards and bounds)."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.ope import (
    InverseProbabilityWeighting,
    LoggedFeedback,
    SelfNormalizedIPW,
    kish_size,
)
from training.evaluation.ope_off_logger import (
    OffLoggerPart,
    off_logger_interval,
    wilson_interval,
)
from training.evaluation.ope_support import (
    CannotEstimate,
    PolicyValueEstimate,
    SupportThresholds,
    estimate_with_support,
)

Z = 1.959963984540054


def _smoothed(on: int, off: int, off_reward: float, off_weight: float = 20.0) -> LoggedFeedback:
    """``on`` units the target takes with 0.7 where the logger always did (weight 0.7,
    reward 1 on every other unit starting with the first, so their mean is about 0.5) and
    ``off`` units it takes with 0.15 where the logger drew ``0.15 / off_weight`` (weight
    ``off_weight``), their rewards ``off_reward``."""
    reward = np.concatenate([np.arange(on) % 2 == 0, np.full(off, off_reward)]).astype(float)
    return LoggedFeedback(
        reward=reward,
        match=np.ones(on + off),
        logging_probability=np.concatenate([np.ones(on), np.full(off, 0.15 / off_weight)]),
        target_probability=np.concatenate([np.full(on, 0.7), np.full(off, 0.15)]),
    )


def test_wilson_interval_keeps_its_width_at_zero_successes():
    low, high = wilson_interval(0.0, 10, Z)
    assert low == 0.0
    assert high == pytest.approx(Z**2 / (10 + Z**2))  # 0.2775: the rule of three's cousin
    assert wilson_interval(0.5, 0, Z) == (0.0, 1.0)
    low, high = wilson_interval(0.3, 40, Z)
    assert low == pytest.approx(1 - wilson_interval(0.7, 40, Z)[1])
    assert high == pytest.approx(1 - wilson_interval(0.7, 40, Z)[0])


def test_kish_size_counts_equal_weights_and_discounts_unequal_ones():
    assert kish_size(np.full(12, 3.0)) == pytest.approx(12)
    assert kish_size(np.array([1.0, 1.0, 2.0])) == pytest.approx(16 / 6)
    assert kish_size(np.zeros(4)) == 0.0


def test_off_logger_part_is_the_units_weighted_above_one():
    feedback = _smoothed(on=1000, off=16, off_reward=0.0)
    part = OffLoggerPart.of(feedback)
    assert part.share == pytest.approx(16 * 20 / (1000 * 0.7 + 16 * 20))
    assert part.effective_units == pytest.approx(16)
    assert part.reward == 0.0
    none = OffLoggerPart.of(_smoothed(on=100, off=0, off_reward=0.0))
    assert (none.share, none.effective_units, none.reward) == (0.0, 0.0, 0.5)


def test_without_off_logger_units_ips_gets_the_normal_interval():
    feedback = _smoothed(on=400, off=0, off_reward=0.0)
    terms = feedback.weight * feedback.reward
    half = Z * terms.std(ddof=1) / np.sqrt(terms.size)
    lower, upper = off_logger_interval("ips", feedback)
    assert (lower, upper) == pytest.approx((terms.mean() - half, terms.mean() + half))


@pytest.mark.parametrize("kind", ["ips", "snips"])
def test_off_logger_units_that_all_failed_still_leave_room_above(kind):
    """16 heavy units, every one a failure: the estimate can rise by their share times
    the Wilson upper bound of a proportion seen 0 times in 16, whatever their rewards
    showed; the percentile bootstrap of IPS cannot (its resamples are all 0 there)."""
    feedback = _smoothed(on=1000, off=16, off_reward=0.0)
    part = OffLoggerPart.of(feedback)
    estimator = InverseProbabilityWeighting() if kind == "ips" else SelfNormalizedIPW()
    value = estimator.estimate_policy_value(feedback)
    lower, upper = off_logger_interval(kind, feedback)
    mass = part.share * (1 if kind == "snips" else feedback.weight.mean())
    assert upper - value >= mass * wilson_interval(0.0, 16, Z)[1]
    assert lower < value < upper
    if kind == "ips":
        boot = estimator.estimate_interval(feedback, n_bootstrap=500, random_state=0)
        assert boot["upper"] - value < upper - value


def test_more_off_logger_units_narrow_the_interval():
    widths = []
    for off in (12, 48, 192):
        lower, upper = off_logger_interval("snips", _smoothed(1000, off, 0.5, 320 / off))
        widths.append(upper - lower)
    assert widths[0] > widths[1] > widths[2]


def test_an_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="'ips' or 'snips'"):
        off_logger_interval("dr", _smoothed(10, 2, 1.0))  # type: ignore[arg-type]


def test_a_thin_off_logger_part_is_refused_with_its_reason():
    """30% of the weight on 8 units: refused (every other check passes: 1,008 units,
    Kish size 56, no unit above 10% of the weight, weights averaging 1)."""
    thin = _smoothed(on=1000, off=8, off_reward=0.5, off_weight=37.5)
    assert thin.weight.mean() == pytest.approx(1.0, abs=0.01)
    for estimator in (InverseProbabilityWeighting(), SelfNormalizedIPW()):
        result = estimate_with_support(estimator, thin, "smoothed")
        assert isinstance(result, CannotEstimate)
        assert result.reason.startswith("30% of the weight")
        assert "8.0 effective units < 10" in result.reason
    ample = _smoothed(on=1000, off=24, off_reward=0.5, off_weight=12.5)
    assert isinstance(estimate_with_support(SelfNormalizedIPW(), ample, "s"), PolicyValueEstimate)


def test_a_few_heavy_units_with_a_small_share_are_not_refused():
    """Two units weighted 5 among 2,000 weighted 1: 0.5% of the weight, under the
    tolerance; the interval accounts for them."""
    feedback = LoggedFeedback(
        reward=(np.arange(2002) % 3 == 0).astype(float),
        match=np.ones(2002),
        logging_probability=np.concatenate([np.ones(2000), np.full(2, 0.2)]),
    )
    result = estimate_with_support(SelfNormalizedIPW(), feedback, "near the logger")
    assert isinstance(result, PolicyValueEstimate)
    assert result.diagnostics.off_logger_effective_units == pytest.approx(2)
    strict = SupportThresholds(off_logger_share_tolerance=0.001)
    refused = estimate_with_support(SelfNormalizedIPW(), feedback, "s", thresholds=strict)
    assert isinstance(refused, CannotEstimate)


def test_off_logger_thresholds_are_validated():
    with pytest.raises(ValueError, match="off_logger_share_tolerance"):
        SupportThresholds(off_logger_share_tolerance=1.5)
    with pytest.raises(ValueError, match="min_off_logger_effective_units"):
        SupportThresholds(min_off_logger_effective_units=-1)
