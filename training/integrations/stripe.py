"""Stripe events (https://docs.stripe.com/api/events) mapped to smartretry's schemas.

Failures (``charge.failed``, ``invoice.payment_failed``) become recommendation requests,
successes (``invoice.paid``, ``payment_intent.succeeded``) attempt outcomes, and
``payment_method.attached`` / ``customer.updated`` (default payment method changed) card
updates. Only charges and payment intents that belong to an invoice are recurring
billing; the others are ignored with a reason.
"""

from __future__ import annotations

import re
from typing import Any

from training.integrations.common import (
    MalformedEvent,
    MappedEvent,
    card_brand,
    card_update,
    from_unix,
    optional,
    require,
)

FAILURES = ("charge.failed", "invoice.payment_failed")
SUCCESSES = ("invoice.paid", "payment_intent.succeeded")
CARD_UPDATES = ("payment_method.attached", "customer.updated")
HANDLED = FAILURES + SUCCESSES + CARD_UPDATES

# Stripe's payment method types in the data contract's vocabulary
PAYMENT_METHODS = {
    "card": "card",
    "sepa_debit": "sepa_debit",
    "bacs_debit": "bacs_debit",
    "us_bank_account": "ach_debit",
}
# the invoice object carries no decline code; Stripe's own code for an unexplained decline
INVOICE_DECLINE_CODE = "generic_decline"


def map_event(event: dict[str, Any]) -> MappedEvent:
    """One Stripe event (the JSON Stripe posts) as a :class:`MappedEvent`."""
    event_id = require(event, "id")
    event_type = require(event, "type")
    obj = require(event, "data.object")
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object", "must be an object")
    if event_type == "charge.failed":
        return _charge_failed(event_id, event_type, obj)
    if event_type == "invoice.payment_failed":
        return _invoice_failed(event_id, event_type, obj, event)
    if event_type in SUCCESSES:
        return _success(event_id, event_type, obj, event)
    if event_type == "payment_method.attached":
        return card_update(
            "stripe", event_id, event_type, _id(require(obj, "customer")), _created(event)
        )
    if event_type == "customer.updated":
        changed = optional(event, "data.previous_attributes") or {}
        if "default_source" in changed or "default_payment_method" in (
            changed.get("invoice_settings") or {}
        ):
            return card_update("stripe", event_id, event_type, require(obj, "id"), _created(event))
        return MappedEvent(
            event_id, event_type, "ignored", reason="default payment method unchanged"
        )
    return MappedEvent(event_id, event_type, "ignored", reason="event type not handled")


def _charge_failed(event_id: str, event_type: str, charge: dict[str, Any]) -> MappedEvent:
    invoice = optional(charge, "invoice")
    if invoice is None:
        return MappedEvent(event_id, event_type, "ignored", reason="charge not for an invoice")
    method_type = optional(charge, "payment_method_details.type") or "card"
    method = PAYMENT_METHODS.get(method_type)
    if method is None:
        return MappedEvent(
            event_id, event_type, "ignored", reason=f"payment method {method_type} not supported"
        )
    # issuer declines carry the decline code in outcome.reason; failure_code is coarser
    decline = optional(charge, "outcome.reason") or require(charge, "failure_code")
    advice = optional(charge, "outcome.network_advice_code")
    request: dict[str, Any] = {
        "invoice_id": _id(invoice),
        "customer_id": _id(require(charge, "customer")),
        "amount_minor": require(charge, "amount"),
        "currency": str(require(charge, "currency")).upper(),
        "payment_method": method,
        "processor": "stripe",
        "decline_code": decline,
        "failed_at": from_unix(require(charge, "created"), "data.object.created"),
    }
    if method == "card":
        request["card_brand"] = card_brand(optional(charge, "payment_method_details.card.brand"))
    if isinstance(advice, str) and re.fullmatch(r"[0-9]{2}", advice):
        request["merchant_advice_code"] = advice
    country = optional(charge, "billing_details.address.country")
    if country:
        request["customer"] = {"country": country}
    return MappedEvent(event_id, event_type, "failure", request=request)


def _invoice_failed(
    event_id: str, event_type: str, invoice: dict[str, Any], event: dict[str, Any]
) -> MappedEvent:
    request: dict[str, Any] = {
        "invoice_id": require(invoice, "id"),
        "customer_id": _id(require(invoice, "customer")),
        "amount_minor": require(invoice, "amount_due"),
        "currency": str(require(invoice, "currency")).upper(),
        "payment_method": "card",
        "card_brand": "other",
        "processor": "stripe",
        "decline_code": INVOICE_DECLINE_CODE,
        "failed_at": from_unix(require(event, "created"), "created"),
    }
    country = optional(invoice, "customer_address.country")
    if country:
        request["customer"] = {"country": country}
    return MappedEvent(event_id, event_type, "failure", request=request)


def _success(
    event_id: str, event_type: str, obj: dict[str, Any], event: dict[str, Any]
) -> MappedEvent:
    if event_type == "invoice.paid":
        invoice_id = require(obj, "id")
        paid_at = optional(obj, "status_transitions.paid_at") or require(event, "created")
        initiated = "customer" if obj.get("collection_method") == "send_invoice" else "merchant"
        attempt = optional(obj, "charge")
    else:
        invoice_id = optional(obj, "invoice")
        if invoice_id is None:
            return MappedEvent(
                event_id, event_type, "ignored", reason="payment intent not for an invoice"
            )
        paid_at = require(obj, "created")
        initiated, attempt = "merchant", require(obj, "id")
    outcome: dict[str, Any] = {
        "event_id": f"stripe:{event_id}",
        "type": "attempt",
        "invoice_id": _id(invoice_id),
        "occurred_at": from_unix(paid_at, "data.object.status_transitions.paid_at"),
        "initiated_by": initiated,
        "outcome": "succeeded",
    }
    if attempt:
        outcome["attempt_id"] = _id(attempt)
    return MappedEvent(event_id, event_type, "outcome", outcome=outcome)


def _created(event: dict[str, Any]) -> str:
    return from_unix(require(event, "created"), "created")


def _id(value: Any) -> str:
    """An id field, whether Stripe sent the id or the expanded object."""
    return str(value["id"]) if isinstance(value, dict) else str(value)
