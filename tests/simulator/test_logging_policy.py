"""The team's schedules drawn given the first retry (the truth of the timing OPE), and
the logging policy travelling with the ground truth."""

import numpy as np
import pandas as pd
import pytest

from training.simulator.logging_policy import LoggingPolicy, schedules_given_first_retry
from training.simulator.truth import GroundTruth
from training.simulator.zoo import zoo_world


def _draw(world, policy: LoggingPolicy, offsets: np.ndarray):
    inv = world.history.invoices.head(len(offsets))
    traits = world.truth.invoices.set_index("invoice_id").loc[inv["invoice_id"]]
    return inv, schedules_given_first_retry(
        inv[["invoice_id", "due_at"]],
        traits["timezone"],
        traits["sms_opt_in"],
        offsets,
        policy,
        world.truth.window_hours,
        (21, 8),
        np.random.default_rng(3),
    )


def _offsets(inv: pd.DataFrame, retries: pd.DataFrame) -> pd.Series:
    due = retries["invoice_id"].map(inv.set_index("invoice_id")["due_at"])
    return (retries["t"] - due).dt.total_seconds() / 3600


def test_menu_logging_draws_the_plan_that_starts_at_the_offset(world):
    policy = LoggingPolicy()
    offsets = np.tile([24.0, 72.0, 6.0], 40)
    inv, (retries, messages) = _draw(world, policy, offsets)
    hours = _offsets(inv, retries).groupby(retries["invoice_id"]).agg(list)
    by_start = {plan[0]: list(plan) for plan in policy.retry_plans.values()}
    for invoice, start in zip(inv["invoice_id"], offsets, strict=True):
        assert hours[invoice] == by_start[start]
    assert set(messages["invoice_id"]) == set(inv["invoice_id"])  # messages as the team sends
    with pytest.raises(ValueError, match="starts at 25"):
        _draw(world, policy, np.array([25.0]))


def test_random_hours_logging_moves_only_the_first_retry(world):
    policy = zoo_world("strict_logging").policy
    offsets = np.full(200, 90.0)
    inv, (retries, _) = _draw(world, policy, offsets)
    hours = _offsets(inv, retries).groupby(retries["invoice_id"]).agg(list)
    assert all(h[0] == 90.0 for h in hours)
    later = np.array([h[1] for h in hours])
    # the legacy plan's second retry at 120 h, explored by up to 47 h in about 10% of cases
    assert (later >= 120).all() and (later <= 167).all() and np.mean(later == 120) > 0.8


def test_ground_truth_keeps_the_logging_policy(world, tmp_path):
    world.truth.save(tmp_path)
    loaded = GroundTruth.load(tmp_path)
    assert loaded.logging == world.truth.logging == LoggingPolicy()
    stripped = GroundTruth(world.truth.invoices, world.truth.world, world.truth.window_hours)
    stripped.save(tmp_path / "old")
    assert GroundTruth.load(tmp_path / "old").logging is None
