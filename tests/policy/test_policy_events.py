"""Requests → events / previous_attempts frames, with the documented defaults."""

from __future__ import annotations

import pandas as pd

from training.api.requests import requests_to_frames
from training.core.frames import EVENT_COLUMNS

REQUEST = {
    "invoice_id": "in_1",
    "customer_id": "cus_1",
    "amount_minor": 4900,
    "currency": "EUR",
    "payment_method": "card",
    "card_brand": "visa",
    "processor": "stripe",
    "decline_code": "insufficient_funds",
    "failed_at": "2026-11-20T14:03:00Z",
}


def test_defaults_for_missing_constraints_and_cold_start_customer():
    events, previous = requests_to_frames([REQUEST])
    assert list(events.columns[: len(EVENT_COLUMNS)]) == list(EVENT_COLUMNS)
    row = events.iloc[0]
    assert (row["max_retries"], row["window_days"], row["max_messages"]) == (4, 14, 3)
    assert bool(row["allow_email"]) and bool(row["allow_sms"])
    assert (row["timezone"], bool(row["sms_opt_in"]), row["customer_source"]) == (
        "UTC",
        False,
        "default",
    )
    assert row["country"] is None and pd.isna(row["signup_at"])
    assert row["failed_at"] == pd.Timestamp("2026-11-20T14:03:00Z")
    assert previous.empty and list(previous.columns[:3]) == [
        "event_id",
        "attempted_at",
        "decline_code",
    ]


def test_request_values_win_over_known_ones_field_by_field():
    known = {
        "cus_1": {
            "country": "DE",
            "timezone": "Europe/Berlin",
            "sms_opt_in": True,
            "signup_at": None,
        }
    }
    partial = {
        **REQUEST,
        "customer": {"timezone": "Europe/Paris"},
        "constraints": {"channels": ["sms"], "max_retries": 2},
    }
    events, _ = requests_to_frames(
        [partial, {**REQUEST, "customer_id": "cus_2"}], ["a", "b"], known
    )
    a, b = events.iloc[0], events.iloc[1]
    assert (a["country"], a["timezone"], bool(a["sms_opt_in"])) == ("DE", "Europe/Paris", True)
    assert a["customer_source"] == "default"  # signup_at unknown everywhere
    assert (a["max_retries"], a["window_days"], bool(a["allow_email"]), bool(a["allow_sms"])) == (
        2,
        14,
        False,
        True,
    )
    assert (b["timezone"], b["customer_source"]) == ("UTC", "default")


def test_previous_attempts_are_long_and_sorted():
    request = {
        **REQUEST,
        "previous_attempts": [
            {"attempted_at": "2026-11-19T09:00:00Z", "decline_code": "x"},
            {
                "attempted_at": "2026-11-18T09:00:00Z",
                "decline_code": "y",
                "merchant_advice_code": "02",
            },
        ],
    }
    _, previous = requests_to_frames([REQUEST, request], ["a", "b"])
    assert previous["event_id"].tolist() == ["b", "b"]
    assert previous["decline_code"].tolist() == ["y", "x"]
    assert str(previous["attempted_at"].dtype) == "datetime64[ns, UTC]"


def test_datetime_objects_parse_as_pandas_parses_them():
    """``_utc`` turns aware ``datetime`` values (the validated API's) into nanoseconds
    without pandas' parser; the result must equal ``pd.to_datetime`` of the same values."""
    from datetime import UTC, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    import numpy as np

    from training.api.requests import _utc

    cases = [
        [datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=ZoneInfo("Europe/London")), None],
        [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
        [datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-9, minutes=-30)))],
        [datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))],
        [],
        [None, None],
        ["2026-03-10T12:00:00+01:00", datetime(2026, 3, 10, tzinfo=UTC)],  # parser path
        [datetime(2026, 3, 10, 12)],  # naive: UTC, through the parser
    ]
    for values in cases:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        expected = pd.DatetimeIndex(pd.to_datetime(out, utc=True)).as_unit("ns")
        pd.testing.assert_index_equal(_utc(values), expected)


def test_card_updated_after_the_charges_first_attempt():
    """``payment_method_updated_at`` counts when it is after the earliest of ``failed_at``
    and the event's previous attempts; a missing one never does."""
    early = [{"attempted_at": "2026-11-10T09:00:00Z", "decline_code": "expired_card"}]
    requests = [
        {**REQUEST, "payment_method_updated_at": "2026-11-21T00:00:00Z"},  # after the failure
        {**REQUEST, "payment_method_updated_at": "2026-11-15T00:00:00Z"},  # before it
        {  # before the failure but after an earlier attempt on the charge
            **REQUEST,
            "previous_attempts": early,
            "payment_method_updated_at": "2026-11-15T00:00:00Z",
        },
        {**REQUEST, "previous_attempts": early},  # no update
        {  # before every attempt
            **REQUEST,
            "previous_attempts": early,
            "payment_method_updated_at": "2026-11-01T00:00:00Z",
        },
    ]
    events, _ = requests_to_frames(requests, ["e", "d", "c", "b", "a"])
    assert events["card_updated"].tolist() == [True, False, True, False, False]
    assert events["card_updated"].dtype == bool
    events, previous = requests_to_frames([REQUEST])  # no update anywhere: all False
    assert events["card_updated"].tolist() == [False] and previous.empty


def test_frames_have_the_dtypes_pandas_would_infer():
    """The frames are built from typed arrays without pandas' inference: the same frames."""
    request = {
        **REQUEST,
        "card_brand": None,
        "customer": {"timezone": "Europe/Paris", "signup_at": "2025-01-02T03:04:05Z"},
        "previous_attempts": [{"attempted_at": "2026-11-19T09:00:00Z", "decline_code": "x"}],
    }
    events, previous = requests_to_frames([REQUEST, request], ["a", "b"])
    for frame in (events, previous):
        inferred = pd.DataFrame({name: frame[name].tolist() for name in frame.columns})
        for name in frame.columns:
            if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                inferred[name] = pd.to_datetime(inferred[name], utc=True).dt.as_unit("ns")
        pd.testing.assert_frame_equal(frame, inferred)
