"""Saved vendor events and senders that sign them the way each vendor documents it
(written here independently of the app's verification code)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "integrations"
STRIPE_SECRET = "whsec_test_5f1c0ffee0ddba11"
ADYEN_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
LAGO_SECRET = "lago_hmac_test_secret_0123"


def saved(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def stripe_event(event_type: str) -> dict[str, Any]:
    [event] = [e for e in saved("stripe_events.jsonl") if e["type"] == event_type]
    return event


def post_stripe(
    client: TestClient,
    event: dict[str, Any] | bytes,
    *,
    secret: str = STRIPE_SECRET,
    timestamp: int | None = None,
):
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    v1 = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return client.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": f"t={ts},v1={v1}"},
    )


def adyen_sign(notification: dict[str, Any], key: str = ADYEN_KEY) -> dict[str, Any]:
    """The notification with each item's ``additionalData.hmacSignature`` set."""
    signed = json.loads(json.dumps(notification))
    for entry in signed["notificationItems"]:
        item = entry["NotificationRequestItem"]
        amount = item.get("amount", {})
        fields = [
            item.get("pspReference", ""),
            item.get("originalReference", ""),
            item.get("merchantAccountCode", ""),
            item.get("merchantReference", ""),
            str(amount.get("value", "")),
            amount.get("currency", ""),
            item.get("eventCode", ""),
            item.get("success", ""),
        ]
        mac = hmac.new(binascii.unhexlify(key), ":".join(fields).encode(), hashlib.sha256)
        item.setdefault("additionalData", {})["hmacSignature"] = base64.b64encode(
            mac.digest()
        ).decode()
    return signed


def post_adyen(client: TestClient, notification: dict[str, Any]):
    return client.post("/v1/webhooks/adyen", json=notification)


def post_lago(
    client: TestClient,
    body: dict[str, Any] | bytes,
    unique_key: str,
    *,
    secret: str = LAGO_SECRET,
):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    sig = base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()
    return client.post(
        "/v1/webhooks/lago",
        content=payload,
        headers={
            "Content-Type": "application/json",
            "X-Lago-Signature": sig,
            "X-Lago-Signature-Algorithm": "hmac",
            "X-Lago-Unique-Key": unique_key,
        },
    )
