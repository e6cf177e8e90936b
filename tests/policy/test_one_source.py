"""Each rule has one source: changing it in the configuration changes every schedule
that obeys it, the learned policy's as well as the baselines' and the fallback's."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from serving.settings import Settings
from training.api.requests import requests_to_frames
from training.config.quiet_hours import QuietHours
from training.config.retry_limits import RetryLimits
from training.core.localtime import to_local
from training.policy.fallback import FallbackDecider

EVENING_OFF = QuietHours(start_hour=17, end_hour=11)  # messages only 11:00-17:00 local


def _requests(n: int = 12) -> list[dict]:
    zones = ["Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
    return [
        {
            "invoice_id": f"in_{i}",
            "customer_id": f"cus_{i}",
            "amount_minor": 4900,
            "currency": "EUR",
            "payment_method": "card",
            "card_brand": "visa",
            "processor": "stripe",
            "decline_code": ["insufficient_funds", "expired_card", "do_not_honor"][i % 3],
            "failed_at": f"2026-11-{10 + i:02d}T{(5 * i) % 24:02d}:17:00Z",
            "customer": {"timezone": zones[i % len(zones)], "sms_opt_in": True},
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def frames():
    requests = _requests()
    return requests_to_frames(requests, event_ids=[r["invoice_id"] for r in requests])


def _local_hours(messages: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    zones = messages["event_id"].map(events.set_index("event_id")["timezone"])
    return to_local(messages["send_at"], zones).dt.hour.to_numpy()


def _learned(small_world, **changes):
    artifact = copy.copy(small_world.artifact)
    if "quiet_hours" in changes:
        artifact.policy = artifact.policy.model_copy(update={"quiet_hours": changes["quiet_hours"]})
    if "retry_limits" in changes:
        artifact.retry_limits = changes["retry_limits"]
    return artifact.decider()


def test_learned_policy_obeys_the_configured_quiet_hours(small_world, frames):
    events, previous = frames
    decisions = _learned(small_world, quiet_hours=EVENING_OFF).decide(events, previous)
    assert len(decisions.messages) > 0
    hours = _local_hours(decisions.messages, events)
    assert ((hours >= 11) & (hours < 17)).all(), hours
    assert any("17:00-11:00" in r for reasons in decisions.events["reasons"] for r in reasons)


def test_fallback_obeys_the_configured_quiet_hours(frames):
    events, previous = frames
    decisions = FallbackDecider(quiet_hours=EVENING_OFF).decide(events, previous)
    assert len(decisions.messages) > 0
    hours = _local_hours(decisions.messages, events)
    assert ((hours >= 11) & (hours < 17)).all(), hours


def test_service_override_sets_both_bounds_from_one_default():
    assert Settings(api_keys=["k"]).quiet_hours_override() is None
    assert Settings(api_keys=["k"], quiet_start_hour=18).quiet_hours_override() == QuietHours(
        start_hour=18, end_hour=QuietHours().end_hour
    )


def test_update_delay_reaches_the_learned_policy(small_world, frames):
    """A longer update delay in the retry limits moves the learned policy's first retry
    of an expired card at least that long after the update request it sends."""
    events, previous = frames
    limits = RetryLimits(update_plausible_after_hours=60.0)
    decisions = _learned(small_world, retry_limits=limits).decide(events, previous)
    expired = events.loc[events["decline_code"] == "expired_card", "event_id"]
    asks = (
        decisions.messages[
            decisions.messages["event_id"].isin(expired)
            & decisions.messages["template"].isin(limits.update_message_templates)
        ]
        .groupby("event_id")["send_at"]
        .min()
    )
    retries = decisions.retries[decisions.retries["event_id"].isin(asks.index)]
    assert len(retries) > 0
    first = retries.groupby("event_id")["at"].min()
    gap = (first - asks.reindex(first.index)).dt.total_seconds() / 3600
    assert (gap >= 60.0).all(), gap
