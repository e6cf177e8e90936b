"""The first retry's day as an off-policy estimand (``ope_first_retry_day``): on a
synthetic log drawn like the product's exploration (a searched time, shifts of hours,
other whole days, each with its exact probability), the weights average 1 and IPS is
unbiased for a target that picks other days, censored units included; reading a day's
propensity as 1 or ignoring the target's day would miss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from training.evaluation.ope import InverseProbabilityWeighting, LoggedFeedback, SelfNormalizedIPW
from training.evaluation.ope_first_retry import FirstRetryLog
from training.evaluation.ope_first_retry_day import day_feedback, day_target
from training.evaluation.ope_off_logger import off_logger_interval

#: The logger's first-retry atoms, hours from the searched time: the searched time,
#: four shifts, four other days (the day before only when the window allows it).
OFFSETS = np.array([0, -12, -6, 6, 12, -24, 24, 48, 72], dtype=float)
DAYS = np.array([0, 0, 0, 0, 0, -1, 1, 2, 3])
SHIFTED = np.array([False, True, True, True, True, False, False, False, False])
RATE, DAY_RATE, MEAN_PAY_HOURS, WINDOW = 0.05, 0.2, 80.0, 336.0


def _success(days: np.ndarray) -> np.ndarray:
    """P(the first retry recovers the invoice): strongly by day, so that the day matters."""
    return 0.25 + 0.15 * days


def _synthetic(n: int, seed: int, day_rate: float = DAY_RATE) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    searched = rng.uniform(20, 60, n)
    low, high = np.where(searched >= 30, -1, 0), np.full(n, 3)
    allowed = (DAYS[None, :] >= low[:, None]) & (DAYS[None, :] <= high[:, None])
    day_atoms = (DAYS != 0)[None, :] & allowed
    mass = np.zeros((n, len(OFFSETS)))
    mass[:, SHIFTED] = RATE / 5
    mass[:, 0] = 1 - RATE - day_rate + RATE / 5
    mass[day_atoms] = (day_rate / day_atoms.sum(axis=1))[np.nonzero(day_atoms)[0]]
    action = (rng.uniform(size=(n, 1)) > mass.cumsum(axis=1)).sum(axis=1)
    rows = np.arange(n)
    at = searched + OFFSETS[action]
    paid = rng.exponential(MEAN_PAY_HOURS, n)  # the customer pays before any retry
    censored = paid < at
    success = rng.uniform(size=n) < np.where(SHIFTED[action], 0.4, _success(DAYS[action]))
    recovered = censored | success
    times = searched[:, None] + OFFSETS[None, :]
    log = FirstRetryLog(
        invoice_id=rows.astype(str),
        first_retry_hours=np.where(censored, np.nan, np.round(at)),
        propensity=np.where(censored, np.nan, mass[rows, action]),
        end_hours=np.where(censored, paid, np.where(success, at, WINDOW)),
        recovered=recovered,
    )
    later = (mass * (times > log.end_hours[:, None])).sum(axis=1)  # mu(T > end)
    return {"log": log, "searched": searched, "low": low, "high": high, "later": later}


def _truth(searched: np.ndarray, days: np.ndarray, probability: np.ndarray) -> float:
    at = searched[:, None] + 24.0 * days
    paid_before = 1 - np.exp(-at / MEAN_PAY_HOURS)
    value = paid_before + (1 - paid_before) * _success(days)
    return float((probability * value).sum(axis=1).mean())


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Any]:
    data = _synthetic(200_000, 11)
    n = len(data["searched"])
    wanted = np.where(np.arange(n) % 2 == 0, 0, 1)  # half the target picks the next day
    data["target"] = day_target(wanted, data["low"], data["high"], 0.3)
    return data


def test_the_target_spreads_its_smoothing_over_the_days_the_window_allows():
    target = day_target(
        np.array([0, 0, 1, 3]), np.array([-1, 0, 0, 0]), np.array([3, 3, 3, 3]), 0.3
    )
    np.testing.assert_array_equal(target.days[2], [0, 1, 2])
    np.testing.assert_allclose(target.probability.sum(axis=1), 1.0)
    np.testing.assert_allclose(target.probability[0], [0.15, 0.7, 0.15])
    np.testing.assert_allclose(target.probability[1], [0.0, 0.7, 0.3])  # no day before
    np.testing.assert_allclose(target.probability[3], [0.3, 0.7, 0.0])  # no day after
    greedy = day_target(np.array([2]), np.array([0]), np.array([3]), 0.0)
    np.testing.assert_allclose(greedy.probability, [[0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="smoothing"):
        day_target(np.array([0]), np.array([0]), np.array([0]), 1.0)


def test_weights_average_one_and_ips_is_unbiased(synthetic):
    fb = day_feedback(
        synthetic["log"], synthetic["searched"], synthetic["target"], synthetic["later"]
    )
    w, n = fb.feedback.weight, fb.feedback.n_units
    assert fb.censored > 0.2 * n and fb.off_grid > 0.02 * n and fb.unsupported_units == 0
    assert w.mean() == pytest.approx(1.0, abs=4 * w.std() / np.sqrt(n))
    truth = _truth(synthetic["searched"], synthetic["target"].days, synthetic["target"].probability)
    terms = w * fb.feedback.reward
    estimate = InverseProbabilityWeighting().estimate_policy_value(fb.feedback)
    assert estimate == pytest.approx(truth, abs=4 * terms.std() / np.sqrt(n))


def test_a_days_propensity_read_as_one_or_the_targets_day_ignored_would_miss(synthetic):
    """The two shortcuts the estimator must not take, on the same log: both land far
    outside the noise of the right weights."""
    log, target = synthetic["log"], synthetic["target"]
    fb = day_feedback(log, synthetic["searched"], target, synthetic["later"]).feedback
    truth = _truth(synthetic["searched"], target.days, target.probability)
    noise = 4 * (fb.weight * fb.reward).std() / np.sqrt(fb.n_units)
    ips = InverseProbabilityWeighting()
    as_one = LoggedFeedback(fb.reward, fb.match, np.ones(fb.n_units), fb.target_probability)
    assert abs(ips.estimate_policy_value(as_one) - truth) > 5 * noise
    # the target's day ignored: every day-grid first retry counts as the target's
    on_grid = ~np.isnan(log.first_retry_hours)
    on_grid &= (log.first_retry_hours - np.round(synthetic["searched"])) % 24 == 0
    ignored = LoggedFeedback(
        fb.reward,
        (fb.match > 0) | on_grid,
        fb.logging_probability,
        np.where(on_grid, 1.0, fb.target_probability),
    )
    assert abs(ignored.weight.mean() - 1) > 0.5
    assert abs(ips.estimate_policy_value(ignored) - truth) > 5 * noise


def test_a_censored_unit_the_logger_could_not_have_left_unretried_is_unsupported():
    log = FirstRetryLog(
        invoice_id=np.array(["a", "b"]),
        first_retry_hours=np.array([np.nan, np.nan]),
        propensity=np.array([np.nan, np.nan]),
        end_hours=np.array([10.0, 10.0]),
        recovered=np.array([True, True]),
    )
    target = day_target(np.array([0, 0]), np.array([0, 0]), np.array([3, 3]))
    fb = day_feedback(log, np.array([30.0, 30.0]), target, np.array([0.0, 0.5]))
    assert fb.unsupported_units == 1
    np.testing.assert_allclose(fb.feedback.weight, [0.0, 2.0])


def test_the_served_day_at_a_five_percent_day_rate_is_unbiased_and_covered():
    """The served day (the searched day, no smoothing) on 200 small logs whose day arm has
    0.05: IPS and SNIPS centre on the truth (mean error within 3 standard errors) and
    their intervals hold it at about the nominal rate. Guards the censored units' weights
    and the logged ones: with every propensity read as 1, IPS would fall several points
    under the truth."""
    errors: dict[str, list[float]] = {"ips": [], "snips": [], "as one": []}
    covered = {"ips": 0, "snips": 0}
    truth = None
    draws = 200
    for seed in range(draws):
        data = _synthetic(1_000, 1_000 + seed, day_rate=0.05)
        n = len(data["searched"])
        target = day_target(np.zeros(n, dtype=np.int64), data["low"], data["high"], 0.0)
        truth = _truth(data["searched"], target.days, target.probability)
        fb = day_feedback(data["log"], data["searched"], target, data["later"]).feedback
        for name, estimator in (
            ("ips", InverseProbabilityWeighting()),
            ("snips", SelfNormalizedIPW()),
        ):
            value = estimator.estimate_policy_value(fb)
            errors[name].append(value - truth)
            low, high = off_logger_interval(name, fb, 0.05)
            covered[name] += int(low <= truth <= high)
        as_one = fb.target_probability * fb.match  # every propensity read as 1
        errors["as one"].append(float((as_one * fb.reward).mean()) - truth)
    for name in ("ips", "snips"):
        e = np.array(errors[name])
        assert abs(e.mean()) < 3 * e.std(ddof=1) / np.sqrt(draws), (name, e.mean())
        assert covered[name] >= 0.9 * draws, (name, covered[name])
    shortcut = np.array(errors["as one"])
    assert shortcut.mean() < -6 * shortcut.std(ddof=1) / np.sqrt(draws)
