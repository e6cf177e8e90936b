"""The shapes every decision-maker shares: failure events in, schedules out.

A *failure event* is one failed charge that needs a decision (one API request). Many
events travel as one DataFrame so the policy, the baselines, the model scorer and the
simulator's ground truth all work vectorized over thousands of events at once; the API
passes a frame of one row (or of a batch).

``events`` columns (one row per event, index irrelevant, ``event_id`` unique):
    event_id, invoice_id, customer_id, amount_minor, currency, payment_method,
    card_brand, processor, decline_code, merchant_advice_code, failed_at (UTC),
    country, timezone, signup_at (UTC), sms_opt_in (bool),
    max_retries, window_days, max_messages, allow_email (bool), allow_sms (bool)

``previous_attempts`` (long): event_id, attempted_at (UTC), decline_code
    attempts on the same invoice before ``failed_at`` (the failed charge itself is the
    event, not a previous attempt).

A schedule is long-format too: ``retries`` (event_id, at) and ``messages`` (event_id,
send_at, channel, template), both sorted by event then time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from training.core.columnar import ColumnTable

TableT = TypeVar("TableT", pd.DataFrame, ColumnTable)

EVENT_COLUMNS = (
    "event_id",
    "invoice_id",
    "customer_id",
    "amount_minor",
    "currency",
    "payment_method",
    "card_brand",
    "processor",
    "decline_code",
    "merchant_advice_code",
    "failed_at",
    "country",
    "timezone",
    "signup_at",
    "sms_opt_in",
    "max_retries",
    "window_days",
    "max_messages",
    "allow_email",
    "allow_sms",
)
RETRY_COLUMNS = ("event_id", "at")
MESSAGE_COLUMNS = ("event_id", "send_at", "channel", "template")


def numbered(frame: TableT) -> TableT:
    """``frame.reset_index(drop=True)``, without the copy when its rows are numbered 0..n-1
    already (the decision's frames are never changed in place; a column table's are)."""
    if isinstance(frame, ColumnTable):
        return frame
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


def empty_retries() -> pd.DataFrame:
    return pd.DataFrame(
        {"event_id": pd.Series(dtype=object), "at": pd.Series(dtype="datetime64[ns, UTC]")}
    )


def empty_messages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series(dtype=object),
            "send_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "channel": pd.Series(dtype=object),
            "template": pd.Series(dtype=object),
        }
    )


@dataclass
class Schedules:
    """Retries and messages for many events, long format, sorted by event then time."""

    retries: pd.DataFrame
    messages: pd.DataFrame

    @classmethod
    def empty(cls) -> Schedules:
        return cls(empty_retries(), empty_messages())

    def sorted(self) -> Schedules:
        return Schedules(
            self.retries.sort_values(["event_id", "at"], kind="stable").reset_index(drop=True),
            self.messages.sort_values(["event_id", "send_at"], kind="stable").reset_index(
                drop=True
            ),
        )

    def for_event(self, event_id: str) -> Schedules:
        return Schedules(
            self.retries[self.retries["event_id"] == event_id],
            self.messages[self.messages["event_id"] == event_id],
        )
