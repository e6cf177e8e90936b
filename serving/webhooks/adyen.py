"""``POST /v1/webhooks/adyen``: every notification item's HMAC signature checked the way
Adyen documents it (HMAC-SHA256 with the hex key over the item's fields joined by ':',
base64, in ``additionalData.hmacSignature``), then each item ingested."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from serving.body import parse_json_object, read_body
from serving.dependencies import DecisionServicesDep, SettingsDep
from serving.webhooks.common import (
    WebhookAck,
    configured_secret,
    ingest,
    malformed,
    refuse_card_data,
    rejected,
    webhooks,
)
from training.integrations.adyen import map_item
from training.integrations.common import MalformedEvent

SOURCE = "adyen"


class AdyenAck(BaseModel):
    """Adyen expects a 2xx with ``[accepted]``; the items say what was done with each."""

    notificationResponse: str = "[accepted]"
    items: list[WebhookAck]


def signing_string(item: dict[str, Any]) -> str:
    """Adyen's signed fields in order; a missing one is an empty string."""
    amount = item.get("amount") or {}
    fields = (
        item.get("pspReference"),
        item.get("originalReference"),
        item.get("merchantAccountCode"),
        item.get("merchantReference"),
        amount.get("value"),
        amount.get("currency"),
        item.get("eventCode"),
        item.get("success"),
    )
    return ":".join("" if f is None else str(f) for f in fields)


def item_signature(item: dict[str, Any], hex_key: str) -> str:
    key = binascii.unhexlify(hex_key)
    digest = hmac.new(key, signing_string(item).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("notificationItems")
    if not isinstance(raw, list) or not raw:
        raise MalformedEvent("notificationItems", "a non-empty list is required")
    items = [
        entry.get("NotificationRequestItem") if isinstance(entry, dict) else None for entry in raw
    ]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedEvent(
                f"notificationItems[{i}].NotificationRequestItem", "field required"
            )
    return items  # type: ignore[return-value]


@webhooks.post("/adyen", response_model=AdyenAck)
async def adyen_webhook(
    request: Request, settings: SettingsDep, services: DecisionServicesDep
) -> AdyenAck:
    """Adyen standard notifications: a refused AUTHORISATION gets a stored recommendation,
    an accepted one is recorded as an outcome; replays answer ``duplicate``."""
    hex_key = configured_secret(settings.adyen_hmac_key, "SMARTRETRY_ADYEN_HMAC_KEY")
    metrics = services.metrics
    body = parse_json_object(await read_body(request, settings.max_body_bytes))
    try:
        items = _items(body)
    except MalformedEvent as error:
        raise malformed(metrics, SOURCE, error) from None
    for item in items:  # every item verified before any is acted on
        given = (item.get("additionalData") or {}).get("hmacSignature")
        if not isinstance(given, str) or not hmac.compare_digest(
            given, item_signature(item, hex_key)
        ):
            raise rejected(
                metrics,
                SOURCE,
                401,
                "invalid_signature",
                "additionalData.hmacSignature does not verify",
            )
    refuse_card_data(metrics, SOURCE, body)
    try:
        mapped = [map_item(item) for item in items]
    except MalformedEvent as error:
        raise malformed(metrics, SOURCE, error) from None
    acks = [
        await run_in_threadpool(ingest, services, settings.max_outcome_events, SOURCE, m)
        for m in mapped
    ]
    return AdyenAck(items=acks)
