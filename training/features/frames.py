"""Feature matrices for the three models, from a failure event plus a timeline.

The same functions build the rows a model is trained on (logged retries and messages)
and the rows the policy scores (candidate retries and messages of proposed schedules),
so training and serving cannot compute a feature differently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.declines.table import DeclineTable
from training.features.calendar import circular_difference, local_calendar
from training.features.customer import (
    CUSTOMER_FEATURES,
    MEAN_MONTH_DAYS,
    CustomerIndex,
    customer_features,
)
from training.features.dunning_state import STATE_FEATURES, timeline_state
from training.features.invoice import INVOICE_CATEGORICAL, INVOICE_NUMERIC, invoice_features

TIME_FEATURES = (
    "local_hour",
    "local_weekday",
    "local_day_of_month",
    "days_to_month_end",
    "days_from_usual_payday",
    "weekdays_from_usual_payday",
    "hours_from_active_hour",
)
EVENT_FEATURES = INVOICE_NUMERIC + INVOICE_CATEGORICAL + CUSTOMER_FEATURES
RETRY_FEATURES = EVENT_FEATURES + STATE_FEATURES + TIME_FEATURES
MESSAGE_CATEGORICAL = ("template", "channel")
MESSAGE_FEATURES = RETRY_FEATURES + MESSAGE_CATEGORICAL + ("channel_click_rate",)
SELF_CURE_FEATURES = EVENT_FEATURES + ("day_index",) + TIME_FEATURES
CATEGORICAL = INVOICE_CATEGORICAL + MESSAGE_CATEGORICAL
CONTEXT_COLUMNS = ("timezone", "dunning_start")  # carried along, not model inputs


def event_features(
    events: pd.DataFrame,
    log: pd.DataFrame | None,
    table: DeclineTable,
    previous_attempts: pd.DataFrame | None = None,
    index: CustomerIndex | None = None,
) -> pd.DataFrame:
    """Invoice and customer features of each failure event, indexed by ``event_id``.

    Customer features are taken as of the start of the dunning cycle (the earliest
    attempt of the invoice), so every decision of one invoice sees the same history.
    """
    start = pd.to_datetime(events["failed_at"], utc=True)
    if previous_attempts is not None and len(previous_attempts):
        earliest = pd.to_datetime(previous_attempts["attempted_at"], utc=True).groupby(
            previous_attempts["event_id"]
        ).min()
        start = pd.concat([start, events["event_id"].map(earliest)], axis=1).min(axis=1)
    decisions = pd.DataFrame(
        {
            "customer_id": events["customer_id"].to_numpy(),
            "as_of": start.to_numpy(),
            "signup_at": pd.to_datetime(events["signup_at"], utc=True).to_numpy(),
        },
        index=events.index,
    )
    features = pd.concat(
        [
            invoice_features(events, previous_attempts, table),
            customer_features(decisions, log, index=index),
        ],
        axis=1,
    )
    features.index = events["event_id"].to_numpy()
    features["timezone"] = events["timezone"].fillna("UTC").to_numpy()
    features["dunning_start"] = start.to_numpy()
    return features


def _time_features(t: pd.Series, per_row: pd.DataFrame) -> pd.DataFrame:
    calendar = local_calendar(t, per_row["timezone"])
    calendar.columns = [c for c in TIME_FEATURES[:4]]
    calendar["days_from_usual_payday"] = circular_difference(
        calendar["local_day_of_month"].to_numpy(),
        per_row["cust_pay_day_of_month"].to_numpy(),
        MEAN_MONTH_DAYS,
    )
    calendar["weekdays_from_usual_payday"] = circular_difference(
        calendar["local_weekday"].to_numpy(), per_row["cust_pay_weekday"].to_numpy(), 7.0
    )
    calendar["hours_from_active_hour"] = circular_difference(
        calendar["local_hour"].to_numpy(), per_row["cust_active_hour"].to_numpy(), 24.0
    )
    return calendar


def candidate_features(events_features: pd.DataFrame, timeline: pd.DataFrame) -> pd.DataFrame:
    """Rows for every candidate of the timeline (columns key, event_id, t, kind, template,
    channel, candidate); index: the candidate rows' timeline index."""
    state = timeline_state(timeline)
    rows = timeline.loc[state.index]
    return assemble_rows(events_features, rows, state)


def assemble_rows(
    events_features: pd.DataFrame, rows: pd.DataFrame, state: pd.DataFrame
) -> pd.DataFrame:
    """Event features + dunning state + candidate time features, one row per candidate
    (``rows``: event_id, t, kind, template, channel; same index as ``state``)."""
    per_row = events_features.loc[rows["event_id"].to_numpy()]
    per_row.index = rows.index
    times = _time_features(rows["t"], per_row)
    frame = pd.concat([per_row.drop(columns=list(CONTEXT_COLUMNS)), state, times], axis=1)
    frame["template"] = rows["template"].to_numpy()
    frame["channel"] = rows["channel"].to_numpy()
    sms = (rows["channel"] == "sms").to_numpy()
    frame["channel_click_rate"] = np.where(
        sms, per_row["cust_sms_click_rate"].to_numpy(), per_row["cust_email_click_rate"].to_numpy()
    )
    frame["kind"] = rows["kind"].to_numpy()
    return frame


def self_cure_features(events_features: pd.DataFrame, days: int) -> pd.DataFrame:
    """One row per event and day of the window (day_index 0..days-1), at the day's middle."""
    n = len(events_features)
    start = pd.to_datetime(events_features["dunning_start"], utc=True)
    repeated = events_features.loc[events_features.index.repeat(days)]
    day_index = np.tile(np.arange(days), n)
    naive = pd.DatetimeIndex(start).tz_convert(None).to_numpy()
    mid = np.repeat(naive, days) + (day_index * 24 + 12).astype("timedelta64[h]")
    repeated = repeated.reset_index(names="event_id")
    times = _time_features(pd.Series(pd.to_datetime(mid, utc=True)), repeated)
    frame = pd.concat([repeated.drop(columns=list(CONTEXT_COLUMNS)), times], axis=1)
    frame["day_index"] = day_index.astype(float)
    return frame
