"""Feature matrices for the three models, from a failure event plus a timeline.

The same functions build the rows a model is trained on (logged retries and messages)
and the rows the policy scores (candidate retries and messages of proposed schedules),
so training and serving cannot compute a feature differently.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.columnar import Table, column_array, column_values
from training.core.localtime import from_ns, to_ns
from training.declines.table import DeclineTable
from training.features.calendar import circular_difference, local_calendar
from training.features.customer import (
    CUSTOMER_CONTEXT,
    CUSTOMER_FEATURES,
    HOUR_PROFILE_COLUMNS,
    MEAN_MONTH_DAYS,
    CustomerIndex,
    Harmonics,
    customer_columns,
    hour_kernel,
    hour_response,
)
from training.features.dunning_state import STATE_FEATURES, timeline_state
from training.features.invoice import (
    INVOICE_CATEGORICAL,
    INVOICE_NUMERIC,
    dunning_start_ns,
    invoice_columns,
)

TIME_FEATURES = (
    "local_hour",
    "local_weekday",
    "local_day_of_month",
    "days_to_month_end",
    "days_from_usual_payday",
    "weekdays_from_usual_payday",
    "hours_from_active_hour",
)
HOUR_RESPONSE_FEATURES = ("hour_click_rate", "hour_sends", "active_hour_closeness")
"""The customer's own click rate of past messages sent near the candidate's local hour,
the (kernel-weighted) number of those messages, and the closeness of the candidate hour
to the customer's active hour (:data:`HOUR_KERNEL` of the distance, times the estimate's
strength: a one-split step for the trees where the signed distance takes two, and small
where the estimate is weak): computed with the time features for every row, inputs of
the message model only."""
HOUR_RESPONSE_INPUTS = (
    "cust_active_hour_strength",
    "cust_email_sent",
    "cust_sms_sent",
    "cust_clicks",
    *HOUR_PROFILE_COLUMNS,
)
TIME_COLUMNS = (*TIME_FEATURES, "hour_click_rate", "active_hour_closeness", "hour_sends")
"""The columns :func:`time_columns` gives, in its order."""
EVENT_FEATURES = INVOICE_NUMERIC + INVOICE_CATEGORICAL + CUSTOMER_FEATURES
RETRY_FEATURES = EVENT_FEATURES + STATE_FEATURES + TIME_FEATURES
MESSAGE_CATEGORICAL = ("template", "channel")
MESSAGE_FEATURES = (
    RETRY_FEATURES + MESSAGE_CATEGORICAL + ("channel_click_rate",) + HOUR_RESPONSE_FEATURES
)
SELF_CURE_FEATURES = EVENT_FEATURES + ("day_index",) + TIME_FEATURES
CATEGORICAL = INVOICE_CATEGORICAL + MESSAGE_CATEGORICAL
# carried along, not model inputs
CONTEXT_COLUMNS = ("timezone", "dunning_start", *CUSTOMER_CONTEXT)


def event_features(
    events: Table,
    log: pd.DataFrame | None,
    table: DeclineTable,
    previous_attempts: pd.DataFrame | None = None,
    index: CustomerIndex | None = None,
) -> pd.DataFrame:
    """Invoice and customer features of each failure event, indexed by ``event_id``.

    Customer features are taken as of the start of the dunning cycle (the earliest
    attempt of the invoice), so every decision of one invoice sees the same history.
    """
    columns = event_feature_columns(events, log, table, previous_attempts, index)
    return pd.DataFrame(columns, index=column_array(events, "event_id"))


def event_feature_columns(
    events: Table,
    log: pd.DataFrame | None,
    table: DeclineTable,
    previous_attempts: pd.DataFrame | None = None,
    index: CustomerIndex | None = None,
) -> dict[str, np.ndarray]:
    """:func:`event_features` as its columns, one value per event in ``events``' order
    (the policy's path: a frame of a few dozen one-row columns costs ~0.5 ms)."""
    if index is None:
        index = CustomerIndex.build(log)
    start = dunning_start_ns(events, previous_attempts)
    return {
        **invoice_columns(events, previous_attempts, table),
        **customer_columns(
            column_array(events, "customer_id"),
            start,
            to_ns(column_values(events, "signup_at")),
            index,
        ),
        "timezone": _zones_or_utc(column_array(events, "timezone", object)),
        "dunning_start": from_ns(start),
    }


def _zones_or_utc(zones: np.ndarray) -> np.ndarray:
    """Time zone names, a missing one read as UTC."""
    if len(zones) == 1 and isinstance(zones[0], str):  # a lone request's zone
        return zones
    missing = pd.isna(zones)
    return np.where(missing, "UTC", zones) if missing.any() else zones


def time_columns(
    hour: np.ndarray,
    weekday: np.ndarray,
    day_of_month: np.ndarray,
    days_to_month_end: np.ndarray,
    pay_day_of_month: np.ndarray,
    pay_weekday: np.ndarray,
    active_hour: np.ndarray,
    profile: Mapping[str, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """The candidate-time features (:data:`TIME_FEATURES` and
    :data:`HOUR_RESPONSE_FEATURES`) from the local calendar of the candidate time and the
    customer's usual payday, active hour and past responses by hour (``profile``: the
    :data:`HOUR_RESPONSE_INPUTS` by name; None: the time features only, for a model that
    reads no hour response)."""
    by_day = day_columns(weekday, day_of_month, days_to_month_end, pay_day_of_month, pay_weekday)
    by_hour = hour_columns(hour, active_hour, profile)
    names = TIME_COLUMNS if profile is not None else TIME_FEATURES
    return {name: by_day[name] if name in by_day else by_hour[name] for name in names}


def day_columns(
    weekday: np.ndarray,
    day_of_month: np.ndarray,
    days_to_month_end: np.ndarray,
    pay_day_of_month: np.ndarray,
    pay_weekday: np.ndarray,
) -> dict[str, np.ndarray]:
    """The time features of the candidate's local date (:func:`time_columns`' part that
    the hour of the day does not move)."""
    return {
        "local_weekday": weekday,
        "local_day_of_month": day_of_month,
        "days_to_month_end": days_to_month_end,
        "days_from_usual_payday": circular_difference(
            day_of_month, pay_day_of_month, MEAN_MONTH_DAYS
        ),
        "weekdays_from_usual_payday": circular_difference(weekday, pay_weekday, 7.0),
    }


def hour_columns(
    hour: np.ndarray,
    active_hour: np.ndarray,
    profile: Mapping[str, np.ndarray] | None,
    harmonics: Harmonics | None = None,
) -> dict[str, np.ndarray]:
    """The time features of the candidate's local hour of the day (:func:`time_columns`'
    part that the date does not move); without the hour response when ``profile`` is None
    (``harmonics``: :func:`~training.features.customer.hour_harmonics` of ``hour``, when
    the caller has them)."""
    distance = circular_difference(hour, active_hour, 24.0)
    if profile is None:
        return {"local_hour": hour, "hours_from_active_hour": distance}
    rate, sends = hour_response(
        hour,
        profile["cust_email_sent"] + profile["cust_sms_sent"],
        profile["cust_clicks"],
        profile,
        harmonics,
    )
    return {
        "local_hour": hour,
        "hours_from_active_hour": distance,
        "hour_click_rate": rate,
        "active_hour_closeness": hour_kernel(distance) * profile["cust_active_hour_strength"],
        "hour_sends": sends,
    }


def _time_features(t: pd.Series, per_row: pd.DataFrame) -> pd.DataFrame:
    calendar = local_calendar(t, per_row["timezone"])
    hour, weekday, day_of_month, to_month_end = (calendar[c].to_numpy() for c in calendar.columns)
    columns = time_columns(
        hour,
        weekday,
        day_of_month,
        to_month_end,
        per_row["cust_pay_day_of_month"].to_numpy(),
        per_row["cust_pay_weekday"].to_numpy(),
        per_row["cust_active_hour"].to_numpy(),
        {name: per_row[name].to_numpy(dtype=float) for name in HOUR_RESPONSE_INPUTS},
    )
    return pd.DataFrame(columns, index=t.index)


def candidate_features(
    events_features: pd.DataFrame, timeline: pd.DataFrame, update: UpdateRequests
) -> pd.DataFrame:
    """Rows for every candidate of the timeline (columns key, event_id, t, kind, template,
    channel, candidate); index: the candidate rows' timeline index. ``update``: what counts
    as an update request (the artifact's retry limits)."""
    state = timeline_state(timeline, update)
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
