"""One row per dunning cycle (invoice) with its outcome, and the attempts that followed it.

Everything in ``training.analytics`` starts here. The definitions follow the data
contract: the *original* attempt of an invoice is its earliest merchant attempt (the
failed first charge); the invoice is *recovered* when an attempt other than the original
succeeds between ``due_at`` and ``due_at + window``; recovery *by retry* when that first
success is a merchant attempt, *by customer* when the customer paid.

A window that had not ended when the history was exported (``as_of``, by default the
latest timestamp in the history) is *open*: its invoice may still recover, so rate tables
leave it out and the Kaplan-Meier curves censor it at ``as_of``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from training.contract.history import History
from training.core.localtime import to_local
from training.declines.table import load_decline_table

DAY = pd.Timedelta(days=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_NEEDED = {
    "customers": ("customer_id", "country", "timezone"),
    "invoices": (
        "invoice_id",
        "customer_id",
        "amount_minor",
        "currency",
        "payment_method",
        "processor",
        "due_at",
    ),
    "attempts": ("attempt_id", "invoice_id", "attempted_at", "initiated_by", "outcome"),
    "messages": ("message_id", "invoice_id", "sent_at", "channel", "template"),
}


def require_columns(frame: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the table and the missing column(s)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"table '{table}' is missing required column(s): {', '.join(missing)}")


def check_history(history: History) -> None:
    """The columns the analytics read are there (a validated history always passes)."""
    for table, columns in _NEEDED.items():
        require_columns(getattr(history, table), table, columns)


def latest_timestamp(history: History) -> pd.Timestamp:
    """The latest instant the history knows about: a stand-in for its export time."""
    stamps = [history.invoices["due_at"], history.attempts["attempted_at"]]
    stamps += [
        history.messages[c]
        for c in ("sent_at", "opened_at", "clicked_at")
        if c in history.messages.columns
    ]
    latest = pd.Series([pd.to_datetime(s, utc=True).max() for s in stamps]).max()
    if pd.isna(latest):
        raise ValueError("the history holds no timestamps (no invoices)")
    return latest


def _customer_field(history: History, invoices: pd.DataFrame, field: str) -> pd.Series:
    by_customer = history.customers.drop_duplicates("customer_id").set_index("customer_id")[field]
    values = invoices["customer_id"].map(by_customer)
    missing = values.isna()
    if field == "timezone" and missing.any():
        ids = invoices.loc[missing, "invoice_id"].head(5).tolist()
        raise ValueError(
            f"{int(missing.sum())} invoice(s) have no customer time zone (customers.timezone), "
            f"e.g. {ids}; load the history with training.contract.io.load_history"
        )
    return values


def original_attempts(history: History) -> pd.DataFrame:
    """The earliest merchant attempt of each invoice, indexed by ``invoice_id``."""
    att = history.attempts
    merchant = att[att["initiated_by"] == "merchant"].sort_values("attempted_at", kind="stable")
    return merchant.drop_duplicates("invoice_id").set_index("invoice_id")


def dunning_cycles(
    history: History, window_days: float = 14, as_of: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """One row per invoice: its dimensions, decline category and outcome within the window.

    Columns: the invoice's own columns, ``country`` and ``timezone`` (customer),
    ``decline_code`` and ``merchant_advice_code`` (original attempt, when present),
    ``decline_category`` (reference table; ``other`` when unknown or missing),
    ``window_end``, ``window_closed``, ``recovered``, ``recovered_at``, ``recovered_by``
    (``merchant``/``customer``/None), ``days_to_recovery`` and ``observed_days`` (days of
    the window seen: the whole window when closed, up to ``as_of`` when open).
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    check_history(history)
    cutoff = latest_timestamp(history) if as_of is None else pd.Timestamp(as_of)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    window = window_days * DAY

    cycles = history.invoices.copy()
    cycles["due_at"] = pd.to_datetime(cycles["due_at"], utc=True)
    cycles["country"] = _customer_field(history, cycles, "country")
    cycles["timezone"] = _customer_field(history, cycles, "timezone")
    original = original_attempts(history)
    for column in ("decline_code", "merchant_advice_code"):
        source = original[column] if column in original.columns else pd.Series(dtype=object)
        cycles[column] = cycles["invoice_id"].map(source)
    classified = load_decline_table().classify(
        cycles["processor"].astype("string"), cycles["decline_code"].astype("string")
    )
    cycles["decline_category"] = classified["category"].to_numpy()
    cycles["window_end"] = cycles["due_at"] + window
    cycles["window_closed"] = cycles["window_end"] <= cutoff

    first = first_recoveries(history, cycles, set(original["attempt_id"]))
    cycles["recovered_at"] = cycles["invoice_id"].map(first["attempted_at"])
    cycles["recovered_at"] = pd.to_datetime(cycles["recovered_at"], utc=True)
    cycles["recovered"] = cycles["recovered_at"].notna()
    cycles["recovered_by"] = cycles["invoice_id"].map(first["initiated_by"])
    cycles["days_to_recovery"] = (cycles["recovered_at"] - cycles["due_at"]) / DAY
    seen_until = cycles["window_end"].where(cycles["window_closed"], cutoff)
    cycles["observed_days"] = ((seen_until - cycles["due_at"]) / DAY).clip(lower=0.0)
    cycles.attrs.update(window_days=window_days, as_of=cutoff)
    return cycles.reset_index(drop=True)


