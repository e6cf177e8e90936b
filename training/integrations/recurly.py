"""Recurly API v2021 objects (https://recurly.com/developers/api/v2021-02-25/) mapped to
smartretry's schemas.

The export is what Recurly's list endpoints return, saved one object per line (or one
list page, ``{"object": "list", "data": [...]}``, per line): accounts and invoices first,
then transactions. Recurly's JSON webhooks carry only ids, so saved API objects are the
full record.

A ``purchase`` / ``capture`` transaction of an invoice is an attempt: ``status``
``declined`` or ``error`` a failure, ``success`` a success; every other type and status
is ignored with a reason. Decline codes: Recurly's ``status_code`` is Recurly's own
vocabulary, which the decline table (training/declines/reference.csv) does not list, so
the failure carries the gateway's own code (``gateway_response_code``) with the gateway
as processor when the gateway is one the contract knows (Stripe, Adyen, Braintree) or the
payment is a bank debit (SEPA, Bacs, ACH). Without a gateway code, Recurly's
``status_code`` is used as is: a code the table does not know is answered conservatively
by the rules engine (docs/declines.md). A card paid through any other gateway cannot be
given a processor of the data contract and is ignored with a reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.numbers import get_currency_precision

from training.integrations.common import (
    MalformedEvent,
    MappedEvent,
    card_brand,
    optional,
    require,
)

ATTEMPT_TYPES = ("purchase", "capture")
FAILED = ("declined", "error")
# Recurly gateway types (``payment_gateway.type``) in the contract's vocabulary
GATEWAYS = {"stripe": "stripe", "adyen": "adyen", "braintree_blue": "braintree"}
# Recurly payment method objects: (payment method, processor; None: the card's gateway)
METHODS: dict[str, tuple[str, str | None]] = {
    "credit_card": ("card", None),
    "sepadirectdebit": ("sepa_debit", "sepa"),
    "iban_bank_account": ("sepa_debit", "sepa"),
    "bacs": ("bacs_debit", "bacs"),
    "bank_account_info": ("ach_debit", "ach"),
}
# Recurly origins a customer starts (hosted pages, Recurly.js); the others are the merchant's
CUSTOMER_ORIGINS = ("hpp", "recurlyjs", "transparent", "token_api")


def objects_of(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects one saved line holds (a list page holds several)."""
    if line.get("object") == "list":
        data = require(line, "data")
        if not isinstance(data, list):
            raise MalformedEvent("data", "must be a list")
        return [item for item in data if isinstance(item, dict)]
    return [line]


def account_country(account: dict[str, Any]) -> str | None:
    """An account object's country: its address, else its billing info's address."""
    return optional(account, "address.country") or optional(account, "billing_info.address.country")


def amount_minor(amount: Any, currency: str, path: str) -> int:
    """Recurly's decimal amount in minor units (the currency's ISO 4217 exponent, CLDR)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise MalformedEvent(path, "must be a number")
    return round(amount * 10 ** get_currency_precision(currency))


def iso_time(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise MalformedEvent(path, "must be an ISO 8601 timestamp")
    try:
        datetime.fromisoformat(value)
    except ValueError as error:
        raise MalformedEvent(path, "must be an ISO 8601 timestamp") from error
    return value


def map_transaction(txn: dict[str, Any], country: str | None = None) -> MappedEvent:
    """One transaction object; ``country``: its account's, when the export holds the account."""
    event_id = require(txn, "id")
    kind = f"transaction.{require(txn, 'status')}"
    status = txn["status"]
    if txn.get("type") not in ATTEMPT_TYPES:
        return MappedEvent(event_id, kind, "ignored", reason=f"{txn.get('type')} transaction")
    invoice_id = optional(txn, "invoice.id")
    if invoice_id is None:
        return MappedEvent(event_id, kind, "ignored", reason="transaction not for an invoice")
    # collected_at: when collected, else when the transaction was created (Recurly's docs)
    when = iso_time(optional(txn, "collected_at") or require(txn, "created_at"), "collected_at")
    if status == "success":
        outcome = {
            "event_id": f"recurly:{event_id}",
            "type": "attempt",
            "invoice_id": invoice_id,
            "attempt_id": event_id,
            "occurred_at": when,
            "initiated_by": "customer" if txn.get("origin") in CUSTOMER_ORIGINS else "merchant",
            "outcome": "succeeded",
        }
        return MappedEvent(event_id, kind, "outcome", outcome=outcome)
    if status not in FAILED:
        return MappedEvent(event_id, kind, "ignored", reason=f"status {status} is not an outcome")
    raw_method = str(optional(txn, "payment_method.object"))
    if raw_method not in METHODS:
        return MappedEvent(
            event_id, kind, "ignored", reason=f"payment method {raw_method} not supported"
        )
    method, processor = METHODS[raw_method]
    gateway = str(optional(txn, "payment_gateway.type"))
    processor = processor or GATEWAYS.get(gateway)
    if processor is None:
        return MappedEvent(
            event_id,
            kind,
            "ignored",
            reason=f"card gateway {gateway} is not a processor of the data contract",
        )
    gateway_code = optional(txn, "gateway_response_code")
    currency = str(require(txn, "currency")).upper()
    request: dict[str, Any] = {
        "invoice_id": invoice_id,
        "customer_id": optional(txn, "account.code") or require(txn, "account.id"),
        "amount_minor": amount_minor(require(txn, "amount"), currency, "amount"),
        "currency": currency,
        "payment_method": method,
        "processor": processor,
        "decline_code": gateway_code or require(txn, "status_code"),
        "failed_at": when,
    }
    if method == "card":
        request["card_brand"] = card_brand(optional(txn, "payment_method.card_type"))
    country = optional(txn, "billing_address.country") or country
    if country:
        request["customer"] = {"country": country}
    extra = {} if gateway_code else {"recurly_status_code": True}
    return MappedEvent(event_id, kind, "failure", request=request, extra=extra)
