"""The learned policy never breaks a rule, and beats the fixed schedule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.api.requests import requests_to_frames
from training.core.localtime import to_local
from training.declines.violations import schedule_violations
from training.features.invoice import events_from_history
from training.policy.baselines import fixed_schedule


def _request(invoice_id, **overrides):
    base = {
        "invoice_id": invoice_id,
        "customer_id": f"cus_{invoice_id}",
        "amount_minor": 4900,
        "currency": "EUR",
        "payment_method": "card",
        "card_brand": "visa",
        "processor": "stripe",
        "decline_code": "insufficient_funds",
        "merchant_advice_code": None,
        "failed_at": "2026-11-20T14:03:00Z",
        "customer": {
            "country": "NL",
            "timezone": "Europe/Amsterdam",
            "signup_at": "2019-03-01T00:00:00Z",
            "sms_opt_in": True,
        },
    }
    base.update(overrides)
    return base


def _customer(tz, opt_in=True):
    return {
        "country": "GB",
        "timezone": tz,
        "signup_at": "2015-01-01T00:00:00Z",
        "sms_opt_in": opt_in,
    }


# Debits whose account or mandate is gone, or needs new details: never re-presented.
DEBIT_NEEDS_NEW_DETAILS = [
    ("bacs", "5", "GBP"),
    ("bacs", "6", "GBP"),
    ("bacs", "B", "GBP"),
    ("sepa", "MD01", "EUR"),
    ("sepa", "AC06", "EUR"),
    ("sepa", "AC01", "EUR"),
    ("ach", "R03", "USD"),
    ("ach", "R04", "USD"),
]
HOSTILE = [
    _request("hard_lost", decline_code="lost_card"),
    _request("hard_fraud", processor="adyen", decline_code="FRAUD"),
    _request(
        "sepa_closed",
        payment_method="sepa_debit",
        card_brand=None,
        processor="sepa",
        decline_code="AC04",
    ),
    _request("mac03", card_brand="mastercard", merchant_advice_code="03"),
    _request(
        "mac21", card_brand="mastercard", decline_code="do_not_honor", merchant_advice_code="21"
    ),
    _request("mac02", card_brand="mastercard", merchant_advice_code="02"),
    _request("expired", decline_code="expired_card"),
    _request(
        "visa_cap",
        previous_attempts=[
            {"attempted_at": f"2026-11-{d:02d}T09:00:00Z", "decline_code": "insufficient_funds"}
            for d in range(1, 20)
        ]
        + [{"attempted_at": "2026-10-31T09:00:00Z", "decline_code": "insufficient_funds"}],
    ),
    _request(
        "ach_twice",
        payment_method="ach_debit",
        card_brand=None,
        processor="ach",
        currency="USD",
        decline_code="R01",
        previous_attempts=[
            {"attempted_at": "2026-11-10T15:00:00Z", "decline_code": "R01"},
            {"attempted_at": "2026-11-15T15:00:00Z", "decline_code": "R01"},
        ],
    ),
    *(
        _request(
            f"debit_gone_{processor}_{code}",
            payment_method=f"{processor}_debit",
            card_brand=None,
            processor=processor,
            currency=currency,
            decline_code=code,
        )
        for processor, code, currency in DEBIT_NEEDS_NEW_DETAILS
    ),
    _request("no_opt_in", customer=_customer("America/New_York", opt_in=False)),
    _request("dst_london", failed_at="2026-10-24T20:30:00Z", customer=_customer("Europe/London")),
    _request(
        "dst_new_york", failed_at="2026-10-31T23:30:00Z", customer=_customer("America/New_York")
    ),
    _request(
        "sydney_night", failed_at="2026-04-04T12:00:00Z", customer=_customer("Australia/Sydney")
    ),
    _request("kolkata", currency="INR", customer=_customer("Asia/Kolkata")),
    _request("unknown_code", decline_code="zz_never_heard"),
    _request(
        "email_only",
        constraints={"max_retries": 2, "window_days": 7, "max_messages": 2, "channels": ["email"]},
    ),
]


@pytest.fixture(scope="module")
def hostile(small_world):
    events, previous = requests_to_frames(HOSTILE, event_ids=[r["invoice_id"] for r in HOSTILE])
    decider = small_world.artifact.decider()
    return events, previous, decider, decider.decide(events, previous)


def test_no_rule_is_broken_on_hostile_events(hostile):
    events, previous, decider, decisions = hostile
    violations = schedule_violations(
        decider.rules,
        events,
        decisions.retries[["event_id", "at"]],
        previous,
        decisions.messages[["event_id", "send_at", "template"]],
    )
    assert violations.empty, violations.to_string()
    retried = set(decisions.retries["event_id"])
    assert not retried & {"hard_lost", "hard_fraud", "sepa_closed", "mac03", "mac21", "ach_twice"}
    assert "visa_cap" not in retried  # 20 merchant reattempts in 30 days: Visa's cap is used
    assert not {e for e in retried if e.startswith("debit_gone_")}
    assert "insufficient_funds" in set(decisions.events["decline_category"])


def test_schedules_are_sorted_inside_the_window_and_within_limits(hostile):
    events, _, _, decisions = hostile
    ev = events.set_index("event_id")
    for frame, column, limit in (
        (decisions.retries, "at", "max_retries"),
        (decisions.messages, "send_at", "max_messages"),
    ):
        for event_id, group in frame.groupby("event_id"):
            times = group[column]
            assert times.is_monotonic_increasing
            assert (times >= ev.loc[event_id, "failed_at"]).all()
            assert (
                times
                < ev.loc[event_id, "failed_at"]
                + pd.Timedelta(days=int(ev.loc[event_id, "window_days"]))
            ).all()
            assert len(group) <= ev.loc[event_id, limit]


def test_messages_respect_opt_in_channels_and_quiet_hours(hostile):
    events, _, _, decisions = hostile
    msgs = decisions.messages.merge(
        events[["event_id", "timezone", "sms_opt_in", "allow_sms"]], on="event_id"
    )
    assert len(msgs) > 0
    sms = msgs[msgs["channel"] == "sms"]
    assert (sms["sms_opt_in"] & sms["allow_sms"]).all()
    assert "no_opt_in" not in set(sms["event_id"]) and "email_only" not in set(sms["event_id"])
    hour = to_local(msgs["send_at"], msgs["timezone"]).dt.hour
    assert ((hour >= 8) & (hour < 21)).all()


def test_expired_card_asks_for_an_update_before_any_retry(hostile):
    _, _, _, decisions = hostile
    msgs = decisions.messages[decisions.messages["event_id"] == "expired"]
    assert msgs.iloc[0]["template"] == "update_payment_method"
    retries = decisions.retries[decisions.retries["event_id"] == "expired"]
    if len(retries):
        assert retries["at"].min() >= msgs.iloc[0]["send_at"] + pd.Timedelta(hours=24)


def test_debits_whose_mandate_is_gone_get_a_request_for_new_bank_details(hostile):
    _, _, _, decisions = hostile
    for processor, code, _ in DEBIT_NEEDS_NEW_DETAILS:
        event_id = f"debit_gone_{processor}_{code}"
        assert event_id not in set(decisions.retries["event_id"])
        msgs = decisions.messages[decisions.messages["event_id"] == event_id]
        assert len(msgs) and msgs.iloc[0]["template"] == "update_payment_method", event_id


def test_response_fields_are_probabilities_with_reasons(hostile):
    _, _, _, decisions = hostile
    ev = decisions.events
    assert ev["expected_recovery_probability"].between(0, 1).all()
    assert ev["baseline_recovery_probability"].between(0, 1).all()
    assert ev["decision_id"].is_unique and (ev["propensity"] == 1.0).all()
    assert ev["reasons"].map(len).min() >= 2
    assert decisions.retries["success_probability"].between(0, 1).all()


def test_policy_beats_the_fixed_schedule_in_the_simulated_world(small_world):
    events = events_from_history(small_world.history)
    test = (
        events[small_world.split.assign(events["failed_at"]) == "test"]
        .head(400)
        .reset_index(drop=True)
    )
    decider = small_world.artifact.decider()
    decisions = decider.decide(test, None)
    fixed = fixed_schedule(
        test, None, decider.rules, decider.config.baseline, quiet_hours=decider.config.quiet_hours
    )
    keys = pd.DataFrame({"key": test["event_id"], "invoice_id": test["invoice_id"]})

    def truth(schedules_retries, schedules_messages):
        r = schedules_retries.rename(columns={"event_id": "key"}).assign(
            invoice_id=lambda f: f["key"]
        )
        m = schedules_messages.rename(columns={"event_id": "key"}).assign(
            invoice_id=lambda f: f["key"]
        )
        return small_world.truth.recovery_probability(keys, r, m)

    learned = truth(decisions.retries, decisions.messages)
    baseline = truth(fixed.retries, fixed.messages)
    assert learned.mean() > baseline.mean() + 0.03
    assert np.mean(learned.to_numpy() >= baseline.to_numpy() - 0.02) > 0.7
