"""API-contract recommendation requests rebuilt from a history (data contract).

One request per invoice: its first failed merchant attempt is the failure the billing
system reports, with the invoice's fields and (optionally) the customer's. Used to
benchmark and test ``smartretry recommend`` and the API on realistic, held-out events.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.contract.history import History
from training.contract.tables import CUSTOMER_FIELDS


def _iso(values: pd.Series) -> pd.Series:
    """UTC timestamps as ISO 8601 strings with ``Z`` (null stays null)."""
    text = pd.to_datetime(values, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.astype(object).where(values.notna(), None)


def _none(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN/NA → None so the records serialize as JSON ``null``."""
    return frame.astype(object).where(frame.notna(), None)


def history_requests(
    history: History,
    since: pd.Timestamp | None = None,
    *,
    with_customer: bool = True,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Requests for the invoices whose first failure is at or after ``since``.

    ``with_customer=False`` leaves ``customer`` out, as a billing system may for a
    customer the service already knows.
    """
    attempts = history.attempts
    failed = attempts[(attempts["outcome"] == "failed") & (attempts["initiated_by"] == "merchant")]
    first = (
        failed.sort_values("attempted_at", kind="stable")
        .drop_duplicates("invoice_id")
        .loc[:, ["invoice_id", "attempted_at", "decline_code", "merchant_advice_code"]]
    )
    if since is not None:
        first = first[first["attempted_at"] >= since]
    if limit is not None:
        first = first.head(limit)
    rows = first.merge(history.invoices, on="invoice_id", how="inner", validate="1:1")
    body = _none(
        pd.DataFrame(
            {
                "invoice_id": rows["invoice_id"],
                "customer_id": rows["customer_id"],
                "amount_minor": rows["amount_minor"].astype("int64"),
                "currency": rows["currency"],
                "payment_method": rows["payment_method"],
                "card_brand": rows["card_brand"],
                "processor": rows["processor"],
                "decline_code": rows["decline_code"],
                "merchant_advice_code": rows["merchant_advice_code"],
                "failed_at": _iso(rows["attempted_at"]),
            }
        )
    )
    if with_customer:
        customers = rows[["customer_id"]].merge(history.customers, on="customer_id", how="left")
        customers["signup_at"] = _iso(customers["signup_at"])
        fields = _none(customers[list(CUSTOMER_FIELDS)])
        fields["sms_opt_in"] = customers["sms_opt_in"].fillna(False).astype(bool).astype(object)
        body["customer"] = fields.to_dict("records")
    return body.to_dict("records")
