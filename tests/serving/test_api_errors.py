"""Bad requests: each gets the exact status, code and field, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from api_helpers import AUTH, make_settings, post_json, request_body
from fastapi.testclient import TestClient


def with_customer(**fields):
    return request_body(customer={**request_body()["customer"], **fields})


BAD_REQUESTS = [
    # (id, body, status, code, field)
    ("missing invoice_id", request_body(invoice_id=None), 422, "missing_field", "invoice_id"),
    ("negative amount", request_body(amount_minor=-5), 422, "out_of_range", "amount_minor"),
    ("zero amount", request_body(amount_minor=0), 422, "out_of_range", "amount_minor"),
    ("float amount", request_body(amount_minor=49.5), 422, "invalid_type", "amount_minor"),
    ("amount as text", request_body(amount_minor="4900"), 422, "invalid_type", "amount_minor"),
    ("lower-case currency", request_body(currency="eur"), 422, "invalid_format", "currency"),
    ("unknown currency", request_body(currency="XXY"), 422, "invalid_currency", "currency"),
    (
        "unknown payment method",
        request_body(payment_method="paypal"),
        422,
        "invalid_enum",
        "payment_method",
    ),
    ("unknown processor", request_body(processor="square"), 422, "invalid_enum", "processor"),
    ("unknown card brand", request_body(card_brand="visaa"), 422, "invalid_enum", "card_brand"),
    ("card without brand", request_body(card_brand=None), 422, "card_brand_required", "card_brand"),
    (
        "timestamp not a date",
        request_body(failed_at="yesterday"),
        422,
        "invalid_timestamp",
        "failed_at",
    ),
    (
        "timestamp without offset",
        request_body(failed_at="2026-11-20T14:03:00"),
        422,
        "invalid_timestamp",
        "failed_at",
    ),
    (
        "bad MAC",
        request_body(merchant_advice_code="3"),
        422,
        "invalid_format",
        "merchant_advice_code",
    ),
    (
        "attempt after the failure",
        request_body(previous_attempts=[{"attempted_at": "2026-11-21T00:00:00Z"}]),
        422,
        "attempt_after_failure",
        "previous_attempts",
    ),
    (
        "bad previous attempt timestamp",
        request_body(previous_attempts=[{"attempted_at": "2026-13-01T00:00:00Z"}]),
        422,
        "invalid_timestamp",
        "previous_attempts[0].attempted_at",
    ),
    (
        "unknown time zone",
        with_customer(timezone="Mars/Olympus"),
        422,
        "invalid_timezone",
        "customer.timezone",
    ),
    ("unknown country", with_customer(country="XX"), 422, "invalid_country", "customer.country"),
    (
        "sms_opt_in as text",
        with_customer(sms_opt_in="yes"),
        422,
        "invalid_type",
        "customer.sms_opt_in",
    ),
    (
        "unknown channel",
        request_body(constraints={"channels": ["fax"]}),
        422,
        "invalid_enum",
        "constraints.channels[0]",
    ),
    (
        "negative max_retries",
        request_body(constraints={"max_retries": -1}),
        422,
        "out_of_range",
        "constraints.max_retries",
    ),
    ("unknown field", request_body(coupon="x"), 422, "unknown_field", "coupon"),
    (
        "card number in a field",
        with_customer(plan="4242 4242 4242 4242"),
        422,
        "card_number_refused",
        "customer.plan",
    ),
    (
        "card number with dashes in an id",
        request_body(invoice_id="5555-5555-5555-4444"),
        422,
        "card_number_refused",
        "invoice_id",
    ),
    (
        "card number as a JSON number",
        request_body(note=4111111111111111),
        422,
        "card_number_refused",
        "note",
    ),
    ("CVC field", request_body(cvc="123"), 422, "card_security_code_refused", "cvc"),
    (
        "security code nested",
        with_customer(**{"Security-Code": "1234"}),
        422,
        "card_security_code_refused",
        "customer.Security-Code",
    ),
    (
        "IBAN",
        request_body(customer_id="NL91 ABNA 0417 1643 00"),
        422,
        "iban_refused",
        "customer_id",
    ),
    (
        "IBAN inside text",
        with_customer(plan="pay to DE89370400440532013000 please"),
        422,
        "iban_refused",
        "customer.plan",
    ),
    ("body is a list", [request_body()], 422, "invalid_type", None),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_gets_its_exact_error(client, row_counts, body, status, code, field):
    response = post_json(client, "/v1/recommendations", body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"code", "message", "field"}
    assert (error["code"], error["field"]) == (code, field)
    if field:
        assert error["message"].startswith(field)
    assert row_counts()["decisions"] == 0


def test_sensitive_values_are_not_echoed(client):
    body = request_body(invoice_id="4242424242424242")
    text = post_json(client, "/v1/recommendations", body).text
    assert "4242424242424242" not in text


def test_luhn_invalid_long_number_is_accepted(client):
    response = post_json(client, "/v1/recommendations", request_body(invoice_id="4242424242424241"))
    assert response.status_code == 200


def test_not_json(client):
    response = client.post("/v1/recommendations", content=b"{not json", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_oversized_body_is_refused(client, settings, row_counts):
    body = request_body(customer_id="c" * 100)
    blob = json.dumps({"items": [body] * (settings.max_body_bytes // 500 + 1)})
    assert len(blob) > settings.max_body_bytes
    response = client.post("/v1/recommendations/batch", content=blob, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert row_counts()["decisions"] == 0


def test_too_many_batch_items(client, settings, row_counts):
    items = [request_body(invoice_id=f"in_{i}") for i in range(settings.max_batch_items + 1)]
    response = post_json(client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("too_many_items", "items")
    assert row_counts()["decisions"] == 0


def test_card_number_anywhere_in_a_batch_refuses_it_whole(client, row_counts):
    items = [request_body(invoice_id=f"in_{i}") for i in range(3)]
    items[1]["customer"]["plan"] = "4000 0566 5566 5556"
    response = post_json(client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 422
    assert response.json()["field"] == "items[1].customer.plan"
    assert row_counts()["decisions"] == 0


def test_unknown_route_is_json(client):
    response = client.get("/v1/nothing-here", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_request_over_the_time_limit_gets_503_request_timeout(tmp_path):
    import time

    from serving.app import create_app

    settings = make_settings(tmp_path, request_timeout_seconds=0.3)

    def slow_body():
        yield b'{"events": '
        time.sleep(1.0)  # a client that stalls mid-upload
        yield b"[]}"

    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/outcomes",
            content=slow_body(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
    assert response.status_code == 503
    assert response.json()["code"] == "request_timeout"
    assert response.headers["Retry-After"] == "1"
