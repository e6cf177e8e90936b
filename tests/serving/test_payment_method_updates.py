"""Card updates as outcomes: a ``payment_method_updated`` event (posted to /v1/outcomes or
stored from a billing system's card-update webhook) lets a later recommendation retry an
``after_update`` decline of that customer; the request field
``payment_method_updated_at`` says the same directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import AUTH, flush_decisions, make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import select
from webhook_helpers import STRIPE_SECRET, post_stripe, stripe_event

from serving.app import create_app
from serving.export import export_history
from serving.settings import Settings
from serving.store.db import make_engine
from serving.store.models import OutcomeEvent

CUSTOMER = "cus_R2xYz0AbCdEf12"  # whose card the saved payment_method.attached event updates
UPDATED_AT = "2025-11-25T19:46:41Z"  # that event's ``created``


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, stripe_webhook_secret=STRIPE_SECRET)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def expired_card(customer_id: str = CUSTOMER, **changes) -> dict:
    """An expired-card failure before the update (its first attempt on 2025-11-24)."""
    fields = {
        "customer_id": customer_id,
        "decline_code": "expired_card",
        "failed_at": "2025-11-25T10:00:00Z",
        "previous_attempts": [
            {"attempted_at": "2025-11-24T10:00:00Z", "decline_code": "expired_card"}
        ],
    }
    return request_body(**{**fields, **changes})


def recommend(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/recommendations", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def updated_reason(answer: dict) -> bool:
    """The rules allowed the retries because of a reported update (rule
    ``payment_method_updated``), not once an update is merely plausible."""
    rules = [reason for reason in answer["reasons"] if reason.startswith("rule: ")]
    if any("the payment method was updated: retry allowed" in reason for reason in rules):
        return True
    assert any("no retry until an update is plausible" in reason for reason in rules), rules
    return False


def test_without_an_update_an_expired_card_is_not_retried(client: TestClient) -> None:
    answer = recommend(client, expired_card())
    assert answer["decline"]["retryable"] == "after_update" and not updated_reason(answer)


def test_card_update_webhook_makes_a_later_recommendation_retry(
    client: TestClient, settings: Settings
) -> None:
    ack = post_stripe(client, stripe_event("payment_method.attached"))
    assert ack.status_code == 200 and ack.json()["result"] == "card_update"
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        [row] = conn.execute(select(OutcomeEvent.__table__)).mappings()
    engine.dispose()
    assert (row["type"], row["customer_id"], row["invoice_id"]) == (
        "payment_method_updated",
        CUSTOMER,
        None,
    )

    answer = recommend(client, expired_card())
    assert answer["retries"] and updated_reason(answer)
    # the data contract has no table for card updates: the export leaves them out
    flush_decisions(client)
    engine = make_engine(settings.database_url)
    history, counts = export_history(engine)
    engine.dispose()
    assert counts["events_for_unknown_invoices"] == 0 and len(history.invoices) == 1
    # another customer's expired card is still waiting for its update
    other = recommend(client, expired_card("cus_other", invoice_id="in_other"))
    assert not updated_reason(other)
    # an update older than the charge's first attempt does not count
    older = recommend(
        client,
        expired_card(
            failed_at="2025-11-27T10:00:00Z",
            previous_attempts=[{"attempted_at": "2025-11-26T10:00:00Z"}],
        ),
    )
    assert not updated_reason(older)


def test_outcome_event_by_invoice_and_request_field(client: TestClient) -> None:
    event = {
        "event_id": "pmu_1",
        "type": "payment_method_updated",
        "invoice_id": "in_1029",
        "occurred_at": UPDATED_AT,
    }
    stored = post_json(client, "/v1/outcomes", {"events": [event]})
    assert stored.status_code == 200 and stored.json() == {"accepted": 1, "duplicates": 0}
    assert updated_reason(recommend(client, expired_card("cus_any")))  # invoice in_1029
    # the request's own field wins over the store: an update before the first attempt
    stale = recommend(
        client, expired_card("cus_any", payment_method_updated_at="2025-11-01T00:00:00Z")
    )
    assert not updated_reason(stale)
    direct = recommend(
        client, expired_card("cus_new", invoice_id="in_new", payment_method_updated_at=UPDATED_AT)
    )
    assert direct["retries"] and updated_reason(direct)


def test_update_naming_no_one_is_refused(client: TestClient) -> None:
    event = {"event_id": "pmu_2", "type": "payment_method_updated", "occurred_at": UPDATED_AT}
    response = post_json(client, "/v1/outcomes", {"events": [event]})
    assert response.status_code == 422
    assert response.json() == {
        "code": "customer_or_invoice_required",
        "message": "events[0].customer_id: customer_id or invoice_id is required",
        "field": "events[0].customer_id",
    }
