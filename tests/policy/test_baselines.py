"""Rule-based schedules: clipped by the rules engine and the constraints, on hostile events."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.api.requests import requests_to_frames
from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.core.frames import Schedules
from training.core.localtime import to_local
from training.declines.rules import RetryRules
from training.declines.violations import schedule_violations
from training.policy.baselines import fixed_schedule, no_action, rules_baseline

QUIET = QuietHours()

BASE: dict[str, Any] = {
    "customer_id": "c",
    "amount_minor": 4900,
    "currency": "EUR",
    "payment_method": "card",
    "card_brand": "visa",
    "processor": "stripe",
    "decline_code": "insufficient_funds",
    "failed_at": "2026-11-20T14:03:00Z",
    "customer": {"country": "NL", "timezone": "Europe/Amsterdam", "sms_opt_in": True},
}


def attempts(times: list[str], code: str = "do_not_honor") -> list[dict[str, str]]:
    return [{"attempted_at": t, "decline_code": code} for t in times]


def daily(start_day: int, n: int, month: str = "2026-11") -> list[str]:
    return [f"{month}-{start_day + i:02d}T10:00:00Z" for i in range(n)]


HOSTILE: dict[str, dict[str, Any]] = {
    "insufficient funds": {},
    "stolen card": {"decline_code": "stolen_card"},
    "fraudulent": {"decline_code": "fraudulent"},
    "expired card": {"decline_code": "expired_card"},
    "expired card, since updated": {
        "decline_code": "expired_card",
        "previous_attempts": attempts(["2026-11-18T14:03:00Z"], "expired_card"),
        "payment_method_updated_at": "2026-11-19T09:00:00Z",
    },
    "MAC 03": {
        "card_brand": "mastercard",
        "decline_code": "do_not_honor",
        "merchant_advice_code": "03",
    },
    "MAC 21": {
        "card_brand": "mastercard",
        "decline_code": "do_not_honor",
        "merchant_advice_code": "21",
    },
    "MAC 01": {
        "card_brand": "mastercard",
        "decline_code": "do_not_honor",
        "merchant_advice_code": "01",
    },
    "MAC 02": {
        "card_brand": "mastercard",
        "decline_code": "do_not_honor",
        "merchant_advice_code": "02",
    },
    "visa cap reached": {
        "decline_code": "do_not_honor",
        "previous_attempts": attempts(daily(1, 20)),
    },
    "visa cap almost reached": {
        "decline_code": "do_not_honor",
        "previous_attempts": attempts(daily(2, 19)),
    },
    "mastercard 24h burst": {
        "card_brand": "mastercard",
        "decline_code": "do_not_honor",
        "previous_attempts": attempts([f"2026-11-20T{h:02d}:00:00Z" for h in range(1, 14)]),
    },
    "ach R01 twice": {
        "payment_method": "ach_debit",
        "card_brand": None,
        "processor": "ach",
        "currency": "USD",
        "decline_code": "R01",
        "previous_attempts": attempts(daily(10, 2), "R01"),
    },
    "ach R01 once": {
        "payment_method": "ach_debit",
        "card_brand": None,
        "processor": "ach",
        "currency": "USD",
        "decline_code": "R01",
        "previous_attempts": attempts(daily(10, 1), "R01"),
    },
    "bacs near its window": {
        "payment_method": "bacs_debit",
        "card_brand": None,
        "processor": "bacs",
        "currency": "GBP",
        "decline_code": "0",
        "previous_attempts": attempts(["2026-10-25T10:00:00Z"], "0"),
        "customer": {"country": "GB", "timezone": "Europe/London", "sms_opt_in": True},
    },
    "sepa AM04": {
        "payment_method": "sepa_debit",
        "card_brand": None,
        "processor": "sepa",
        "decline_code": "AM04",
    },
    "unknown code": {"decline_code": "zz_unheard_of"},
    "no sms opt-in": {
        "customer": {"country": "NL", "timezone": "Europe/Amsterdam", "sms_opt_in": False}
    },
    "sms only, no opt-in": {
        "customer": {"timezone": "Europe/Amsterdam", "sms_opt_in": False},
        "constraints": {"channels": ["sms"]},
    },
    "sms only, opted in": {"constraints": {"channels": ["sms"]}},
    "expired card, no channel": {"decline_code": "expired_card", "constraints": {"channels": []}},
    "late evening Sydney, DST starts": {
        "failed_at": "2026-10-04T10:30:00Z",
        "customer": {"country": "AU", "timezone": "Australia/Sydney", "sms_opt_in": True},
    },
    "night in New York, DST ends": {
        "failed_at": "2026-11-01T05:30:00Z",
        "customer": {"country": "US", "timezone": "America/New_York", "sms_opt_in": True},
    },
    "London, clocks go back": {
        "failed_at": "2026-10-23T21:45:00Z",
        "decline_code": "do_not_honor",
        "customer": {"country": "GB", "timezone": "Europe/London", "sms_opt_in": True},
    },
    "Kolkata past midnight": {
        "failed_at": "2026-11-20T19:00:00Z",
        "customer": {"country": "IN", "timezone": "Asia/Kolkata", "sms_opt_in": True},
    },
    "tight constraints": {"constraints": {"max_retries": 1, "window_days": 2, "max_messages": 1}},
    "no retries wanted": {"decline_code": "do_not_honor", "constraints": {"max_retries": 0}},
    "cold start": {"customer": None},
}


@pytest.fixture(scope="module")
def rules() -> RetryRules:
    return RetryRules()


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    requests = [{**BASE, "invoice_id": name, **change} for name, change in HOSTILE.items()]
    return requests_to_frames(requests, event_ids=list(HOSTILE))


CONFIGS = {
    "default": BaselineConfig(),
    "eager": BaselineConfig(
        fixed_retry_days=(0.1, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 13),
        soft_retry_days=(0.1, 0.2, 1, 2, 3, 4, 5, 6, 7),
        update_retry_days=(0, 0.1, 1, 2, 3),
        fixed_message_days=(0, 0.01, 0.02, 1, 2),
        rules_message_days=(0, 0.3, 0.6, 1, 2),
        rules_message_channels=("sms", "email"),
    ),
}
BASELINES = {
    "fixed": partial(fixed_schedule, quiet_hours=QUIET),
    "rules": partial(rules_baseline, quiet_hours=QUIET),
}


def by_event(schedules: Schedules, event_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    one = schedules.for_event(event_id)
    return one.retries, one.messages


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("baseline", BASELINES.values(), ids=BASELINES.keys())
def test_no_rule_is_broken_on_hostile_events(rules, frames, baseline, config):
    events, previous = frames
    schedules = baseline(events, previous, rules, config)
    violations = schedule_violations(rules, events, schedules.retries, previous, schedules.messages)
    assert violations.empty, violations.to_string()

    for name, frame, column in (
        ("retries", schedules.retries, "at"),
        ("messages", schedules.messages, "send_at"),
    ):
        assert list(frame.columns[:2]) == ["event_id", column], name
        assert frame.equals(
            frame.sort_values(["event_id", column], kind="stable").reset_index(drop=True)
        )
        assert str(frame[column].dtype) == "datetime64[ns, UTC]"
        joined = frame.merge(events[["event_id", "failed_at", "window_days"]], on="event_id")
        end = joined["failed_at"] + pd.to_timedelta(joined["window_days"], unit="D")
        assert ((joined[column] >= joined["failed_at"]) & (joined[column] <= end)).all(), name
        if name == "retries":
            assert (joined["at"] > joined["failed_at"]).all()

    counts = schedules.retries.groupby("event_id").size().reindex(events["event_id"], fill_value=0)
    assert (counts.to_numpy() <= events["max_retries"].to_numpy()).all()
    sent = schedules.messages.groupby("event_id").size().reindex(events["event_id"], fill_value=0)
    assert (sent.to_numpy() <= events["max_messages"].to_numpy()).all()

    m = schedules.messages.merge(events, on="event_id")
    hour = to_local(m["send_at"], m["timezone"]).dt.hour
    assert ((hour >= 8) & (hour < 21)).all(), m.loc[~((hour >= 8) & (hour < 21))].to_string()
    sms = m["channel"] == "sms"
    assert (m.loc[sms, "sms_opt_in"] & m.loc[sms, "allow_sms"]).all()
    assert m.loc[~sms, "allow_email"].all()

    never = [
        "stolen card",
        "fraudulent",
        "MAC 03",
        "MAC 21",
        "visa cap reached",
        "ach R01 twice",
        "expired card, no channel",
        "no retries wanted",
    ]
    assert not schedules.retries["event_id"].isin(never).any()
    assert counts["visa cap almost reached"] <= 1
    assert counts["ach R01 once"] <= 1
    assert counts["unknown code"] <= 1
    assert counts["tight constraints"] <= 1 and sent["tight constraints"] <= 1
    assert sent["expired card, no channel"] == 0
    assert sent["sms only, no opt-in"] == 0


def test_fixed_schedule_defaults(rules, frames):
    events, previous = frames
    schedules = fixed_schedule(events, previous, rules, quiet_hours=QUIET)
    retries, messages = by_event(schedules, "insufficient funds")
    assert retries["at"].tolist() == [pd.Timestamp(f"2026-11-{d}T14:03:00Z") for d in (23, 25, 27)]
    assert messages["send_at"].tolist() == [
        pd.Timestamp(f"2026-11-{d}T14:03:00Z") for d in (20, 23, 27)
    ]
    assert set(messages["template"]) == {"friendly_reminder"} and set(messages["channel"]) == {
        "email"
    }
    # no update request in the fixed schedule: an after_update decline gets no retry
    assert by_event(schedules, "expired card")[0].empty


def test_fixed_schedule_keeps_the_local_clock_across_dst(rules, frames):
    events, previous = frames
    retries, _ = by_event(
        fixed_schedule(events, previous, rules, quiet_hours=QUIET), "London, clocks go back"
    )
    # failed 22:45 BST on Fri 23 Oct; clocks go back on the 25th: retries at 22:45 GMT
    assert retries["at"].tolist() == [pd.Timestamp(f"2026-10-{d}T22:45:00Z") for d in (26, 28, 30)]


def test_rules_baseline_paydays(rules, frames):
    events, previous = frames
    retries, messages = by_event(
        rules_baseline(events, previous, rules, quiet_hours=QUIET), "insufficient funds"
    )
    local = to_local(retries["at"], "Europe/Amsterdam")
    assert (local.dt.hour == 6).all()
    day_before = local.dt.normalize() - pd.Timedelta(days=1)
    month_end = day_before + pd.offsets.MonthEnd(0)
    last_business = month_end - pd.to_timedelta(np.maximum(month_end.dt.weekday - 4, 0), unit="D")
    assert (
        day_before.dt.day.isin([1, 15])
        | (day_before.dt.weekday == 4)
        | (day_before == last_business)
    ).all()
    assert set(messages["template"]) == {"payment_link"}


def test_rules_baseline_update_first(rules, frames):
    events, previous = frames
    schedules = rules_baseline(events, previous, rules, quiet_hours=QUIET)
    for name in ("expired card", "MAC 01"):
        retries, messages = by_event(schedules, name)
        assert messages.iloc[0]["template"] == "update_payment_method"
        assert len(retries) > 0
        assert (
            retries["at"]
            >= messages.iloc[0]["send_at"]
            + pd.Timedelta(hours=rules.limits.update_plausible_after_hours)
        ).all()
    assert set(by_event(schedules, "stolen card")[1]["template"]) == {"update_payment_method"}


def test_rules_baseline_does_not_ask_for_an_update_already_made(rules, frames):
    events, previous = frames
    schedules = rules_baseline(events, previous, rules, quiet_hours=QUIET)
    retries, messages = by_event(schedules, "expired card, since updated")
    assert len(messages) > 0
    assert set(messages["template"]) == {"payment_link"}
    assert len(retries) > 0  # the update allows the retry at once
    # a decline that must not be retried still asks for another payment method
    assert set(by_event(schedules, "stolen card")[1]["template"]) == {"update_payment_method"}


def test_rules_baseline_sms_follows_consent(rules, frames):
    events, previous = frames
    schedules = rules_baseline(events, previous, rules, quiet_hours=QUIET)
    assert "sms" in set(by_event(schedules, "insufficient funds")[1]["channel"])
    assert set(by_event(schedules, "no sms opt-in")[1]["channel"]) == {"email"}
    assert set(by_event(schedules, "sms only, opted in")[1]["channel"]) == {"sms"}
    assert set(by_event(schedules, "cold start")[1]["channel"]) == {"email"}


@pytest.mark.parametrize("baseline", BASELINES.values(), ids=BASELINES.keys())
def test_many_events_at_once_equal_one_at_a_time(rules, frames, baseline):
    events, previous = frames
    together = baseline(events, previous, rules)
    for event_id in (
        "insufficient funds",
        "MAC 01",
        "bacs near its window",
        "night in New York, DST ends",
    ):
        one = baseline(
            events[events["event_id"] == event_id],
            previous[previous["event_id"] == event_id],
            rules,
        )
        pd.testing.assert_frame_equal(
            one.retries, together.for_event(event_id).retries.reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(
            one.messages, together.for_event(event_id).messages.reset_index(drop=True)
        )


def test_no_action_is_empty(frames):
    events, previous = frames
    schedules = no_action(events, previous)
    assert schedules.retries.empty and schedules.messages.empty


def test_thousands_of_events_are_fast_and_clean(rules):
    rng = np.random.default_rng(3)
    codes = [
        "insufficient_funds",
        "do_not_honor",
        "expired_card",
        "stolen_card",
        "zz_new",
        "card_declined",
    ]
    zones = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]
    n = 3000
    failed = pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, n), unit="min"
    )
    requests = [
        {
            **BASE,
            "invoice_id": f"in_{i}",
            "decline_code": codes[i % len(codes)],
            "failed_at": failed[i],
            "customer": {"timezone": zones[i % len(zones)], "sms_opt_in": bool(i % 2)},
        }
        for i in range(n)
    ]
    events, previous = requests_to_frames(requests)
    for baseline in BASELINES.values():
        schedules = baseline(events, previous, rules)
        assert schedule_violations(
            rules, events, schedules.retries, previous, schedules.messages
        ).empty
        assert schedules.retries["event_id"].nunique() > n / 3
