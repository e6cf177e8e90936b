"""Invoice features of a failure event: amount, method, processor, brand, the decline's
canonical category and retryability, the merchant advice code, when it failed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.contract.history import History
from training.declines.table import DeclineTable, load_decline_table
from training.features.calendar import local_calendar
from training.policy.events import DEFAULT_CONSTRAINTS
from training.policy.schedule import EVENT_COLUMNS

INVOICE_NUMERIC = (
    "inv_amount_log",
    "inv_failed_local_hour",
    "inv_failed_local_weekday",
    "inv_failed_local_day_of_month",
    "inv_previous_attempts",
)
INVOICE_CATEGORICAL = (
    "inv_currency",
    "inv_payment_method",
    "inv_processor",
    "inv_card_brand",
    "inv_decline_category",
    "inv_retryable",
    "inv_merchant_advice_code",
    "inv_country",
)


def events_from_history(history: History) -> pd.DataFrame:
    """One failure event per invoice, as the API would receive it at the failed charge.

    The decline code and merchant advice code are those of the invoice's first failed
    attempt (the original charge); the customer's fields come from the customers table.
    """
    att = history.attempts.sort_values("attempted_at", kind="stable")
    first = att[att["outcome"] == "failed"].drop_duplicates("invoice_id").set_index("invoice_id")
    inv = history.invoices
    cust = history.customers.set_index("customer_id")
    events = pd.DataFrame(
        {
            "event_id": inv["invoice_id"].to_numpy(),
            "invoice_id": inv["invoice_id"].to_numpy(),
            "customer_id": inv["customer_id"].to_numpy(),
            "amount_minor": inv["amount_minor"].to_numpy(),
            "currency": inv["currency"].to_numpy(),
            "payment_method": inv["payment_method"].to_numpy(),
            "card_brand": inv["card_brand"].to_numpy(),
            "processor": inv["processor"].to_numpy(),
            "decline_code": inv["invoice_id"].map(first["decline_code"]).to_numpy(),
            "merchant_advice_code": inv["invoice_id"].map(first["merchant_advice_code"]).to_numpy(),
            "failed_at": inv["due_at"].to_numpy(),
            "country": inv["customer_id"].map(cust["country"]).to_numpy(),
            "timezone": inv["customer_id"].map(cust["timezone"]).to_numpy(),
            "signup_at": inv["customer_id"].map(cust["signup_at"]).to_numpy(),
            "sms_opt_in": inv["customer_id"].map(cust["sms_opt_in"]).fillna(False).astype(bool).to_numpy(),
            "max_retries": DEFAULT_CONSTRAINTS["max_retries"],
            "window_days": DEFAULT_CONSTRAINTS["window_days"],
            "max_messages": DEFAULT_CONSTRAINTS["max_messages"],
            "allow_email": True,
            "allow_sms": True,
        }
    )
    events["failed_at"] = pd.to_datetime(events["failed_at"], utc=True)
    events["signup_at"] = pd.to_datetime(events["signup_at"], utc=True)
    return events[list(EVENT_COLUMNS)]


def invoice_features(
    events: pd.DataFrame,
    previous_attempts: pd.DataFrame | None = None,
    table: DeclineTable | None = None,
) -> pd.DataFrame:
    """Features of each failure event (same index as ``events``)."""
    table = table or load_decline_table()
    decline = table.classify(events["processor"], events["decline_code"])
    calendar = local_calendar(events["failed_at"], events["timezone"].fillna("UTC"), "inv_failed_")
    mac = events["merchant_advice_code"].astype(object)
    mac = mac.where(mac.notna(), "none").astype(str).str.strip().str.zfill(2)
    if previous_attempts is not None and len(previous_attempts):
        counts = previous_attempts.groupby("event_id").size()
        n_previous = events["event_id"].map(counts).fillna(0).to_numpy(dtype=float)
    else:
        n_previous = np.zeros(len(events))
    return pd.DataFrame(
        {
            "inv_amount_log": np.log1p(events["amount_minor"].to_numpy(dtype=float)),
            "inv_failed_local_hour": calendar["inv_failed_local_hour"].to_numpy(),
            "inv_failed_local_weekday": calendar["inv_failed_local_weekday"].to_numpy(),
            "inv_failed_local_day_of_month": calendar["inv_failed_local_day_of_month"].to_numpy(),
            "inv_previous_attempts": n_previous,
            "inv_currency": events["currency"].to_numpy(),
            "inv_payment_method": events["payment_method"].to_numpy(),
            "inv_processor": events["processor"].to_numpy(),
            "inv_card_brand": events["card_brand"].fillna("none").to_numpy(),
            "inv_decline_category": decline["category"].to_numpy(),
            "inv_retryable": decline["retryable"].to_numpy(),
            "inv_merchant_advice_code": mac.to_numpy(),
            "inv_country": events["country"].fillna("unknown").to_numpy(),
        },
        index=events.index,
    )
