"""POST /v1/recommendations and /batch in fallback mode: the contract's fields and rules."""

from __future__ import annotations

import pytest
from api_helpers import check_contract_rules, post_json, request_body

HOSTILE = {
    "contract example": request_body(),
    "stolen card": request_body(decline_code="stolen_card"),
    "expired card": request_body(decline_code="expired_card"),
    "mastercard MAC 03": request_body(
        card_brand="mastercard", decline_code="do_not_honor", merchant_advice_code="03"
    ),
    "mastercard MAC 21": request_body(
        card_brand="mastercard", decline_code="do_not_honor", merchant_advice_code="21"
    ),
    "visa cap reached": request_body(
        failed_at="2026-11-20T14:03:00Z",
        previous_attempts=[
            {"attempted_at": f"2026-11-{day:02d}T10:00:00Z", "decline_code": "do_not_honor"}
            for day in range(1, 21)
        ],
        decline_code="do_not_honor",
    ),
    "no sms opt-in, late evening in Sydney": request_body(
        failed_at="2026-10-04T10:30:00Z",
        previous_attempts=None,
        customer={"country": "AU", "timezone": "Australia/Sydney", "sms_opt_in": False},
    ),
    "new york, DST ends, email only": request_body(
        failed_at="2026-11-01T05:30:00Z",
        previous_attempts=None,
        customer={"country": "US", "timezone": "America/New_York", "sms_opt_in": True},
        constraints={"channels": ["email"], "max_retries": 1, "window_days": 5, "max_messages": 1},
    ),
    "ach return R01 re-presented twice": request_body(
        payment_method="ach_debit",
        card_brand=None,
        processor="ach",
        decline_code="R01",
        currency="USD",
        previous_attempts=[
            {"attempted_at": "2026-11-10T10:00:00Z", "decline_code": "R01"},
            {"attempted_at": "2026-11-14T10:00:00Z", "decline_code": "R01"},
        ],
    ),
    "sepa AM04 in Kolkata": request_body(
        payment_method="sepa_debit",
        card_brand=None,
        processor="sepa",
        decline_code="AM04",
        customer={"country": "IN", "timezone": "Asia/Kolkata", "sms_opt_in": True},
    ),
    "unknown code, no customer, no constraints": request_body(
        decline_code="zz_never_seen", customer=None, constraints=None, previous_attempts=None
    ),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_single_response_keeps_the_contract(client, body, row_counts):
    response = post_json(client, "/v1/recommendations", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    check_contract_rules(body, answer)
    assert answer["fallback"] is True
    assert answer["propensity"] == 1.0
    assert answer["expected_recovery_probability"] is None
    assert all(r["success_probability"] is None for r in answer["retries"])
    assert row_counts()["decisions"] == 1


@pytest.mark.parametrize(
    ("name", "retryable"),
    [
        ("stolen card", "no"),
        ("mastercard MAC 03", "no"),
        ("mastercard MAC 21", "no"),
        ("visa cap reached", "yes"),
        ("ach return R01 re-presented twice", "yes"),
    ],
)
def test_no_retry_where_the_rules_forbid_it(client, name, retryable):
    answer = post_json(client, "/v1/recommendations", HOSTILE[name]).json()
    assert answer["decline"]["retryable"] == retryable
    assert answer["retries"] == []


def test_customer_initiated_attempts_do_not_use_up_the_visa_cap(client):
    body = {
        **HOSTILE["visa cap reached"],
        "previous_attempts": [
            {**attempt, "initiated_by": "customer"}
            for attempt in HOSTILE["visa cap reached"]["previous_attempts"]
        ],
    }
    answer = post_json(client, "/v1/recommendations", body).json()
    assert answer["decline"]["retryable"] == "yes"
    assert answer["retries"]  # the merchant has made no reattempt yet
    bad = {**body, "previous_attempts": [{**body["previous_attempts"][0], "initiated_by": "bank"}]}
    response = post_json(client, "/v1/recommendations", bad)
    assert response.status_code == 422
    assert "initiated_by" in response.text


def test_expired_card_asks_for_an_update_before_any_retry(client):
    answer = post_json(client, "/v1/recommendations", HOSTILE["expired card"]).json()
    assert answer["decline"] == {"category": "expired_card", "retryable": "after_update"}
    first = answer["messages"][0]
    assert first["template"] == "update_payment_method"
    assert all(r["at"] > first["send_at"] for r in answer["retries"])


def test_insufficient_funds_retries_the_morning_after_paydays(client):
    answer = post_json(client, "/v1/recommendations", request_body()).json()
    # Amsterdam: Sat 28 Nov (after Fri 27), Tue 1 Dec (after Mon 30 Nov, last business
    # day), Wed 2 Dec (after the 1st); 06:00 local = 05:00 UTC
    assert [r["at"] for r in answer["retries"]] == [
        "2026-11-28T05:00:00Z",
        "2026-12-01T05:00:00Z",
        "2026-12-02T05:00:00Z",
    ]
    assert any("payday" in reason for reason in answer["reasons"])


def test_customer_known_from_an_earlier_request_is_used(client):
    post_json(client, "/v1/recommendations", request_body())
    later = request_body(invoice_id="in_2000", customer=None, failed_at="2026-11-20T20:30:00Z")
    answer = post_json(client, "/v1/recommendations", later).json()
    # known Amsterdam customer with SMS opt-in: an SMS is allowed, 21:30 local is quiet
    assert any(m["channel"] == "sms" for m in answer["messages"])
    assert answer["messages"][0]["send_at"] == "2026-11-21T07:00:00Z"


def test_cold_start_customer_gets_no_sms(client):
    body = request_body(customer_id="cus_new", customer=None)
    answer = post_json(client, "/v1/recommendations", body).json()
    assert answer["messages"] and all(m["channel"] == "email" for m in answer["messages"])


def test_batch_answers_in_order_and_isolates_a_bad_item(client, row_counts):
    items = [request_body(invoice_id=f"in_{i}") for i in range(5)]
    items[2]["amount_minor"] = -1
    response = post_json(client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 200
    answers = response.json()["items"]
    assert [a["invoice_id"] for a in answers] == [f"in_{i}" for i in range(5)]
    assert answers[2] == {
        "invoice_id": "in_2",
        "error": {
            "code": "out_of_range",
            "message": "items[2].amount_minor: Input should be greater than 0",
            "field": "items[2].amount_minor",
        },
    }
    for i in (0, 1, 3, 4):
        check_contract_rules(items[i], answers[i])
    assert len({a["decision_id"] for i, a in enumerate(answers) if i != 2}) == 4
    assert row_counts()["decisions"] == 4


def test_batch_of_the_documented_maximum_is_answered(client, settings):
    items = [request_body(invoice_id=f"in_{i}") for i in range(settings.max_batch_items)]
    response = post_json(client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 200
    assert len(response.json()["items"]) == settings.max_batch_items


def test_batch_body_and_stored_responses_are_the_models_json(client, settings, row_counts):
    """The batch body is put together from each item's JSON, made once and stored as the
    decision's response: byte for byte what the response models serialize."""
    import json

    from sqlalchemy import select

    from serving.store.db import make_engine
    from serving.store.models import Decision
    from training.api.schemas import BatchResponse

    items = [request_body(invoice_id=f"in_{i}") for i in range(4)]
    items[1]["currency"] = "XXQ"
    response = post_json(client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 200
    parsed = BatchResponse.model_validate_json(response.content)
    assert response.content == parsed.model_dump_json().encode()
    assert row_counts()["decisions"] == 3
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(select(Decision.decision_id, Decision.response)).all())
    finally:
        engine.dispose()
    for item in parsed.items:
        if hasattr(item, "decision_id"):
            assert stored[item.decision_id] == json.loads(item.model_dump_json())
