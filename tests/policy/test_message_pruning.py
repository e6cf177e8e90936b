"""Message count by marginal value: the pruning step on schedules with known values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.policy.message_pruning import (
    protected_messages,
    prune_messages,
    schedule_messages,
)

T0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")


def _events(n: int) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(n)]})


def _messages(per_event: dict[str, list[str]]) -> pd.DataFrame:
    rows = [
        {
            "event_id": event,
            "send_at": T0 + pd.Timedelta(hours=24 * k),
            "template": template,
            "channel": "email",
        }
        for event, templates in sorted(per_event.items())
        for k, template in enumerate(templates)
    ]
    return pd.DataFrame(rows)


NO_RETRIES = pd.DataFrame({"event_id": pd.Series(dtype=object), "at": pd.Series(dtype=object)})


def _additive(events: pd.DataFrame, worth: dict[str, float], base: float = 0.3):
    """Schedule value: base + the worth of each message's template, per event; counts calls."""
    calls = []

    def values(schedules):
        calls.append(len(schedules))
        out = []
        for schedule in schedules:  # retries, messages (and the rows kept of them)
            messages = schedule_messages(schedule)
            add = messages.groupby("event_id")["template"].apply(lambda t: sum(worth[x] for x in t))
            out.append(base + add.reindex(events["event_id"]).astype(float).fillna(0).to_numpy())
        return out

    return values, calls


def test_messages_that_lower_the_schedule_are_dropped_and_useful_ones_kept():
    events = _events(3)
    messages = _messages(
        {
            "e0": ["link", "nag", "link"],  # nag lowers recovery: dropped
            "e1": ["nag", "nag"],  # every message hurts: zero messages
            "e2": ["tiny", "link"],  # tiny adds less than the minimum gain
        }
    )
    values, calls = _additive(events, {"link": 0.05, "nag": -0.02, "tiny": 0.001})
    kept = prune_messages(
        events, NO_RETRIES, messages, np.zeros(len(messages), bool), values, min_gain=0.002
    ).frame()
    assert kept.groupby("event_id")["template"].apply(list).to_dict() == {
        "e0": ["link", "link"],
        "e2": ["link"],
    }
    assert len(calls) == 3  # rounds: drop a nag or the tiny one, drop the next, nothing left


def test_nothing_is_dropped_when_every_message_adds_enough():
    events = _events(2)
    messages = _messages({"e0": ["link", "link"], "e1": ["link"]})
    values, calls = _additive(events, {"link": 0.05})
    kept = prune_messages(
        events, NO_RETRIES, messages, np.zeros(len(messages), bool), values, min_gain=0.002
    ).frame()
    pd.testing.assert_frame_equal(kept[messages.columns], messages)
    assert calls == [3]  # one round: the full schedule and one without each rank


def test_the_update_request_that_opens_the_retries_is_never_dropped():
    update = UpdateRequests(templates=("update_payment_method",), plausible_after_hours=24.0)
    events = _events(2)
    messages = _messages(
        {"e0": ["update_payment_method", "update_payment_method"], "e1": ["update_payment_method"]}
    )
    decisions = pd.DataFrame({"needs_update_first": [True, False]})
    protected = protected_messages(events, decisions, messages, update)
    assert protected.tolist() == [True, False, False]
    values, _ = _additive(events, {"update_payment_method": -0.01})
    kept = prune_messages(events, NO_RETRIES, messages, protected, values, min_gain=0.002).frame()
    assert kept["event_id"].tolist() == ["e0"]
    assert kept["send_at"].tolist() == [T0]
