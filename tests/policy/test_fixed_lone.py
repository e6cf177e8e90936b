"""A lone request's fixed schedule on Python scalars (``training.policy.fixed_lone``)
equals the general array path's, array by array, on random events and decisions: zones
with DST changes (a 30-minute one among them), failures around the changes, quiet hours
wrapping midnight or not, not-before times, scheme deadlines, update requests, caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.config.retry_limits import RetryLimits
from training.core.localtime import HOUR_NS
from training.declines.rules import RetryRules
from training.policy import baselines
from training.policy.baselines import fixed_schedule_columns

ZONES = [
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/St_Johns",
    "Pacific/Chatham",
    "UTC",
]
CENTERS = pd.to_datetime(
    ["2026-03-08T07:00Z", "2026-03-29T01:00Z", "2026-10-04T15:30Z", "2026-11-01T06:00Z"]
).asi8
CONFIGS = [
    BaselineConfig(),
    BaselineConfig(fixed_message_channel="sms", fixed_retry_days=(0.0, 0.5, 0.5, 1.0, 2.25)),
    BaselineConfig(
        fixed_message_template="update_payment_method",
        fixed_message_days=(2.0, 0.0, 0.0, 1.5),
        fixed_retry_days=(0.25, 1.0, 4.0),
    ),
    BaselineConfig(fixed_message_days=(), fixed_retry_days=(1.0, 1.01, 3.0)),
    BaselineConfig(fixed_retry_days=()),
]
QUIETS = [QuietHours(), QuietHours(start_hour=8, end_hour=20), QuietHours(start_hour=3, end_hour=3)]


def _utc(ns: int | None) -> pd.DatetimeIndex:
    value = np.array([np.iinfo(np.int64).min if ns is None else ns]).view("M8[ns]")
    return pd.DatetimeIndex(value).tz_localize("UTC")


def _event(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One random event and a random rules decision for it."""
    failed = int(CENTERS[rng.integers(len(CENTERS))]) + int(rng.integers(-72, 72)) * HOUR_NS
    failed += int(rng.integers(0, 60)) * 60_000_000_000
    events = pd.DataFrame(
        {
            "event_id": [f"e{rng.integers(1000)}"],
            "timezone": [ZONES[rng.integers(len(ZONES))]],
            "failed_at": _utc(failed),
            "window_days": [int(rng.integers(0, 16))],
            "max_retries": [int(rng.integers(0, 5))],
            "max_messages": [int(rng.integers(0, 4))],
            "allow_email": [bool(rng.random() < 0.8)],
            "allow_sms": [bool(rng.random() < 0.5)],
            "sms_opt_in": [bool(rng.random() < 0.5)],
            "payment_method": ["card"],
        }
    )
    not_before = None if rng.random() < 0.5 else failed + int(rng.integers(-24, 120)) * HOUR_NS
    deadline = None if rng.random() < 0.5 else failed + int(rng.integers(0, 14 * 24)) * HOUR_NS
    decisions = pd.DataFrame(
        {
            "max_additional_retries": [int(rng.integers(0, 5))],
            "retryable": [["yes", "no", "after_update", None][rng.integers(4)]],
            "needs_update_first": [bool(rng.random() < 0.3)],
            "allowed": [bool(rng.random() < 0.7)],
            "not_before": _utc(not_before),
            "retry_deadline": _utc(deadline),
        }
    )
    return events, decisions


def _assert_same(lone, general) -> None:
    for got, want in zip(lone, general, strict=True):
        assert list(got) == list(want)
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            assert got[name].tolist() == want[name].tolist(), name


@pytest.mark.parametrize("seed", range(4))
def test_lone_path_equals_the_general_path(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(150):
        events, decisions = _event(rng)
        config, quiet = CONFIGS[k % len(CONFIGS)], QUIETS[(k // 4) % len(QUIETS)]
        rules = RetryRules(RetryLimits(min_spacing_hours=float(rng.choice([0.0, 4.0, 30.0]))))
        lone = fixed_schedule_columns(events, None, rules, config, decisions, quiet_hours=quiet)
        cases.append((events, decisions, rules, config, quiet, lone))
    monkeypatch.setattr(baselines, "lone_fixed_columns", lambda *args: None)
    kinds = set()
    for events, decisions, rules, config, quiet, lone in cases:
        general = fixed_schedule_columns(events, None, rules, config, decisions, quiet_hours=quiet)
        _assert_same(lone, general)
        kinds.add((len(lone[0]["at"]) > 0, len(lone[1]["send_at"]) > 0))
    assert kinds == {(True, True), (True, False), (False, True), (False, False)}


def test_lone_path_is_taken_and_the_general_one_beside_another_event_agrees():
    rng = np.random.default_rng(11)
    rules, quiet = RetryRules(), QuietHours()
    for _ in range(40):
        events, decisions = _event(rng)
        other, other_decisions = _event(rng)
        other["event_id"] = "zz"  # sorts after every "eNNN"
        lone = baselines.lone_fixed_columns(events, decisions, rules, BaselineConfig(), quiet)
        assert lone is not None
        both = fixed_schedule_columns(
            pd.concat([events, other], ignore_index=True),
            None,
            rules,
            None,
            pd.concat([decisions, other_decisions], ignore_index=True),
            quiet_hours=quiet,
        )
        first = tuple(
            {
                name: values[part["event_id"] == events["event_id"][0]]
                for name, values in part.items()
            }
            for part in both
        )
        _assert_same(lone, first)


def test_a_missing_time_zone_is_left_to_the_general_path():
    events, decisions = _event(np.random.default_rng(3))
    events["timezone"] = [None]
    assert (
        baselines.lone_fixed_columns(
            events, decisions, RetryRules(), BaselineConfig(), QuietHours()
        )
        is None
    )
    with pytest.raises(ValueError, match="timezone"):
        fixed_schedule_columns(
            events, None, RetryRules(), None, decisions, quiet_hours=QuietHours()
        )
