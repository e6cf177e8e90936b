"""What every webhook route shares: the router, the secret check, and :func:`ingest`, which
records the event once and hands it to the API's own decision or outcome path."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, SecretStr

from serving.dependencies import DecisionServices
from serving.metrics import Metrics
from serving.routes import answer, store_outcomes
from serving.store.health import UNREACHABLE_ERRORS
from serving.store.webhook_ledger import claim_event, release_event
from training.api.errors import ApiError
from training.api.schemas import ErrorBody, ItemError
from training.api.sensitive import scan
from training.integrations.common import MalformedEvent, MappedEvent

Result = Literal["decided", "outcome", "card_update", "ignored", "duplicate"]
RESULTS: dict[str, Result] = {
    "failure": "decided",
    "outcome": "outcome",
    "card_update": "card_update",
    "ignored": "ignored",
}

WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "body is not JSON, or a signature header is missing",
        401: "invalid signature, or (Stripe) timestamp outside the tolerance",
        404: "this webhook's secret is not configured",
        413: "body larger than the limit",
        503: "the store is unreachable (Retry-After: seconds)",
        422: "event lacks a field it needs, maps to an invalid request, or carries card "
        "data (field names it)",
    }.items()
}

webhooks = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=WEBHOOK_ERRORS)


class WebhookAck(BaseModel):
    """The answer to one event: what smartretry did with it."""

    event_id: str
    event_type: str
    result: Result
    decision_id: str | None = None
    reason: str | None = None


def configured_secret(secret: SecretStr | None, setting: str) -> str:
    """The secret's value; 404 when unset (the route does not exist for the sender)."""
    if secret is None or not secret.get_secret_value():
        raise ApiError(404, "webhook_not_configured", f"webhook not configured ({setting})")
    return secret.get_secret_value()


def rejected(metrics: Metrics, source: str, status: int, code: str, message: str) -> ApiError:
    metrics.webhook_events.labels(source, "rejected").inc()
    return ApiError(status, code, message)


def refuse_card_data(metrics: Metrics, source: str, body: Any) -> None:
    """422 when a verified event carries a card number, security code or IBAN anywhere
    (:func:`training.api.sensitive.scan`): nothing of it is recorded, not even its id."""
    try:
        scan(body)
    except ApiError:
        metrics.webhook_events.labels(source, "rejected").inc()
        raise


def malformed(metrics: Metrics, source: str, error: MalformedEvent) -> ApiError:
    metrics.webhook_events.labels(source, "rejected").inc()
    return ApiError(422, "malformed_event", str(error), error.field)


def ingest(
    services: DecisionServices,
    max_outcome_events: int,
    source: str,
    mapped: MappedEvent,
    object_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> WebhookAck:
    """Claim the event in the ledger (a replay answers ``duplicate`` and changes nothing),
    then decide a failure like ``POST /v1/recommendations`` or store an outcome like
    ``POST /v1/outcomes``. A failure to do so releases the claim, so the sender's retry is
    handled, and answers the API's own error. A card update is stored as its
    ``payment_method_updated`` outcome event."""
    metrics = services.metrics
    try:
        claimed = claim_event(
            services.engine,
            source,
            mapped.event_id,
            mapped.event_type,
            mapped.kind,
            object_id or mapped.customer_id,
            detail,
        )
    except UNREACHABLE_ERRORS as error:  # the sender retries a 503 later
        services.health.failed(error)
        metrics.webhook_events.labels(source, "rejected").inc()
        raise ApiError(
            503,
            "store_unavailable",
            "the store is unreachable; the event was not recorded: send it again later",
            None,
            {"Retry-After": "5"},
        ) from None
    if not claimed:
        metrics.webhook_events.labels(source, "duplicate").inc()
        return WebhookAck(
            event_id=mapped.event_id, event_type=mapped.event_type, result="duplicate"
        )
    decision_id = None
    try:
        if mapped.kind == "failure" and mapped.request is not None:
            [result] = answer(services, [mapped.request], "")
            if isinstance(result, ItemError):
                raise ApiError(422, result.error.code, result.error.message, result.error.field)
            decision_id = result.decision_id
        elif mapped.kind in ("outcome", "card_update") and mapped.outcome is not None:
            store_outcomes(
                services.engine,
                metrics,
                {"events": [mapped.outcome]},
                max_outcome_events,
                services.health,
            )
    except Exception:
        release_event(services.engine, source, mapped.event_id)
        metrics.webhook_events.labels(source, "rejected").inc()
        raise
    result_name = RESULTS[mapped.kind]
    metrics.webhook_events.labels(source, result_name).inc()
    return WebhookAck(
        event_id=mapped.event_id,
        event_type=mapped.event_type,
        result=result_name,
        decision_id=decision_id,
        reason=mapped.reason,
    )
