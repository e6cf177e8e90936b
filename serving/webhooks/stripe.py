"""``POST /v1/webhooks/stripe``: the ``Stripe-Signature`` header checked with the official
``stripe`` package (endpoint secret, timestamp tolerance), then the event ingested."""

from __future__ import annotations

import stripe
from fastapi import Request
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
from training.integrations.common import MalformedEvent
from training.integrations.stripe import map_event

SOURCE = "stripe"


@webhooks.post("/stripe", response_model=WebhookAck)
async def stripe_webhook(
    request: Request, settings: SettingsDep, services: DecisionServicesDep
) -> WebhookAck:
    """Stripe events: failures get a stored recommendation, successes and card updates
    are recorded; replays answer ``duplicate``. See docs/integrations.md."""
    secret = configured_secret(settings.stripe_webhook_secret, "SMARTRETRY_STRIPE_WEBHOOK_SECRET")
    metrics = services.metrics
    payload = await read_body(request, settings.max_body_bytes)
    header = request.headers.get("stripe-signature")
    if not header:
        raise rejected(
            metrics, SOURCE, 400, "missing_signature", "Stripe-Signature header required"
        )
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8", errors="replace"),
            header,
            secret,
            settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError as error:
        if "tolerance" in str(error):
            raise rejected(
                metrics,
                SOURCE,
                401,
                "stale_timestamp",
                "Stripe-Signature timestamp is older than "
                f"{settings.stripe_webhook_tolerance_seconds} s (a replay, or a clock off)",
            ) from None
        raise rejected(
            metrics, SOURCE, 401, "invalid_signature", "Stripe-Signature does not verify"
        ) from None
    event = parse_json_object(payload)
    refuse_card_data(metrics, SOURCE, event)
    try:
        mapped = map_event(event)
    except MalformedEvent as error:
        raise malformed(metrics, SOURCE, error) from None
    return await run_in_threadpool(ingest, services, settings.max_outcome_events, SOURCE, mapped)
