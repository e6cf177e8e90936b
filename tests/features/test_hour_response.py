"""The customer's own response by send hour: the kernel-smoothed click rate of past
messages near a candidate hour, and the closeness to the active hour (issue 13)."""

from dataclasses import replace

import numpy as np
import pandas as pd

from training.config.retry_limits import RetryLimits
from training.core.localtime import to_ns
from training.features.customer import (
    CUSTOMER_CONTEXT,
    CustomerIndex,
    customer_columns,
    hour_kernel,
)
from training.features.frames import HOUR_RESPONSE_FEATURES, HOUR_RESPONSE_INPUTS, time_columns
from training.features.history_log import FLAGS, LOG_COLUMNS
from training.models.datasets import build_training_data

UPDATE = RetryLimits().update_requests
DECISION = pd.Timestamp("2026-03-01 00:00", tz="UTC")
HOURS = np.arange(24, dtype=float)


def _log(events: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    """A customer event log from (customer, UTC day, local hour, flag) rows."""
    rows = []
    for customer, day, hour, flag in events:
        at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour)
        row = {"customer_id": customer, "at": at, "local_hour": hour, "local_weekday": 0}
        row |= {"local_day_of_month": at.day, "days_in_month": 28}
        row |= {f: int(f == flag) for f in FLAGS}
        if flag.endswith("click"):
            row["activity"] = 1
        rows.append(row)
    log = pd.DataFrame(rows)[list(LOG_COLUMNS)]
    return log.sort_values(["customer_id", "at"], kind="stable").reset_index(drop=True)


def _hour_features(log: pd.DataFrame, customers: list[str]) -> dict[str, np.ndarray]:
    """The hour-response features at every local hour, as of :data:`DECISION`."""
    columns = customer_columns(
        np.repeat(customers, 24),
        to_ns(pd.Series([DECISION] * 24 * len(customers))),
        to_ns(pd.Series([pd.NaT] * 24 * len(customers), dtype="datetime64[ns, UTC]")),
        CustomerIndex.build(log),
    )
    hours = np.tile(HOURS, len(customers))
    active = columns["cust_active_hour"]
    profile = {name: columns[name] for name in HOUR_RESPONSE_INPUTS}
    return time_columns(hours, hours, hours, hours, hours, hours, active, profile)


PAST = [
    ("cus_a", "2026-01-05", 9.0, "email_sent"),
    ("cus_a", "2026-01-05", 9.5, "email_click"),
    ("cus_a", "2026-01-12", 10.0, "sms_sent"),
    ("cus_a", "2026-01-19", 20.0, "email_sent"),
]


def test_click_rate_by_hour_is_the_kernel_over_past_sends_and_clicks():
    features = _hour_features(_log(PAST), ["cus_a"])
    sends = hour_kernel(HOURS - 9.0) + hour_kernel(HOURS - 10.0) + hour_kernel(HOURS - 20.0)
    clicks = hour_kernel(HOURS - 9.5)
    np.testing.assert_allclose(features["hour_sends"], sends, atol=1e-9)
    np.testing.assert_allclose(features["hour_click_rate"], clicks / sends, atol=1e-9)
    # near the clicked morning sends the rate is high, at night (one unclicked send) low
    assert features["hour_click_rate"][9] > 0.5 > features["hour_click_rate"][21]


def test_events_after_the_decision_move_nothing():
    before = _hour_features(_log(PAST), ["cus_a"])
    later = [
        ("cus_a", "2026-03-01", 1.0, "sms_sent"),
        ("cus_a", "2026-03-01", 1.5, "sms_click"),
        ("cus_a", "2026-03-02", 22.0, "email_sent"),
        ("cus_a", "2026-03-02", 22.2, "email_click"),
    ]
    after = _hour_features(_log(PAST + later), ["cus_a"])
    for name in HOUR_RESPONSE_FEATURES:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_without_clicks_or_sends():
    no_clicks = [event for event in PAST if not event[3].endswith("click")]
    features = _hour_features(
        _log([*no_clicks, ("cus_b", "2026-01-01", 3.0, "failure")]), ["cus_a", "cus_b"]
    )
    rate, sends = features["hour_click_rate"], features["hour_sends"]
    assert (rate[:24][sends[:24] > 1e-9] == 0).all()  # sent, never clicked: a rate of 0
    assert np.isnan(rate[24:]).all() and (sends[24:] == 0).all()  # nothing sent: unknown
    assert np.isnan(features["active_hour_closeness"]).all()  # no activity, no active hour


def test_closeness_is_the_kernel_of_the_distance_times_the_strength():
    features = _hour_features(_log(PAST), ["cus_a"])
    distance = features["hours_from_active_hour"]
    assert np.argmax(features["active_hour_closeness"]) == np.argmin(np.abs(distance))
    assert np.nanmax(features["active_hour_closeness"]) <= 1.0


def test_a_history_without_opens_or_clicks_trains(history, table):
    """The data contract makes opened_at and clicked_at optional."""
    messages = history.messages.assign(opened_at=pd.NaT, clicked_at=pd.NaT)
    untracked = replace(history, messages=messages)
    data = build_training_data(untracked, table, 14, UPDATE)
    rows = data.message.features
    assert set(HOUR_RESPONSE_FEATURES) <= set(rows.columns)
    assert not set(CUSTOMER_CONTEXT) & set(rows.columns)  # carried along, never inputs
    sent_before = rows["hour_sends"] > 1e-9
    assert sent_before.any()
    assert (rows.loc[sent_before, "hour_click_rate"] == 0).all()
    assert rows.loc[~sent_before, "hour_click_rate"].isna().all()
