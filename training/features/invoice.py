"""Invoice features of a failure event: amount, method, processor, brand, the decline's
canonical category and retryability, the merchant advice code, when it failed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.request_defaults import DEFAULT_CONSTRAINTS
from training.contract.history import History
from training.core.columnar import Table, column_array, column_values
from training.core.frames import EVENT_COLUMNS
from training.core.localtime import NAT, to_ns
from training.declines.table import DeclineTable, load_decline_table, text_values
from training.features.calendar import calendar_arrays, instant_calendar

LATEST = np.iinfo(np.int64).max  # stands for "no time" in minima

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
            "sms_opt_in": inv["customer_id"]
            .map(cust["sms_opt_in"])
            .fillna(False)
            .astype(bool)
            .to_numpy(),
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


def advice_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Merchant advice codes as two-digit text ("1" -> "01"), ``"none"`` when missing."""
    raw = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
    if len(raw) == 1:  # one (a lone request's): a text or missing, on Python strings
        one = raw[0]
        if isinstance(one, str) and "\x00" not in one:  # (numpy's text drops trailing NULs)
            return np.array([one.strip().zfill(2)], dtype=object)
        if one is None or (isinstance(one, float) and one != one):
            return np.array(["none"], dtype=object)
    text = np.where(pd.isna(raw), "none", raw).astype(str)
    return np.char.zfill(np.char.strip(text), 2).astype(object)  # np.char: numpy 1.26 too


def previous_attempt_counts(events: Table, previous_attempts: pd.DataFrame | None) -> np.ndarray:
    """Number of ``previous_attempts`` rows of each event (by ``event_id``), as float."""
    if previous_attempts is None or not len(previous_attempts):
        return np.zeros(len(events))
    previous_ids = column_array(previous_attempts, "event_id", object)
    if len(events) == 1:  # one event (a lone request): no factorize, no index
        return np.array([(previous_ids == column_array(events, "event_id")[0]).sum()], float)
    codes, ids = pd.factorize(previous_ids)
    counts = np.append(np.bincount(codes[codes >= 0], minlength=len(ids)), 0).astype(float)
    position = pd.Index(ids).get_indexer(column_array(events, "event_id", object))
    return counts[position]  # -1 (no previous attempt) picks the appended 0


def dunning_start_ns(events: Table, previous_attempts: pd.DataFrame | None) -> np.ndarray:
    """Start of each event's dunning cycle (UTC int64 ns): the earlier of ``failed_at`` and
    the event's first ``previous_attempts`` row; missing times are skipped (NaT if none)."""
    start = to_ns(column_values(events, "failed_at")).copy()
    if previous_attempts is None or not len(previous_attempts):
        return start
    previous_ids = column_array(previous_attempts, "event_id", object)
    at = to_ns(column_values(previous_attempts, "attempted_at"))
    if len(events) == 1:  # one event (a lone request): its rows by one comparison
        mine = at[(previous_ids == column_array(events, "event_id")[0]) & (at != NAT)]
        if len(mine) and (start[0] == NAT or mine.min() < start[0]):
            start[0] = mine.min()
        return start
    codes, ids = pd.factorize(previous_ids)
    keep = (codes >= 0) & (at != NAT)
    earliest = np.full(len(ids) + 1, LATEST, dtype=np.int64)  # last: events without any
    np.minimum.at(earliest, codes[keep], at[keep])
    before = earliest[pd.Index(ids).get_indexer(column_array(events, "event_id", object))]
    start = np.minimum(np.where(start == NAT, LATEST, start), before)
    start[start == LATEST] = NAT
    return start


def _failure_calendar(
    utc_ns: np.ndarray, zones: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local hour, weekday and day of month of each failure (:func:`calendar_arrays`);
    one failure (a lone request) by :func:`instant_calendar`, the same values."""
    if len(utc_ns) == 1:
        one = instant_calendar(int(utc_ns[0]), zones[0])
        if one is not None:
            hour, weekday, day, _ = np.array(one, dtype=np.float64).reshape(4, 1)
            return hour, weekday, day
    hour, weekday, day, _ = calendar_arrays(utc_ns, zones)
    return hour, weekday, day


def _filled(raw: np.ndarray, fill: str) -> np.ndarray:
    return np.where(pd.isna(raw), fill, raw)


def invoice_features(
    events: Table,
    previous_attempts: pd.DataFrame | None = None,
    table: DeclineTable | None = None,
) -> pd.DataFrame:
    """Features of each failure event (same index as ``events``)."""
    return pd.DataFrame(invoice_columns(events, previous_attempts, table), index=events.index)


def invoice_columns(
    events: Table,
    previous_attempts: pd.DataFrame | None = None,
    table: DeclineTable | None = None,
) -> dict[str, np.ndarray]:
    """:data:`INVOICE_NUMERIC` then :data:`INVOICE_CATEGORICAL` as arrays, one per event.

    Plain numpy on the event columns (a missing time zone means UTC), so one API request
    costs a fraction of a millisecond besides the decline lookup.
    """
    table = table or load_decline_table()
    processor = column_array(events, "processor")
    decline = table.classify_texts(
        text_values(processor), text_values(column_values(events, "decline_code"))
    )
    hour, weekday, day = _failure_calendar(
        to_ns(column_values(events, "failed_at")), column_array(events, "timezone", object)
    )
    return {
        "inv_amount_log": np.log1p(column_array(events, "amount_minor", float)),
        "inv_failed_local_hour": hour,
        "inv_failed_local_weekday": weekday,
        "inv_failed_local_day_of_month": day,
        "inv_previous_attempts": previous_attempt_counts(events, previous_attempts),
        "inv_currency": column_array(events, "currency"),
        "inv_payment_method": column_array(events, "payment_method"),
        "inv_processor": processor,
        "inv_card_brand": _filled(column_array(events, "card_brand", object), "none"),
        "inv_decline_category": np.asarray(decline["category"]),
        "inv_retryable": np.asarray(decline["retryable"]),
        "inv_merchant_advice_code": advice_codes(
            column_array(events, "merchant_advice_code", object)
        ),
        "inv_country": _filled(column_array(events, "country", object), "unknown"),
    }
