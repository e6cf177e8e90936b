"""Adyen standard notifications (https://docs.adyen.com/development-resources/webhooks)
mapped to smartretry's schemas: a refused ``AUTHORISATION`` (``success`` "false") becomes a
recommendation request, an accepted one an attempt outcome; other event codes are ignored.

An item's id is ``pspReference:eventCode:success`` (Adyen may send the same notification
more than once; Adyen's own guidance is to deduplicate on these fields)."""

from __future__ import annotations

from typing import Any

from training.integrations.common import MappedEvent, card_brand, optional, require

# Adyen paymentMethod values that are not cards, in the contract's vocabulary
NON_CARD_METHODS = {
    "sepadirectdebit": "sepa_debit",
    "directdebit_GB": "bacs_debit",
    "ach": "ach_debit",
}


def item_id(item: dict[str, Any]) -> str:
    return (
        f"{require(item, 'pspReference')}:{require(item, 'eventCode')}:{require(item, 'success')}"
    )


def map_item(item: dict[str, Any]) -> MappedEvent:
    """One ``NotificationRequestItem`` as a :class:`MappedEvent`."""
    event_id = item_id(item)
    event_code = require(item, "eventCode")
    if event_code != "AUTHORISATION":
        return MappedEvent(event_id, event_code, "ignored", reason="event code not handled")
    success = require(item, "success")
    if success == "true":
        outcome: dict[str, Any] = {
            "event_id": f"adyen:{event_id}",
            "type": "attempt",
            "invoice_id": require(item, "merchantReference"),
            "attempt_id": require(item, "pspReference"),
            "occurred_at": require(item, "eventDate"),
            "initiated_by": _initiated_by(item),
            "outcome": "succeeded",
        }
        return MappedEvent(event_id, event_code, "outcome", outcome=outcome)
    raw_method = str(optional(item, "paymentMethod") or "")
    method = NON_CARD_METHODS.get(raw_method, "card")
    request: dict[str, Any] = {
        "invoice_id": require(item, "merchantReference"),
        "customer_id": require(item, "additionalData.shopperReference"),
        "amount_minor": require(item, "amount.value"),
        "currency": require(item, "amount.currency"),
        "payment_method": method,
        "processor": "adyen",
        # the numeric refusal reason when the account sends it, else the reason text
        "decline_code": optional(item, "additionalData.refusalReasonCode")
        or require(item, "reason"),
        "failed_at": require(item, "eventDate"),
    }
    if method == "card":
        request["card_brand"] = card_brand(raw_method)
    country = optional(item, "additionalData.shopperCountry") or optional(
        item, "additionalData.cardIssuingCountry"
    )
    if country:
        request["customer"] = {"country": country}
    return MappedEvent(event_id, event_code, "failure", request=request)


def _initiated_by(item: dict[str, Any]) -> str:
    """A recurring (``ContAuth``) charge is the merchant's; an e-commerce one the shopper's."""
    interaction = optional(item, "additionalData.shopperInteraction")
    return "customer" if interaction == "Ecommerce" else "merchant"
