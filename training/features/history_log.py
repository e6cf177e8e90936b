"""The customer event log: everything a customer did, one row per event, from a history.

Customer features are aggregates of this log *as of* a decision time. Training builds it
from the whole history; serving from the log shipped inside the model artifact plus the
outcomes reported since. Columns:

    customer_id, at (UTC), local_hour, local_weekday, local_day_of_month, days_in_month,
    and one int8 flag per kind: failure, recovery, recovery_by_retry, recovery_by_customer,
    payment, activity, email_sent, sms_sent, email_click, sms_click
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.contract.history import History
from training.core.localtime import to_local

FLAGS = (
    "failure",
    "recovery",
    "recovery_by_retry",
    "recovery_by_customer",
    "payment",
    "activity",
    "email_sent",
    "sms_sent",
    "email_click",
    "sms_click",
)
LOG_COLUMNS = (
    "customer_id",
    "at",
    "local_hour",
    "local_weekday",
    "local_day_of_month",
    "days_in_month",
    *FLAGS,
)


def _rows(customer_id: pd.Series, at: pd.Series, **flags: np.ndarray | int) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": customer_id.to_numpy(), "at": at.to_numpy()})
    for name in FLAGS:
        frame[name] = np.asarray(flags.get(name, 0), dtype=np.int8) * np.ones(len(frame), np.int8)
    return frame


def customer_event_log(history: History) -> pd.DataFrame:
    """Build the log from the four contract tables (vectorized)."""
    inv = history.invoices[["invoice_id", "customer_id", "due_at"]]
    owner = inv.set_index("invoice_id")["customer_id"]
    att = history.attempts
    att_customer = att["invoice_id"].map(owner)
    succeeded = (att["outcome"] == "succeeded").to_numpy()
    by_customer = (att["initiated_by"] == "customer").to_numpy()

    first_success = (
        att[succeeded].sort_values("attempted_at", kind="stable").drop_duplicates("invoice_id")
    )
    first_by_retry = (first_success["initiated_by"] == "merchant").to_numpy()

    msgs = history.messages
    msg_customer = msgs["invoice_id"].map(owner)
    sms = (msgs["channel"] == "sms").to_numpy()
    opened = msgs["opened_at"].notna().to_numpy()
    clicked = msgs["clicked_at"].notna().to_numpy()

    parts = [
        _rows(inv["customer_id"], inv["due_at"], failure=1),
        _rows(
            first_success["invoice_id"].map(owner),
            first_success["attempted_at"],
            recovery=1,
            recovery_by_retry=first_by_retry,
            recovery_by_customer=~first_by_retry,
        ),
        _rows(att_customer[succeeded], att["attempted_at"][succeeded], payment=1),
        _rows(att_customer[by_customer], att["attempted_at"][by_customer], activity=1),
        _rows(msg_customer, msgs["sent_at"], email_sent=~sms, sms_sent=sms),
        _rows(msg_customer[opened], msgs["opened_at"][opened], activity=1),
        _rows(
            msg_customer[clicked],
            msgs["clicked_at"][clicked],
            activity=1,
            email_click=~sms[clicked],
            sms_click=sms[clicked],
        ),
    ]
    log = pd.concat([p for p in parts if len(p)], ignore_index=True)
    log["at"] = pd.to_datetime(log["at"], utc=True)
    timezone = history.customers.set_index("customer_id")["timezone"]
    return add_local_time(log, log["customer_id"].map(timezone))


def add_local_time(log: pd.DataFrame, timezone: pd.Series) -> pd.DataFrame:
    """Local clock fields of each event, in the customer's time zone."""
    local = to_local(log["at"], timezone.fillna("UTC"))
    log["local_hour"] = (local.dt.hour + local.dt.minute / 60.0).to_numpy()
    log["local_weekday"] = local.dt.weekday.to_numpy()
    log["local_day_of_month"] = local.dt.day.to_numpy()
    log["days_in_month"] = local.dt.days_in_month.to_numpy()
    return log.sort_values(["customer_id", "at"], kind="stable").reset_index(drop=True)[
        list(LOG_COLUMNS)
    ]


def empty_log() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.int8) for c in LOG_COLUMNS})
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame["at"] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("local_hour", "local_weekday", "local_day_of_month", "days_in_month"):
        frame[c] = frame[c].astype(float)
    return frame
