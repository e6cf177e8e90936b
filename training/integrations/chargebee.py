"""Chargebee events (API v2, https://apidocs.chargebee.com/docs/api/events) mapped to
smartretry's schemas: ``payment_failed`` becomes a recommendation request,
``payment_succeeded`` an attempt outcome, ``card_updated`` / ``payment_source_updated``
a card update. The transaction's ``gateway`` names the processor; a transaction's first
linked invoice is the invoice."""

from __future__ import annotations

from typing import Any

from training.integrations.common import (
    MappedEvent,
    card_brand,
    card_update,
    from_unix,
    optional,
    require,
)

CARD_UPDATES = ("card_updated", "payment_source_updated")
# Chargebee gateways and payment methods in the contract's vocabulary
GATEWAYS = {"stripe": "stripe", "adyen": "adyen", "braintree": "braintree"}
METHODS = {"card": "card", "direct_debit": "sepa_debit"}


def map_event(event: dict[str, Any]) -> MappedEvent:
    event_id = require(event, "id")
    event_type = require(event, "event_type")
    content = require(event, "content")
    if event_type in CARD_UPDATES:
        return card_update(
            "chargebee",
            event_id,
            event_type,
            require(content, "customer.id"),
            from_unix(require(event, "occurred_at"), "occurred_at"),
        )
    if event_type not in ("payment_failed", "payment_succeeded"):
        return MappedEvent(event_id, event_type, "ignored", reason="event type not handled")
    txn = require(content, "transaction")
    linked = optional(txn, "linked_invoices") or []
    if not linked:
        return MappedEvent(event_id, event_type, "ignored", reason="payment not for an invoice")
    invoice_id = require(linked[0], "invoice_id")
    when = from_unix(require(txn, "date"), "content.transaction.date")
    if event_type == "payment_succeeded":
        outcome = {
            "event_id": f"chargebee:{event_id}",
            "type": "attempt",
            "invoice_id": invoice_id,
            "attempt_id": require(txn, "id"),
            "occurred_at": when,
            "initiated_by": "merchant",
            "outcome": "succeeded",
        }
        return MappedEvent(event_id, event_type, "outcome", outcome=outcome)
    gateway = GATEWAYS.get(str(optional(txn, "gateway")))
    method = METHODS.get(str(optional(txn, "payment_method")))
    if gateway is None or method is None:
        return MappedEvent(
            event_id, event_type, "ignored", reason="gateway or payment method not supported"
        )
    request: dict[str, Any] = {
        "invoice_id": invoice_id,
        "customer_id": require(txn, "customer_id"),
        "amount_minor": require(txn, "amount"),
        "currency": require(txn, "currency_code"),
        "payment_method": method,
        "processor": "sepa" if method == "sepa_debit" else gateway,
        "decline_code": require(txn, "error_code"),
        "failed_at": when,
    }
    if method == "card":
        request["card_brand"] = card_brand(optional(content, "card.card_type"))
    country = optional(content, "customer.billing_address.country") or optional(
        content, "invoice.billing_address.country"
    )
    if country:
        request["customer"] = {"country": country}
    return MappedEvent(event_id, event_type, "failure", request=request)
