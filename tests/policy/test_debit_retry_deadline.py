"""ACH and Bacs retries stay inside the scheme window from the first collection (the rules'
``retry_deadline``) in every schedule: the learned search (lone and batch), its
exploration and the fixed schedule; a card request keeps the dunning window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.retry_limits import RetryLimits
from training.core.localtime import DAY_NS, HOUR_NS, to_ns
from training.declines.violations import schedule_violations
from training.features.invoice import events_from_history
from training.policy.baselines import fixed_schedule
from training.policy.retry_search import retry_windows

LIMITS = RetryLimits()
BEFORE_END_NS = 36 * HOUR_NS  # the first collection lies this long before the window's end
# (payment method, processor, decline code, the scheme's window in days), four events each
DEBITS = [
    ("bacs_debit", "bacs", "0", LIMITS.bacs_representment_window_days),
    ("ach_debit", "ach", "R09", LIMITS.ach_reinitiation_window_days),
]


@pytest.fixture(scope="module")
def requests(small_world):
    """Eight debit failures whose first collection was the window less 36 hours before
    (one re-presentation made then), and four card failures with the same attempt."""
    events = events_from_history(small_world.history)
    events = events[events["payment_method"] == "card"].tail(12).reset_index(drop=True)
    events["event_id"] = [f"r{i}" for i in range(len(events))]
    days = np.zeros(len(events), dtype=np.int64)
    for k, (method, processor, code, window) in enumerate(DEBITS):
        rows = np.arange(4 * k, 4 * k + 4)  # labels = positions
        events.loc[rows, ["payment_method", "processor", "decline_code"]] = [
            method,
            processor,
            code,
        ]
        events.loc[rows, ["card_brand", "merchant_advice_code"]] = None
        days[rows] = window
    days[8:] = 40  # cards: no scheme window; an attempt 40 days back
    failed = to_ns(events["failed_at"])
    first = failed - days * DAY_NS + BEFORE_END_NS
    previous = pd.DataFrame(
        {"event_id": events["event_id"], "attempted_at": pd.to_datetime(first, utc=True)}
    )
    deadline = np.where(np.arange(len(events)) < 8, first + days * DAY_NS, np.iinfo(np.int64).max)
    return events, previous, pd.Series(deadline, index=events["event_id"])


def _latest(retries: pd.DataFrame) -> pd.Series:
    return pd.Series(to_ns(retries["at"]), index=retries["event_id"]).groupby(level=0).max()


def _check(retries: pd.DataFrame, deadline: pd.Series, inclusive: bool = False) -> None:
    latest = _latest(retries)
    limit = deadline[latest.index]
    assert ((latest <= limit) if inclusive else (latest < limit)).all(), latest - limit


def test_the_rules_carry_the_deadline(small_world, requests):
    events, previous, deadline = requests
    decisions = small_world.artifact.decider().rules.decide_many(events, previous)
    got = to_ns(decisions["retry_deadline"])
    assert (got[:8] == deadline.to_numpy()[:8]).all()
    assert decisions["retry_deadline"].iloc[8:].isna().all()
    assert decisions["allowed"].iloc[:8].all()  # retries left: the deadline is what binds


def test_the_learned_search_keeps_the_deadline_lone_and_batch(small_world, requests):
    events, previous, deadline = requests
    decider = small_world.artifact.decider()
    rules = decider.rules
    plan = decider.plan(events, previous, explore=False)
    batch, messages = plan.retries.frame(), plan.messages.frame()
    assert batch["event_id"].isin(events["event_id"].iloc[:8]).any()  # debits do get retries
    _check(batch, deadline)
    assert schedule_violations(rules, events, batch, previous, messages).empty
    for i in range(len(events)):
        one, prev = events.iloc[[i]], previous.iloc[[i]]
        lone = decider.plan(one, prev, explore=False).retries.frame()
        _check(lone, deadline)
        mine = batch[batch["event_id"] == one["event_id"].iloc[0]].reset_index(drop=True)
        pd.testing.assert_frame_equal(lone.reset_index(drop=True), mine, check_dtype=False)


def test_a_card_keeps_the_dunning_window(small_world, requests):
    events, previous, _ = requests
    decider = small_world.artifact.decider()
    decisions = decider.rules.decide_many(events, previous).reset_index(drop=True)
    plan = decider.plan(events, previous, explore=False)
    limits = decider.rules.limits
    _, _, end = retry_windows(
        events, decisions, plan.messages, limits.update_requests, limits.min_spacing_hours
    )
    window_end = to_ns(events["failed_at"]) + events["window_days"].to_numpy() * DAY_NS
    assert (end[8:] == window_end[8:]).all()
    assert (end[:8] == np.minimum(window_end[:8], requests[2].to_numpy()[:8])).all()


def test_the_exploration_keeps_the_deadline(small_world, requests):
    events, previous, deadline = requests
    decider = small_world.artifact.decider()
    explorer = decider.__class__(
        decider.scorer, decider.rules,
        decider.config.model_copy(
            update={"exploration_rate": 0.3, "exploration_first_retry_day_rate": 0.7}
        ),
        decider.templates, decider.model_version,
    )  # fmt: skip
    for _ in range(20):
        _check(explorer.plan(events, previous).retries.frame(), deadline)


def test_the_fixed_schedule_keeps_the_deadline(small_world, requests):
    events, previous, deadline = requests
    decider = small_world.artifact.decider()
    config = decider.config
    got = fixed_schedule(
        events, previous, decider.rules, config.baseline, quiet_hours=config.quiet_hours
    )
    _check(got.retries, deadline, inclusive=True)
    assert schedule_violations(decider.rules, events, got.retries, previous).empty