def first_recoveries(
    history: History, cycles: pd.DataFrame, original_ids: set[str]
) -> pd.DataFrame:
    """First successful non-original attempt within each invoice's window, by ``invoice_id``."""
    att = history.attempts
    won = att[(att["outcome"] == "succeeded") & ~att["attempt_id"].isin(original_ids)]
    won = won.assign(attempted_at=pd.to_datetime(won["attempted_at"], utc=True))
    bounds = cycles.set_index("invoice_id")[["due_at", "window_end"]]
    due = won["invoice_id"].map(bounds["due_at"])
    end = won["invoice_id"].map(bounds["window_end"])
    won = won[(won["attempted_at"] >= due) & (won["attempted_at"] <= end)]
    return (
        won.sort_values("attempted_at", kind="stable")
        .drop_duplicates("invoice_id")
        .set_index("invoice_id")[["attempted_at", "initiated_by"]]
    )


def follow_up_attempts(history: History, cycles: pd.DataFrame) -> pd.DataFrame:
    """Attempts after the original, within the window and up to the recovery.

    Adds ``succeeded`` (bool), ``retry_number`` (1 for the first merchant retry of the
    invoice, ...; NaN for customer attempts) and the customer's local ``local_weekday``
    (Monday=0) and ``local_hour``.
    """
    original_ids = set(original_attempts(history)["attempt_id"])
    att = history.attempts
    att = att[~att["attempt_id"].isin(original_ids)].copy()
    att["attempted_at"] = pd.to_datetime(att["attempted_at"], utc=True)
    info = cycles.set_index("invoice_id")
    att = att[att["invoice_id"].isin(info.index)]
    due = att["invoice_id"].map(info["due_at"])
    last = att["invoice_id"].map(info["recovered_at"].fillna(info["window_end"]))
    att = att[(att["attempted_at"] >= due) & (att["attempted_at"] <= last)]
    att = att.sort_values(["invoice_id", "attempted_at"], kind="stable")
    att["succeeded"] = (att["outcome"] == "succeeded").to_numpy()
    merchant = att["initiated_by"] == "merchant"
    numbers = att[merchant].groupby("invoice_id").cumcount() + 1
    att["retry_number"] = numbers.reindex(att.index).astype("float64")
    local = to_local(att["attempted_at"], att["invoice_id"].map(info["timezone"]))
    att["local_weekday"] = local.dt.weekday.to_numpy(dtype=np.int64)
    att["local_hour"] = local.dt.hour.to_numpy(dtype=np.int64)
    return att.reset_index(drop=True)
