"""The calendar's steepness measured on the logged attempts
(training/artifact/calendar_contrast.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.artifact.calendar_contrast import (
    NO_CONTRAST,
    applied,
    family_part_slopes,
    family_slopes,
    fit_kind,
    fit_parts,
    fit_slope,
    measure_calendar_contrast,
)
from training.config.params import CalendarContrastParams, Params, TrainParams
from training.declines.table import load_decline_table


def _synthetic(c: float, n: int = 40_000, seed: int = 3):
    rng = np.random.default_rng(seed)
    offset = rng.normal(-2.0, 0.7, n)
    contrast = rng.normal(0.0, 0.4, n)
    label = rng.random(n) < 1 / (1 + np.exp(-(offset + c * contrast)))
    return label.astype(float), offset, contrast


@pytest.mark.parametrize("c", [0.0, 1.0, -0.5])
def test_fit_slope_recovers_the_extra_steepness(c):
    fit, se = fit_slope(*_synthetic(c))
    assert 0 < se < 0.2
    assert abs(fit - c) < 3 * se


def test_only_a_positive_fit_beyond_its_noise_is_applied():
    assert applied(1.1, 0.6) == 1.1
    assert applied(0.5, 0.6) == 0.0
    assert applied(-1.0, 0.3) == 0.0
    assert applied(1.0, float("nan")) == 0.0


def test_a_family_lowers_its_slope_only_beyond_its_noise_never_raises_it_nor_below_zero():
    flat, same, small = _synthetic(0.0, seed=4), _synthetic(2.0, seed=5), _synthetic(0.0, 100)
    label, offset, contrast = (
        np.concatenate(parts) for parts in zip(flat, same, small, strict=True)
    )
    family = np.repeat(["flat", "same", "small"], [40_000, 40_000, 100])
    slopes = family_slopes(label, offset, contrast, family, 2.0, min_rows=200)
    assert set(slopes) == {"flat", "same"}  # too few rows: the pooled slope
    assert slopes["same"] == 2.0  # no shortfall beyond one standard error
    fit, se = fit_slope(*flat)
    assert slopes["flat"] == pytest.approx(fit + se) and 0.0 < slopes["flat"] < 0.5
    steep = family_slopes(*_synthetic(4.0, seed=6), np.full(40_000, "steep"), 2.0, min_rows=200)
    assert steep == {"steep": 2.0}  # steeper than the pool: not raised
    negative = family_slopes(*_synthetic(-2.0, seed=7), np.full(40_000, "x"), 0.5, min_rows=200)
    assert negative == {"x": 0.0}


def test_a_rows_date_and_hour_parts_are_fitted_apart_and_a_part_that_never_varies_is_left_out():
    rng = np.random.default_rng(8)
    offset = rng.normal(-2.0, 0.7, 40_000)
    parts = rng.normal(0.0, 0.4, (40_000, 2))
    label = (rng.random(40_000) < 1 / (1 + np.exp(-(offset + 2.0 * parts[:, 0])))).astype(float)
    fit, se = fit_parts(label, offset, parts)
    assert abs(fit[0] - 2.0) < 3 * se[0] and abs(fit[1]) < 3 * se[1]
    hours_only = np.column_stack([np.zeros(40_000), parts[:, 0]])  # a message's
    fit, se = fit_parts(label, offset, hours_only)
    assert fit[0] == 0.0 and np.isnan(se[0]) and abs(fit[1] - 2.0) < 3 * se[1]
    family = np.repeat(["a", "b"], 20_000)
    slopes = family_part_slopes(label, offset, parts, family, np.array([2.0, 1.0]), 200)
    for c in slopes.values():  # the date part kept, the hour part lowered towards its fit
        assert c[0] == 2.0 and 0.0 <= c[1] < 0.5


def test_the_parts_are_applied_only_when_the_contrast_against_all_moves_is_beyond_its_noise():
    rng = np.random.default_rng(9)
    offset = rng.normal(-2.0, 0.7, 40_000)
    parts = rng.normal(0.0, 0.4, (40_000, 2))
    shares = np.array([2 / 3, 1 / 3])  # e.g. 4 whole-day moves and 2 hour moves
    steep = (rng.random(40_000) < 1 / (1 + np.exp(-(offset + 2.0 * parts[:, 0])))).astype(float)
    kept = fit_kind(steep, offset, parts, shares)
    assert kept.pooled_fit > kept.pooled_se
    np.testing.assert_allclose(kept.slopes, np.maximum(kept.fit, 0.0))
    assert kept.slopes[0] > 1.5 and kept.slopes[1] < 0.3  # the date carries it
    flat = (rng.random(40_000) < 1 / (1 + np.exp(-offset))).astype(float)
    assert fit_kind(flat[:2000], offset[:2000], parts[:2000], shares).slopes.tolist() == [0, 0]
    # without the pooled gate each part's fit is applied, floored at 0: here the pooled
    # fit is below 0 and the hour part's fit above
    ungated = fit_kind(flat[:300], offset[:300], parts[:300], shares, gate=False)
    assert ungated.pooled_fit < 0 < ungated.fit[1]
    assert ungated.slopes.tolist() == [0.0, ungated.fit[1]]
    message = np.column_stack([np.zeros(40_000), parts[:, 0]])  # no date part
    assert fit_kind(steep, offset, message, np.array([0.0, 1.0])).slopes[0] == 0.0


def test_a_familys_retry_part_rises_above_the_pool_only_where_the_pooled_part_is_applied():
    rng = np.random.default_rng(10)
    offset = rng.normal(-2.0, 0.7, 40_000)
    parts = rng.normal(0.0, 0.4, (40_000, 2))
    label = (rng.random(40_000) < 1 / (1 + np.exp(-(offset + 3.0 * parts[:, 0])))).astype(float)
    family = np.full(40_000, "steep")
    pooled = np.array([1.0, 0.0])  # the date part applied, the hour part not
    lowered_only = family_part_slopes(label, offset, parts, family, pooled, 200)
    raised = family_part_slopes(label, offset, parts, family, pooled, 200, raise_=True)
    fit, se = fit_parts(label, offset, parts)
    assert lowered_only["steep"].tolist() == [1.0, 0.0]
    assert raised["steep"][0] == pytest.approx(fit[0] - se[0]) and raised["steep"][0] > 2.0
    assert raised["steep"][1] == 0.0  # the pooled fit left it at 0: never raised
    bounded = family_part_slopes(
        label, offset, parts, family, pooled, 200, raise_=True, raise_at_most=1.5
    )
    assert bounded["steep"].tolist() == [1.5, 0.0]  # at most 1.5 times the pooled part
    loose = family_part_slopes(label, offset, parts, family, pooled, 200, True, 100.0)
    np.testing.assert_array_equal(loose["steep"], raised["steep"])


def test_measured_on_the_validation_periods_logged_attempts(small_world):
    artifact = small_world.artifact
    table = load_decline_table()
    contrast = measure_calendar_contrast(
        small_world.history, artifact.models, artifact.log, Params(), table
    )
    assert contrast.rows > 500 and contrast.shift_days == (3, 7)
    assert contrast.retry_shift_hours == (8.0,)
    assert contrast.as_metadata()["retry_shift_hours"] == (8.0,)
    for slopes in contrast.family_slopes().values():
        assert all(np.min(c) >= 0 for c in slopes.values())
        assert set(slopes) <= {"insufficient_funds", "soft_issuer", "card_update", "hard"} | {
            "dispute",
            "technical",
        }
    assert np.isfinite([contrast.retry_fit, contrast.retry_se]).all()
    assert np.isfinite([contrast.retry_hour_fit, contrast.retry_hour_se]).all()
    assert np.isfinite([contrast.retry_date_fit, contrast.retry_date_se]).all()
    gated = Params().train.calendar_contrast.pooled_gate  # off by default: parts applied
    applied_parts = not gated or contrast.retry_fit > contrast.retry_se
    assert contrast.retry == (max(contrast.retry_date_fit, 0.0) if applied_parts else 0.0)
    assert contrast.retry_hour == (max(contrast.retry_hour_fit, 0.0) if applied_parts else 0.0)
    assert contrast.slopes()["retry"] == (contrast.retry, contrast.retry_hour)
    off = Params(train=TrainParams(calendar_contrast=CalendarContrastParams(shift_days=())))
    assert (
        measure_calendar_contrast(small_world.history, artifact.models, artifact.log, off, table)
        == NO_CONTRAST
    )
