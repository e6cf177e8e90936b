"""Lago webhooks (https://getlago.com/docs/api-reference/webhooks/messages) mapped to
smartretry's schemas.

``invoice.payment_failure`` (object ``payment_provider_invoice_payment_error``) carries the
provider's error but not the invoice's amount, so it is mapped together with the invoice
object Lago sent before (``invoice.created`` / ``invoice.payment_status_updated``), which
the caller keeps. ``invoice.payment_status_updated`` with ``payment_status`` "succeeded"
becomes an attempt outcome."""

from __future__ import annotations

from typing import Any

from training.integrations.common import MappedEvent, optional, require

INVOICE_EVENTS = ("invoice.created", "invoice.payment_status_updated")
FAILURE = "invoice.payment_failure"

# Lago payment providers in the contract's vocabulary: (processor, payment method)
PROVIDERS = {
    "stripe": ("stripe", "card"),
    "adyen": ("adyen", "card"),
    "gocardless": ("sepa", "sepa_debit"),
}


def invoice_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The invoice object an invoice event carries (None for other events)."""
    if body.get("webhook_type") in INVOICE_EVENTS and isinstance(body.get("invoice"), dict):
        return body["invoice"]
    return None


def failed_invoice_id(body: dict[str, Any]) -> str | None:
    if body.get("webhook_type") != FAILURE:
        return None
    return str(require(body, "payment_provider_invoice_payment_error.lago_invoice_id"))


def map_event(
    body: dict[str, Any], event_id: str, received_at: str, invoice: dict[str, Any] | None
) -> MappedEvent:
    """One Lago webhook; ``event_id`` is Lago's ``X-Lago-Unique-Key``, ``received_at`` the
    failure time (Lago's error object has none), ``invoice`` the failed invoice's last
    invoice object (failures only)."""
    event_type = require(body, "webhook_type")
    if event_type == FAILURE:
        return _failure(body, event_id, received_at, invoice)
    if event_type == "invoice.payment_status_updated":
        sent = require(body, "invoice")
        if require(sent, "payment_status") != "succeeded":
            return MappedEvent(event_id, event_type, "ignored", reason="payment not succeeded")
        outcome = {
            "event_id": f"lago:{event_id}",
            "type": "attempt",
            "invoice_id": require(sent, "lago_id"),
            "occurred_at": optional(sent, "updated_at") or received_at,
            "initiated_by": "merchant",
            "outcome": "succeeded",
        }
        return MappedEvent(event_id, event_type, "outcome", outcome=outcome)
    if event_type == "invoice.created":
        return MappedEvent(event_id, event_type, "ignored", reason="invoice kept for failures")
    return MappedEvent(event_id, event_type, "ignored", reason="event type not handled")


def _failure(
    body: dict[str, Any], event_id: str, received_at: str, invoice: dict[str, Any] | None
) -> MappedEvent:
    error = require(body, "payment_provider_invoice_payment_error")
    if invoice is None:
        return MappedEvent(
            event_id, FAILURE, "ignored", reason="invoice unknown (no invoice.created received)"
        )
    provider = str(optional(error, "payment_provider") or "")
    processor, method = PROVIDERS.get(provider, ("stripe", "card"))
    request: dict[str, Any] = {
        "invoice_id": require(error, "lago_invoice_id"),
        "customer_id": optional(error, "external_customer_id")
        or require(error, "lago_customer_id"),
        "amount_minor": require(invoice, "total_amount_cents"),
        "currency": require(invoice, "currency"),
        "payment_method": method,
        "processor": processor,
        "decline_code": optional(error, "provider_error.decline_code")
        or require(error, "provider_error.error_code"),
        "failed_at": received_at,
    }
    if method == "card":
        request["card_brand"] = "other"  # Lago does not send the card brand
    customer = {
        k: v
        for k, v in {
            "country": optional(invoice, "customer.country"),
            "timezone": optional(invoice, "customer.timezone"),
        }.items()
        if v
    }
    if customer:
        request["customer"] = customer
    return MappedEvent(event_id, FAILURE, "failure", request=request)
