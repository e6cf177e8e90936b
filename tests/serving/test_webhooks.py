"""Billing-system webhooks over HTTP: signed saved events are decided or stored once; bad
signatures, stale timestamps and malformed bodies are refused and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_helpers import check_contract_rules, flush_decisions, make_settings
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from webhook_helpers import (
    ADYEN_KEY,
    LAGO_SECRET,
    STRIPE_SECRET,
    adyen_sign,
    post_adyen,
    post_lago,
    post_stripe,
    saved,
    stripe_event,
)

from serving.app import create_app
from serving.settings import Settings
from serving.store.db import make_engine
from serving.store.models import Decision, OutcomeEvent, WebhookEvent

Counts = Callable[[], dict[str, int]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        stripe_webhook_secret=STRIPE_SECRET,
        adyen_hmac_key=ADYEN_KEY,
        lago_webhook_secret=LAGO_SECRET,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def counts(settings: Settings, client: TestClient) -> Counts:
    def count() -> dict[str, int]:
        flush_decisions(client)
        engine = make_engine(settings.database_url)
        try:
            with engine.connect() as conn:
                return {
                    m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
                    for m in (Decision, OutcomeEvent, WebhookEvent)
                }
        finally:
            engine.dispose()

    return count


def stored_decision_request(client: TestClient, settings: Settings, invoice_id: str) -> dict:
    flush_decisions(client)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            [request] = conn.execute(
                select(Decision.request).where(Decision.invoice_id == invoice_id)
            ).scalars()
            return request
    finally:
        engine.dispose()


def metric(client: TestClient, source: str, result: str) -> float:
    registry = client.app.state.metrics.registry
    value = registry.get_sample_value(
        "smartretry_webhook_events_total", {"source": source, "result": result}
    )
    return value or 0.0


# Stripe


def test_stripe_charge_failed_is_decided_like_a_recommendation_and_stored_once(
    client: TestClient, settings: Settings, counts: Counts
) -> None:
    event = stripe_event("charge.failed")
    response = post_stripe(client, event)
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["result"] == "decided" and ack["decision_id"]
    request = stored_decision_request(client, settings, "in_1QAbCd2eZvKYlo2CmN0pQr1s")
    assert request["decline_code"] == "insufficient_funds"
    assert request["card_brand"] == "visa" and request["currency"] == "EUR"
    # the very decision /v1/recommendations answers for the same request
    direct = client.post(
        "/v1/recommendations", json=request, headers={"Authorization": "Bearer test-key-0123456789"}
    ).json()
    check_contract_rules(request, direct)
    assert counts() == {"decisions": 2, "outcome_events": 0, "webhook_events": 1}

    again = post_stripe(client, event)  # Stripe redelivers: acknowledged, not stored again
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert counts() == {"decisions": 2, "outcome_events": 0, "webhook_events": 1}
    assert metric(client, "stripe", "duplicate") == 1


@pytest.mark.parametrize(
    ("event_type", "result"),
    [
        ("invoice.payment_failed", "decided"),
        ("invoice.paid", "outcome"),
        ("payment_intent.succeeded", "outcome"),
        ("payment_method.attached", "card_update"),
        ("customer.updated", "card_update"),
        ("customer.created", "ignored"),
    ],
)
def test_stripe_events_by_type(
    client: TestClient, counts: Counts, event_type: str, result: str
) -> None:
    response = post_stripe(client, stripe_event(event_type))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == result
    after = counts()
    assert after["decisions"] == (result == "decided")
    # a card update is stored as its payment_method_updated outcome event
    assert after["outcome_events"] == (result in ("outcome", "card_update"))
    assert after["webhook_events"] == 1
    assert metric(client, "stripe", result) == 1


def test_stripe_success_is_an_attempt_outcome(client: TestClient, settings: Settings) -> None:
    post_stripe(client, stripe_event("invoice.paid"))
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        [payload] = conn.execute(select(OutcomeEvent.payload)).scalars()
    engine.dispose()
    assert payload == {
        "event_id": "stripe:evt_1QEfGh2eZvKYlo2C5hIjKlMn",
        "type": "attempt",
        "invoice_id": "in_1QAbCd2eZvKYlo2CmN0pQr1s",
        "occurred_at": "2025-11-26T16:00:00Z",
        "attempt_id": "ch_3QAbCd2eZvKYlo2C9z8yX7wV",
        "initiated_by": "merchant",
        "outcome": "succeeded",
    }


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        (lambda c, e: post_stripe(c, e, secret="whsec_wrong"), 401, "invalid_signature"),
        (lambda c, e: post_stripe(c, e, timestamp=int(time.time()) - 301), 401, "stale_timestamp"),
        (
            lambda c, e: c.post("/v1/webhooks/stripe", json=e),
            400,
            "missing_signature",
        ),
        (lambda c, e: post_stripe(c, b"{not json"), 400, "invalid_json"),
        (lambda c, e: post_stripe(c, {**e, "data": {}}), 422, "malformed_event"),
    ],
    ids=["bad-signature", "stale-timestamp", "no-signature", "not-json", "no-object"],
)
def test_stripe_refusals_change_nothing(
    client: TestClient, counts: Counts, send, status: int, code: str
) -> None:
    response = send(client, stripe_event("charge.failed"))
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert counts() == {"decisions": 0, "outcome_events": 0, "webhook_events": 0}


def test_invalid_mapped_request_is_refused_and_can_be_retried(
    client: TestClient, counts: Counts
) -> None:
    event = stripe_event("charge.failed")
    bad = {**event, "data": {"object": {**event["data"]["object"], "currency": "xyz"}}}
    response = post_stripe(client, bad)
    assert response.status_code == 422 and response.json()["field"] == "currency"
    assert counts() == {"decisions": 0, "outcome_events": 0, "webhook_events": 0}


def test_unconfigured_webhook_answers_404(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as bare:
        response = post_stripe(bare, stripe_event("charge.failed"))
        assert response.status_code == 404
        assert response.json()["code"] == "webhook_not_configured"


def test_secrets_never_appear_in_settings_repr(settings: Settings) -> None:
    shown = repr(settings) + str(settings.model_dump())
    assert STRIPE_SECRET not in shown and ADYEN_KEY not in shown and LAGO_SECRET not in shown


# Adyen


def test_adyen_key_must_be_hex(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        make_settings(tmp_path, adyen_hmac_key="not-hex")


REFUSED, ACCEPTED, REPORT = saved("adyen_notifications.jsonl")


def test_adyen_refusal_is_decided_and_acceptance_is_an_outcome(
    client: TestClient, settings: Settings, counts: Counts
) -> None:
    refused = post_adyen(client, adyen_sign(REFUSED))
    assert refused.status_code == 200, refused.text
    assert refused.json()["notificationResponse"] == "[accepted]"
    assert refused.json()["items"][0]["result"] == "decided"
    request = stored_decision_request(client, settings, "invoice-2025-11-0042")
    assert request["decline_code"] == "51" and request["processor"] == "adyen"
    assert request["customer_id"] == "shopper_1042" and request["amount_minor"] == 2500
    accepted = post_adyen(client, adyen_sign(ACCEPTED))
    assert accepted.json()["items"][0]["result"] == "outcome"
    report = post_adyen(client, adyen_sign(REPORT))
    assert report.json()["items"][0]["result"] == "ignored"
    assert metric(client, "adyen", "ignored") == 1
    assert counts() == {"decisions": 1, "outcome_events": 1, "webhook_events": 3}
    replay = post_adyen(client, adyen_sign(REFUSED))
    assert replay.json()["items"][0]["result"] == "duplicate"
    assert counts() == {"decisions": 1, "outcome_events": 1, "webhook_events": 3}


def test_adyen_refusals_change_nothing(client: TestClient, counts: Counts) -> None:
    wrong_key = post_adyen(client, adyen_sign(REFUSED, key="00" * 32))
    assert wrong_key.status_code == 401 and wrong_key.json()["code"] == "invalid_signature"
    tampered = adyen_sign(REFUSED)
    tampered["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = 1
    assert post_adyen(client, tampered).status_code == 401
    unsigned = post_adyen(client, REFUSED)
    assert unsigned.status_code == 401
    empty = post_adyen(client, {"live": "false", "notificationItems": []})
    assert empty.status_code == 422 and empty.json()["field"] == "notificationItems"
    assert counts() == {"decisions": 0, "outcome_events": 0, "webhook_events": 0}
    assert metric(client, "adyen", "rejected") == 4


# Lago

CREATED, FAILURE, PAID, CUSTOMER = saved("lago_webhooks.jsonl")


def test_lago_failure_is_decided_with_the_invoice_sent_before(
    client: TestClient, settings: Settings, counts: Counts
) -> None:
    assert post_lago(client, CREATED, "key-created").json()["result"] == "ignored"
    failed = post_lago(client, FAILURE, "key-failure")
    assert failed.status_code == 200, failed.text
    assert failed.json()["result"] == "decided"
    request = stored_decision_request(client, settings, "1a901a90-1a90-1a90-1a90-1a901a901a90")
    assert request["amount_minor"] == 12000 and request["currency"] == "EUR"
    assert request["decline_code"] == "card_declined" and request["customer_id"] == "customer_5678"
    assert request["customer"] == {"country": "DE", "timezone": "Europe/Berlin"}
    assert post_lago(client, PAID, "key-paid").json()["result"] == "outcome"
    assert post_lago(client, CUSTOMER, "key-customer").json()["result"] == "ignored"
    assert post_lago(client, FAILURE, "key-failure").json()["result"] == "duplicate"
    assert counts() == {"decisions": 1, "outcome_events": 1, "webhook_events": 4}


def test_lago_failure_without_a_known_invoice_is_acknowledged(
    client: TestClient, counts: Counts
) -> None:
    response = post_lago(client, FAILURE, "key-failure")
    assert response.status_code == 200
    assert response.json()["result"] == "ignored" and "invoice unknown" in response.json()["reason"]
    assert counts()["decisions"] == 0


def test_lago_refusals_change_nothing(client: TestClient, counts: Counts) -> None:
    wrong = post_lago(client, CREATED, "k1", secret="other")
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_signature"
    jwt = client.post(
        "/v1/webhooks/lago",
        json=CREATED,
        headers={"X-Lago-Signature": "eyJ.x.y", "X-Lago-Signature-Algorithm": "jwt"},
    )
    assert jwt.status_code == 400 and jwt.json()["code"] == "missing_signature"
    assert post_lago(client, b"[1,", "k2").json()["code"] == "invalid_json"
    malformed = post_lago(client, {"webhook_type": "invoice.payment_failure"}, "k3")
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "payment_provider_invoice_payment_error.lago_invoice_id"
    assert counts() == {"decisions": 0, "outcome_events": 0, "webhook_events": 0}


# card data in a verified event: refused, nothing recorded


def test_events_carrying_card_data_are_refused_and_not_recorded(
    client: TestClient, counts: Counts
) -> None:
    stripe = stripe_event("charge.failed")
    stripe["data"]["object"]["description"] = "card 4242 4242 4242 4242"
    stripe_answer = post_stripe(client, stripe)
    adyen = adyen_sign(REFUSED)
    adyen["notificationItems"][0]["NotificationRequestItem"]["additionalData"]["iban"] = "x"
    adyen_answer = post_adyen(client, adyen)
    lago = json.loads(json.dumps(CREATED))
    lago["invoice"]["customer"]["name"] = "DE89 3704 0044 0532 0130 00"
    lago_answer = post_lago(client, lago, "key-card")
    assert [a.status_code for a in (stripe_answer, adyen_answer, lago_answer)] == [422] * 3
    assert [a.json()["code"] for a in (stripe_answer, adyen_answer, lago_answer)] == [
        "card_number_refused",
        "account_number_refused",
        "iban_refused",
    ]
    assert "4242" not in stripe_answer.text and stripe["id"] not in stripe_answer.text
    assert counts() == {"decisions": 0, "outcome_events": 0, "webhook_events": 0}
    assert metric(client, "stripe", "rejected") == 1
