"""A Recurly export written from a simulated history: its accounts, invoices and
transactions as Recurly's API v2021 lists them (a test bench for the importer: simulated
history -> Recurly objects -> import -> train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from babel.numbers import get_currency_precision

from training.contract.history import History

# the simulator's processors as Recurly gateway types and payment method objects
GATEWAY = {"stripe": "stripe", "adyen": "adyen", "braintree": "braintree_blue"}
METHOD = {
    "card": "credit_card",
    "sepa_debit": "sepadirectdebit",
    "bacs_debit": "bacs",
    "ach_debit": "bank_account_info",
}
BRAND = {"visa": "Visa", "mastercard": "MasterCard", "amex": "American Express"}


def _iso(stamps: pd.Series) -> pd.Series:
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_recurly_export(history: History, path: Path) -> int:
    """Accounts, then invoices, then transactions (one object per line, transactions in
    time order); returns the number of transactions written."""
    accounts = [
        {"id": f"acct_{c.customer_id}", "object": "account", "code": c.customer_id,
         "address": {"country": c.country}, "created_at": signup}
        for c, signup in zip(
            history.customers.itertuples(index=False),
            _iso(history.customers["signup_at"]),
            strict=True,
        )
    ]  # fmt: skip
    invoices = history.invoices.assign(due=_iso(history.invoices["due_at"]))
    invoice_objects = [
        {"id": i.invoice_id, "object": "invoice", "type": "charge", "state": "past_due",
         "currency": i.currency, "due_at": i.due, "collection_method": "automatic"}
        for i in invoices.itertuples(index=False)
    ]  # fmt: skip
    rows = history.attempts.merge(invoices, on="invoice_id").sort_values("attempted_at")
    rows = rows.assign(
        when=_iso(rows["attempted_at"]),
        amount=rows["amount_minor"]
        / 10.0 ** rows["currency"].map(lambda c: get_currency_precision(c)),
    )
    transactions: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        failed = row.outcome == "failed"
        transactions.append(
            {
                "id": row.attempt_id,
                "object": "transaction",
                "type": "purchase",
                "origin": "recurring" if row.initiated_by == "merchant" else "hpp",
                "account": {"id": f"acct_{row.customer_id}", "code": row.customer_id},
                "invoice": {"id": row.invoice_id, "object": "invoice"},
                "currency": row.currency,
                "amount": row.amount,
                "status": "declined" if failed else "success",
                "success": not failed,
                "payment_method": {
                    "object": METHOD[row.payment_method],
                    "card_type": BRAND.get(row.card_brand),
                },
                "payment_gateway": {"type": GATEWAY.get(row.processor, "gocardless")},
                "gateway_response_code": row.decline_code if failed else None,
                "status_code": "declined" if failed else None,
                "created_at": row.when,
                "collected_at": None if failed else row.when,
            }
        )
    lines = [*accounts, *invoice_objects, *transactions]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(transactions)
