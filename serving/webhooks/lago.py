"""``POST /v1/webhooks/lago``: Lago's HMAC signature checked (``X-Lago-Signature`` is the
base64 HMAC-SHA256 of the raw body with the webhook secret, ``X-Lago-Signature-Algorithm``
``hmac``), deduplicated by ``X-Lago-Unique-Key``, then ingested."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from serving.body import parse_json_object, read_body
from serving.dependencies import DecisionServicesDep, SettingsDep
from serving.store.webhook_ledger import latest_detail
from serving.webhooks.common import (
    WebhookAck,
    configured_secret,
    ingest,
    malformed,
    refuse_card_data,
    rejected,
    webhooks,
)
from training.integrations.common import MalformedEvent, require
from training.integrations.lago import failed_invoice_id, invoice_of, map_event

SOURCE = "lago"


def signature(payload: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@webhooks.post("/lago", response_model=WebhookAck)
async def lago_webhook(
    request: Request, settings: SettingsDep, services: DecisionServicesDep
) -> WebhookAck:
    """Lago webhooks: ``invoice.payment_failure`` gets a stored recommendation (with the
    invoice from the earlier ``invoice.created``), a succeeded payment status an outcome."""
    secret = configured_secret(settings.lago_webhook_secret, "SMARTRETRY_LAGO_WEBHOOK_SECRET")
    metrics = services.metrics
    payload = await read_body(request, settings.max_body_bytes)
    algorithm = request.headers.get("x-lago-signature-algorithm")
    given = request.headers.get("x-lago-signature")
    if not given or algorithm != "hmac":
        raise rejected(
            metrics,
            SOURCE,
            400,
            "missing_signature",
            "X-Lago-Signature with X-Lago-Signature-Algorithm: hmac required "
            "(create the Lago endpoint with the hmac signature)",
        )
    if not hmac.compare_digest(given, signature(payload, secret)):
        raise rejected(
            metrics, SOURCE, 401, "invalid_signature", "X-Lago-Signature does not verify"
        )
    unique_key = request.headers.get("x-lago-unique-key")
    if not unique_key:
        raise rejected(metrics, SOURCE, 400, "missing_unique_key", "X-Lago-Unique-Key required")
    body = parse_json_object(payload)
    refuse_card_data(metrics, SOURCE, body)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    try:
        invoice = invoice_of(body)
        failed = failed_invoice_id(body)
        known = (
            await run_in_threadpool(latest_detail, services.engine, SOURCE, failed)
            if failed
            else None
        )
        mapped = map_event(body, unique_key, now, known)
        object_id = str(require(invoice, "lago_id")) if invoice is not None else None
    except MalformedEvent as error:
        raise malformed(metrics, SOURCE, error) from None
    return await run_in_threadpool(
        ingest, services, settings.max_outcome_events, SOURCE, mapped, object_id, invoice
    )
