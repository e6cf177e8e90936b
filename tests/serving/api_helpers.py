"""Shared request bodies and helpers of the serving tests (imported by conftest and tests)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from serving.settings import Settings

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

CONTRACT_REQUEST: dict[str, Any] = {
    "invoice_id": "in_1029",
    "customer_id": "cus_77",
    "amount_minor": 4900,
    "currency": "EUR",
    "payment_method": "card",
    "card_brand": "visa",
    "processor": "stripe",
    "decline_code": "insufficient_funds",
    "merchant_advice_code": None,
    "failed_at": "2026-11-20T14:03:00Z",
    "previous_attempts": [
        {"attempted_at": "2026-11-18T09:00:00Z", "decline_code": "insufficient_funds"}
    ],
    "customer": {
        "country": "NL",
        "timezone": "Europe/Amsterdam",
        "signup_at": "2019-03-01T00:00:00Z",
        "sms_opt_in": True,
    },
    "constraints": {
        "max_retries": 4,
        "window_days": 14,
        "max_messages": 3,
        "channels": ["email", "sms"],
    },
}


def request_body(**changes: Any) -> dict[str, Any]:
    """The contract's example request with top-level fields changed (None removes one)."""
    body = copy.deepcopy(CONTRACT_REQUEST)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": [API_KEY],
        "database_url": f"sqlite:///{tmp_path / 'store' / 'smartretry.sqlite'}",
        "model": None,
        "max_body_bytes": 2_000_000,
    }
    values.update(changes)
    return Settings(**values)


def post_json(client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None):
    return client.post(
        path,
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
    )


def flush_decisions(client: TestClient) -> None:
    """Wait until the app's decision writer has stored every decision answered so far
    (decisions are written after the answer: serving.store.decision_writer)."""
    writer = client.app.state.decision_writer
    if writer is not None:
        assert writer.flush(timeout=30), "decisions still queued after 30 s"


RESPONSE_FIELDS = {
    "invoice_id",
    "model_version",
    "decline",
    "retries",
    "messages",
    "expected_recovery_probability",
    "baseline_recovery_probability",
    "decision_id",
    "propensity",
    "reasons",
    "fallback",
}


def check_contract_rules(request: dict[str, Any], response: dict[str, Any]) -> None:
    """The API contract's promises about one response, checked from the outside."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    assert RESPONSE_FIELDS <= set(response), RESPONSE_FIELDS - set(response)
    assert response["invoice_id"] == request["invoice_id"]
    assert response["decline"]["retryable"] in ("yes", "no", "after_update")
    constraints = request.get("constraints") or {}
    customer = request.get("customer") or {}
    failed = datetime.fromisoformat(request["failed_at"])
    end = failed + timedelta(days=constraints.get("window_days", 14))
    retries = [datetime.fromisoformat(r["at"]) for r in response["retries"]]
    assert retries == sorted(retries)
    assert all(failed < at <= end for at in retries)
    assert len(retries) <= constraints.get("max_retries", 4)
    if response["decline"]["retryable"] == "no":
        assert retries == []
    sends = [datetime.fromisoformat(m["send_at"]) for m in response["messages"]]
    assert sends == sorted(sends)
    assert len(sends) <= constraints.get("max_messages", 3)
    zone = ZoneInfo(customer.get("timezone") or "UTC")
    for message, at in zip(response["messages"], sends, strict=True):
        assert failed <= at <= end
        assert 8 <= at.astimezone(zone).hour < 21, f"message in quiet hours: {message}"
        assert message["channel"] in constraints.get("channels", ["email", "sms"])
        if message["channel"] == "sms":
            assert customer.get("sms_opt_in") is True
    assert 0 < response["propensity"] <= 1
    assert response["decision_id"]
    assert response["reasons"] and all(isinstance(r, str) for r in response["reasons"])
