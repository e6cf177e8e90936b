"""The int64 local-time helpers the baselines use (``training.core.localtime``) agree with
the Series helpers of the same module and with pandas' own conversions, around DST
changes in zones with odd offsets; the schedules built on them are DST-safe."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from training.api.requests import requests_to_frames
from training.config.quiet_hours import QuietHours
from training.core.arrays import cummax_in_group as _cummax_in_group
from training.core.localtime import (
    defer_out_of_quiet_hours,
    defer_quiet_ns,
    from_local,
    local_to_utc_ns,
    to_local,
    utc_offsets,
)
from training.declines.rules import RetryRules
from training.policy.baselines import NS_PER_DAY, fixed_schedule, rules_baseline


def _local_ns(utc: np.ndarray, zones: np.ndarray) -> np.ndarray:
    return utc + utc_offsets(utc, zones)


def _utc_ns(local: np.ndarray, zones: np.ndarray) -> np.ndarray:
    return local_to_utc_ns(local, zones)


def _defer_quiet(utc: np.ndarray, zones: np.ndarray, start: int, end: int) -> np.ndarray:
    return defer_quiet_ns(utc, zones, start, end)


# instants around DST changes (gaps and repeated hours) in zones with odd offsets
ZONES = np.array(
    [
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "Asia/Kolkata",
        "America/St_Johns",
        "UTC",
    ],
    dtype=object,
)
CENTERS = pd.to_datetime(
    [
        "2026-03-08T07:00Z",
        "2026-03-29T01:00Z",
        "2026-10-04T15:30Z",
        "2026-10-25T01:00Z",
        "2026-11-01T06:00Z",
        "2026-04-05T15:00Z",
    ]
)


@pytest.fixture(scope="module")
def instants() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    n = 600
    base = CENTERS[rng.integers(len(CENTERS), size=n)].asi8
    minutes = rng.integers(-36 * 60, 36 * 60, size=n) * 60_000_000_000
    return base + minutes, ZONES[rng.integers(len(ZONES), size=n)]


def _utc_series(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC"))


def test_local_and_back_match_the_series_helpers(instants):
    utc, zones = instants
    local = _local_ns(utc, zones)
    expected = to_local(_utc_series(utc), pd.Series(zones)).to_numpy().view("int64")
    np.testing.assert_array_equal(local, expected)
    # wall-clock times in spring-forward gaps and in repeated hours included
    wall = local + np.arange(len(local)) % 7 * 20 * 60_000_000_000
    naive = pd.Series(wall.view("M8[ns]"))
    expected = from_local(naive, pd.Series(zones)).array.asi8
    np.testing.assert_array_equal(_utc_ns(wall, zones), expected)


def test_one_zone_and_no_rows():
    utc = np.array([pd.Timestamp("2026-03-29T01:00Z").value], dtype=np.int64)  # BST starts
    local = _local_ns(utc, np.array(["Europe/London"], dtype=object))
    assert local[0] == pd.Timestamp("2026-03-29T02:00").value
    assert _local_ns(np.empty(0, np.int64), np.empty(0, object)).shape == (0,)
    assert _utc_ns(np.empty(0, np.int64), np.empty(0, object)).shape == (0,)


@pytest.mark.parametrize("quiet", [(21, 8), (9, 17), (5, 5), (0, 6)])
def test_quiet_hours_match_the_series_helper(instants, quiet):
    utc, zones = instants
    expected = defer_out_of_quiet_hours(_utc_series(utc), pd.Series(zones), *quiet)
    np.testing.assert_array_equal(_defer_quiet(utc, zones, *quiet), expected.array.asi8)


def test_running_maximum_restarts_for_each_event():
    rng = np.random.default_rng(2)
    pos = np.sort(rng.integers(0, 40, size=300))
    values = rng.integers(-(10**18), 10**18, size=300)
    expected = pd.Series(values).groupby(pos).cummax().to_numpy()
    np.testing.assert_array_equal(_cummax_in_group(values, pos), expected)


@pytest.mark.parametrize(
    "baseline",
    [
        partial(fixed_schedule, quiet_hours=QuietHours()),
        partial(rules_baseline, quiet_hours=QuietHours()),
    ],
    ids=["fixed", "rules"],
)
def test_schedules_come_sorted_by_event_id_then_time(baseline):
    """Event ids sort as strings ("10" before "9"), whatever the frame's order and index."""
    base = {
        "customer_id": "c",
        "amount_minor": 100,
        "currency": "EUR",
        "payment_method": "card",
        "card_brand": "visa",
        "processor": "stripe",
        "decline_code": "insufficient_funds",
        "customer": {"timezone": "Europe/Amsterdam", "sms_opt_in": True},
    }
    requests = [
        {**base, "invoice_id": str(i), "failed_at": f"2026-10-{20 + i % 9:02d}T{i:02d}:30:00Z"}
        for i in range(12)
    ]
    ids = [str(i) for i in (9, 10, 3, 11, 0, 1, 2, 4, 5, 6, 7, 8)]
    events, previous = requests_to_frames(requests, ids)
    events.index = events.index * 3 + 7
    schedules = baseline(events, previous, RetryRules(), quiet_hours=QuietHours())
    for frame, column in ((schedules.retries, "at"), (schedules.messages, "send_at")):
        assert len(frame) > 0 and isinstance(frame.index, pd.RangeIndex)
        ordered = frame.sort_values(["event_id", column], kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, ordered)
        assert str(frame[column].dtype) == "datetime64[ns, UTC]"
    # each event's retries are the same as when it is decided alone
    one = baseline(events.iloc[[1]], previous, RetryRules())
    pd.testing.assert_frame_equal(
        one.retries,
        schedules.retries[schedules.retries["event_id"] == "10"].reset_index(drop=True),
    )
    assert (np.diff(one.retries["at"].array.asi8) >= NS_PER_DAY // 24).all()


def test_an_event_without_a_time_zone_is_an_error():
    events, previous = requests_to_frames(
        [
            {
                "invoice_id": "in_1",
                "customer_id": "c",
                "amount_minor": 100,
                "currency": "EUR",
                "payment_method": "card",
                "card_brand": "visa",
                "processor": "stripe",
                "decline_code": "insufficient_funds",
                "failed_at": "2026-10-20T10:00:00Z",
            }
        ],
        ["e1"],
    )
    events["timezone"] = None
    with pytest.raises(ValueError, match="timezone: missing for event_id 'e1'"):
        fixed_schedule(events, previous, RetryRules(), quiet_hours=QuietHours())
