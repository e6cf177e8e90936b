"""Stripe events written from a simulated history, the way Stripe would have sent them
(a test bench for the importer: simulated history -> Stripe events -> import -> train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from training.contract.history import History

STRIPE_METHODS = {
    "card": "card",
    "sepa_debit": "sepa_debit",
    "bacs_debit": "bacs_debit",
    "ach_debit": "us_bank_account",
}


def _unix(stamps: pd.Series) -> pd.Series:
    return (stamps.astype("int64") // 10**9).astype(int)


def write_stripe_events(history: History, path: Path) -> int:
    """The Stripe-processed invoices' attempts as ``charge.failed`` / ``invoice.paid``
    events, one JSON object per line, in time order; returns the number written."""
    invoices = history.invoices[history.invoices["processor"] == "stripe"]
    rows = history.attempts.merge(invoices, on="invoice_id").merge(
        history.customers[["customer_id", "country"]], on="customer_id"
    )
    rows = rows.sort_values("attempted_at").assign(created=lambda f: _unix(f["attempted_at"]))
    events: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        if row.outcome == "failed":
            obj: dict[str, Any] = {
                "id": f"ch_{row.attempt_id}",
                "object": "charge",
                "amount": int(row.amount_minor),
                "currency": row.currency.lower(),
                "customer": row.customer_id,
                "invoice": row.invoice_id,
                "created": int(row.created),
                "status": "failed",
                "failure_code": "card_declined",
                "outcome": {
                    "type": "issuer_declined",
                    "reason": row.decline_code,
                    "network_advice_code": row.merchant_advice_code
                    if isinstance(row.merchant_advice_code, str)
                    else None,
                },
                "billing_details": {"address": {"country": row.country}},
                "payment_method_details": {
                    "type": STRIPE_METHODS[row.payment_method],
                    "card": {"brand": row.card_brand},
                },
            }
            event_type = "charge.failed"
        else:
            obj = {
                "id": row.invoice_id,
                "object": "invoice",
                "customer": row.customer_id,
                "amount_paid": int(row.amount_minor),
                "currency": row.currency.lower(),
                "charge": f"ch_{row.attempt_id}",
                "status": "paid",
                "collection_method": "charge_automatically"
                if row.initiated_by == "merchant"
                else "send_invoice",
                "status_transitions": {"paid_at": int(row.created)},
            }
            event_type = "invoice.paid"
        events.append(
            {
                "id": f"evt_{row.attempt_id}",
                "object": "event",
                "type": event_type,
                "created": int(row.created),
                "data": {"object": obj},
            }
        )
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return len(events)
