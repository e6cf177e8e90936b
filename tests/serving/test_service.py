"""The service functions without HTTP: responses from a decider's frames, item validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from api_helpers import request_body

from training.api.schemas import ItemError, RecommendationRequest, RecommendationResponse
from training.api.service import responses_from_decisions, validate_item
from training.policy.decisions import Decisions

UTC = "datetime64[ns, UTC]"


def _requests(n: int) -> list[RecommendationRequest]:
    out = [validate_item(request_body(invoice_id=f"in_{i}")) for i in range(n)]
    assert all(isinstance(r, RecommendationRequest) for r in out)
    return out  # type: ignore[return-value]


def _decisions() -> Decisions:
    events = pd.DataFrame(
        {
            "event_id": ["1", "0"],  # not in request order
            "decline_category": ["insufficient_funds", "expired_card"],
            "retryable": ["yes", "after_update"],
            "expected_recovery_probability": [0.5, np.nan],
            "baseline_recovery_probability": [0.25, np.nan],
            "propensity": [1.0, 0.96],
            "decision_id": ["dec_b", "dec_a"],
            "reasons": [["x"], ["y", "z"]],
            "fallback": [False, True],
        }
    )
    retries = pd.DataFrame(  # unsorted, one row of an event nobody asked for
        {
            "event_id": ["1", "9", "1"],
            "at": pd.to_datetime(
                ["2026-11-25T06:00:00Z", "2026-11-21T06:00:00Z", "2026-11-22T06:30:00.5Z"],
                format="ISO8601",
            ).astype(UTC),
            "success_probability": [0.125, 0.5, np.nan],
        }
    )
    messages = pd.DataFrame(
        {
            "event_id": ["0", "0"],
            "send_at": pd.to_datetime(["2026-11-21T09:00Z", "2026-11-20T15:00Z"]).astype(UTC),
            "channel": ["sms", "email"],
            "template": ["payment_link", "update_payment_method"],
        }
    )  # no response_probability column: null
    return Decisions(events, retries, messages)


def test_responses_follow_the_requests_with_sorted_schedules():
    first, second = responses_from_decisions(_requests(2), ["0", "1"], _decisions(), "m1")
    assert isinstance(first, RecommendationResponse)
    assert json.loads(first.model_dump_json()) == {
        "invoice_id": "in_0",
        "model_version": "m1",
        "decline": {"category": "expired_card", "retryable": "after_update"},
        "retries": [],
        "messages": [
            {
                "send_at": "2026-11-20T15:00:00Z",
                "channel": "email",
                "template": "update_payment_method",
                "response_probability": None,
            },
            {
                "send_at": "2026-11-21T09:00:00Z",
                "channel": "sms",
                "template": "payment_link",
                "response_probability": None,
            },
        ],
        "expected_recovery_probability": None,
        "baseline_recovery_probability": None,
        "decision_id": "dec_a",
        "propensity": 0.96,
        "reasons": ["y", "z"],
        "fallback": True,
    }
    assert [r.model_dump(mode="json") for r in second.retries] == [
        {"at": "2026-11-22T06:30:00.500000Z", "success_probability": None},
        {"at": "2026-11-25T06:00:00Z", "success_probability": 0.125},
    ]
    assert (second.expected_recovery_probability, second.decision_id) == (0.5, "dec_b")


def test_a_request_without_a_decision_is_an_error():
    with pytest.raises(KeyError, match="'2'"):
        responses_from_decisions(_requests(2), ["0", "2"], _decisions(), "m1")
    with pytest.raises(ValueError, match="one event id per request"):
        responses_from_decisions(_requests(2), ["0"], _decisions(), "m1")


def test_an_already_scanned_item_is_not_scanned_again():
    """The routes scan the whole body first; ``scanned`` skips only the scan."""
    card = request_body(invoice_id="4242 4242 4242 4242")
    refused = validate_item(card, "items[0]")
    assert isinstance(refused, ItemError) and refused.error.code == "card_number_refused"
    assert isinstance(validate_item(card, "items[0]", scanned=True), RecommendationRequest)
    invalid = validate_item(request_body(amount_minor=0), "items[1]", scanned=True)
    assert isinstance(invalid, ItemError) and invalid.error.field == "items[1].amount_minor"
