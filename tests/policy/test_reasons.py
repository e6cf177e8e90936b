"""Reasons of a learned schedule, read per event by position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.policy.reasons import model_reasons

IDS = ["b", "a", "c"]


def _inputs() -> dict:
    events = pd.DataFrame(
        {"event_id": IDS, "allow_sms": [True, True, False], "sms_opt_in": [False, True, False]},
        index=[10, 11, 12],
    )
    decisions = pd.DataFrame(
        {
            "category": ["insufficient_funds", "expired_card", "do_not_honor"],
            "retryable": ["yes", "after_update", "no"],
            "needs_update_first": [False, True, False],
            "rule": ["soft", "after_update", "stop_after_mac_03"],
        }
    )
    features = pd.DataFrame({"cust_pay_day_of_month": [np.nan, 27.4, 15.0]}, index=["c", "a", "b"])
    retries = pd.DataFrame({"event_id": ["b", "zz", "b"]})  # zz: not one of these events
    messages = pd.DataFrame(
        {
            "event_id": ["a", "b", "a", "a"],
            "template": [None, "payment_link", "update_payment_method", "friendly_reminder"],
        }
    )
    return {
        "events": events,
        "decisions": decisions,
        "features": features,
        "retries": retries,
        "messages": messages,
        "expected": np.array([0.404, 0.2, 0.0]),
        "baseline": np.array([0.3, 0.1, np.nan]),
        "config": PolicyConfig(),
    }


def test_reasons_per_event_in_event_order():
    b, a, c = model_reasons(**_inputs())
    quiet = "messages outside quiet hours (21:00-08:00 local)"
    assert b == [
        "insufficient funds: retries placed after the customer's usual payday "
        "(around day 15 of the month)",
        "first message: payment link",
        quiet,
        "no SMS: the customer has not opted in",
        "expected recovery 40% vs 30% for the fixed schedule",
    ]
    assert a == [  # the first message with a template (nulls skipped), no retry for "a"
        "expired card: asks the customer to update the payment method; no retry fits "
        "before the window ends",
        "first message: update payment method",
        quiet,
        "expected recovery 20% vs 10% for the fixed schedule",
    ]
    assert c == [  # no baseline figure: no comparison sentence
        "do not honor: never retried (stop after mac 03)",
        "no message expected to help",
        quiet,
    ]


def test_an_event_without_features_is_an_error():
    inputs = _inputs()
    inputs["features"] = inputs["features"].drop(index="a")
    with pytest.raises(KeyError, match="'a'"):
        model_reasons(**inputs)


def test_each_event_alone_gets_its_reasons_among_others():
    """A lone request (one category's words, one sentence built) reads what it reads
    among other events."""
    inputs = _inputs()
    together = model_reasons(**inputs)
    for i, event_id in enumerate(IDS):
        alone = dict(inputs)
        alone["events"] = inputs["events"].iloc[[i]]
        alone["decisions"] = inputs["decisions"].iloc[[i]].reset_index(drop=True)
        alone["expected"], alone["baseline"] = inputs["expected"][[i]], inputs["baseline"][[i]]
        assert model_reasons(**alone) == [together[i]], event_id
