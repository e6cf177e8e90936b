"""Tiny hand-built histories with answers that can be worked out on paper."""

from __future__ import annotations

import pandas as pd

from training.contract.history import History

T0 = pd.Timestamp("2024-01-01 08:30", tz="UTC")  # a Monday


def at(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def make_history(
    customers: list[tuple[str, str, str]],
    invoices: list[tuple[str, str, int, str, str, str, float]],
    attempts: list[tuple[str, float, str, str, str | None]],
    messages: list[tuple[str, float, str, str, bool]] = (),
) -> History:
    """customers: (id, country, timezone); invoices: (id, customer, amount_minor, currency,
    payment_method, processor, due day); attempts: (invoice, day, initiated_by, outcome,
    decline_code); messages: (invoice, day, channel, template, clicked). Days from ``T0``."""
    cust = pd.DataFrame(customers, columns=["customer_id", "country", "timezone"])
    cust["signup_at"] = T0 - pd.Timedelta(days=365)
    cust["sms_opt_in"] = True
    inv = pd.DataFrame(
        invoices,
        columns=[
            "invoice_id",
            "customer_id",
            "amount_minor",
            "currency",
            "payment_method",
            "processor",
            "due_day",
        ],
    )
    inv["due_at"] = inv.pop("due_day").map(at).astype("datetime64[ns, UTC]")
    inv["amount_minor"] = inv["amount_minor"].astype("int64")
    att = pd.DataFrame(
        attempts, columns=["invoice_id", "day", "initiated_by", "outcome", "decline_code"]
    )
    att.insert(0, "attempt_id", [f"att_{i}" for i in range(len(att))])
    att["attempted_at"] = att.pop("day").map(at).astype("datetime64[ns, UTC]")
    att["merchant_advice_code"] = None
    att["propensity"] = float("nan")
    msg = pd.DataFrame(
        list(messages), columns=["invoice_id", "day", "channel", "template", "clicked"]
    )
    msg.insert(0, "message_id", [f"msg_{i}" for i in range(len(msg))])
    msg["sent_at"] = msg.pop("day").map(at).astype("datetime64[ns, UTC]")
    clicked = msg.pop("clicked").astype(bool)
    msg["opened_at"] = msg["sent_at"].where(clicked) + pd.Timedelta(minutes=5)
    msg["clicked_at"] = msg["sent_at"].where(clicked) + pd.Timedelta(minutes=10)
    msg["propensity"] = float("nan")
    return History(customers=cust, invoices=inv, attempts=att, messages=msg)
