"""Local-time helpers: conversions per row time zone, quiet hours across DST changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.core.localtime import (
    NAT,
    defer_out_of_quiet_hours,
    from_local,
    from_ns,
    in_quiet_hours,
    local_hour,
    local_weekday,
    to_local,
    to_ns,
    utc_offsets,
)

# (utc time, zone, expected result in UTC) with quiet hours 21:00-08:00
DEFER_CASES = [
    # London, spring forward 29 Mar 2026 01:00 UTC: 00:30 GMT -> 08:00 BST = 07:00 UTC
    ("2026-03-29T00:30:00Z", "Europe/London", "2026-03-29T07:00:00Z"),
    # London, fall back 25 Oct 2026: 22:30 BST on the 24th -> 08:00 GMT on the 25th
    ("2026-10-24T21:30:00Z", "Europe/London", "2026-10-25T08:00:00Z"),
    # New York, spring forward 8 Mar 2026: 22:30 EST on the 7th -> 08:00 EDT = 12:00 UTC
    ("2026-03-08T03:30:00Z", "America/New_York", "2026-03-08T12:00:00Z"),
    # New York, fall back 1 Nov 2026: 01:30 EDT (the first one) -> 08:00 EST = 13:00 UTC
    ("2026-11-01T05:30:00Z", "America/New_York", "2026-11-01T13:00:00Z"),
    # Kolkata, UTC+05:30 all year: 01:30 local -> 08:00 local = 02:30 UTC
    ("2026-11-20T20:00:00Z", "Asia/Kolkata", "2026-11-21T02:30:00Z"),
    # Sydney, DST started 4 Oct 2026 02:00: 10:00 UTC = 21:00 AEDT -> 08:00 AEDT on the 5th
    ("2026-10-04T10:00:00Z", "Australia/Sydney", "2026-10-04T21:00:00Z"),
    # Sydney, DST ends 5 Apr 2026: 02:30 (second, AEST) -> 08:00 AEST = 22:00 UTC on the 4th
    ("2026-04-04T16:30:00Z", "Australia/Sydney", "2026-04-04T22:00:00Z"),
    # outside quiet hours: unchanged (20:59 local Amsterdam)
    ("2026-11-20T19:59:00Z", "Europe/Amsterdam", "2026-11-20T19:59:00Z"),
    # exactly 08:00 local is allowed, exactly 21:00 is not
    ("2026-11-20T07:00:00Z", "Europe/Amsterdam", "2026-11-20T07:00:00Z"),
    ("2026-11-20T20:00:00Z", "Europe/Amsterdam", "2026-11-21T07:00:00Z"),
]


def test_defer_out_of_quiet_hours_across_zones_and_dst():
    ts = pd.Series(pd.to_datetime([c[0] for c in DEFER_CASES], utc=True))
    tz = pd.Series([c[1] for c in DEFER_CASES])
    expected = pd.Series(pd.to_datetime([c[2] for c in DEFER_CASES], utc=True))
    got = defer_out_of_quiet_hours(ts, tz)
    pd.testing.assert_series_equal(got, expected.astype(got.dtype), check_names=False)
    assert not in_quiet_hours(got, tz).any()


def test_quiet_hours_not_wrapping_midnight():
    ts = pd.Series(pd.to_datetime(["2026-11-20T13:30:00Z", "2026-11-20T16:00:00Z"], utc=True))
    got = defer_out_of_quiet_hours(ts, "UTC", start_hour=13, end_hour=15)
    assert got.tolist() == [
        pd.Timestamp("2026-11-20T15:00:00Z"),
        pd.Timestamp("2026-11-20T16:00:00Z"),
    ]


def test_local_fields_per_row_zone():
    ts = pd.Series(pd.to_datetime(["2026-11-20T23:30:00Z"] * 3, utc=True), index=[7, 3, 5])
    tz = pd.Series(["Asia/Kolkata", "America/New_York", "UTC"], index=[7, 3, 5])
    assert local_hour(ts, tz).tolist() == [5, 18, 23]
    assert local_weekday(ts, tz).tolist() == [5, 4, 4]  # Saturday in Kolkata
    assert list(to_local(ts, tz).index) == [7, 3, 5]


def test_from_local_handles_gaps_and_repeats():
    local = pd.Series(pd.to_datetime(["2026-03-29 01:30", "2026-10-25 01:30"]))
    got = from_local(local, "Europe/London")
    # 01:30 does not exist on 29 Mar (-> 02:00 BST); happens twice on 25 Oct (first: BST)
    assert got.tolist() == [
        pd.Timestamp("2026-03-29T01:00:00Z"),
        pd.Timestamp("2026-10-25T00:30:00Z"),
    ]


@pytest.mark.parametrize(
    "zone", ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
)
def test_local_times_round_trip(zone):
    from training.core.localtime import local_to_utc_ns

    days = pd.Series(pd.date_range("2026-01-01", "2026-12-31", freq="D"))
    wall = (days + pd.Timedelta(hours=6, minutes=15)).to_numpy().view("int64")
    local = to_local(pd.Series(from_ns(local_to_utc_ns(wall, zone))), zone)
    assert (local.dt.hour == 6).all() and (local.dt.minute == 15).all()
    assert (local.dt.normalize() == days).all()


def test_utc_offsets_per_row_zone_across_dst():
    ts = pd.to_datetime(
        [
            "2026-03-29T00:59:00Z",
            "2026-03-29T01:00:00Z",
            "2026-07-01T12:00:00Z",
            "2026-07-01T12:00:00Z",
        ],
        utc=True,
    ).asi8
    zones = np.array(
        ["Europe/London", "Europe/London", "Asia/Kolkata", "America/St_Johns"], dtype=object
    )
    hours = utc_offsets(np.append(ts, NAT), np.append(zones, "Asia/Kolkata")) / 3.6e12
    assert hours.tolist() == [0.0, 1.0, 5.5, -2.5, 0.0]  # NaT gets 0
    assert utc_offsets(ts, "Asia/Kathmandu").tolist() == [int(5.75 * 3.6e12)] * 4
    with pytest.raises(ValueError, match="zones: expected"):
        utc_offsets(ts, zones[:2])
    with pytest.raises(ValueError, match="Nowhere/Land"):
        utc_offsets(ts, "Nowhere/Land")
    with pytest.raises(ValueError, match="IANA name, got 3"):
        utc_offsets(ts, np.array([3, "UTC", "UTC", "UTC"], dtype=object))
    missing = np.array([None, np.nan, pd.NA, "Asia/Kolkata"], dtype=object)
    assert (utc_offsets(ts, missing) / 3.6e12).tolist() == [0.0, 0.0, 0.0, 5.5]


def test_to_local_many_zones_keeps_nat_index_and_name():
    ts = pd.Series(
        pd.to_datetime(["2026-11-20T23:30:00Z", None, "2026-06-01T00:00:00Z"], utc=True),
        index=[4, 2, 9],
        name="at",
    )
    got = to_local(ts, pd.Series(["Asia/Kolkata", "UTC", "America/New_York"]))
    assert got.dtype == "datetime64[ns]" and got.name == "at" and list(got.index) == [4, 2, 9]
    assert got.iloc[0] == pd.Timestamp("2026-11-21 05:00") and pd.isna(got.iloc[1])
    assert got.iloc[2] == pd.Timestamp("2026-05-31 20:00")


def test_to_ns_is_nanoseconds_whatever_the_unit():
    ns = pd.Timestamp("2026-01-02T03:04:05Z").value
    for unit in ("s", "ms", "us", "ns"):
        aware = pd.Series(pd.to_datetime([ns], utc=True).as_unit(unit))
        assert to_ns(aware).tolist() == [ns], unit
        assert to_ns(aware.dt.tz_localize(None)).tolist() == [ns], unit


ZONES_WITH_ODD_CHANGES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute daylight saving
    "America/Havana",  # changes at midnight
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
]


@pytest.mark.parametrize("zone", ZONES_WITH_ODD_CHANGES)
def test_local_to_utc_ns_equals_from_local_around_every_change(zone):
    from training.core.localtime import from_local, local_to_utc_ns

    # every 10 minutes over two years: each spring-forward gap and fall-back repeat
    local = pd.Series(pd.date_range("2025-01-01", "2026-12-31", freq="10min"))
    want = to_ns(from_local(local, zone))
    got = local_to_utc_ns(local.to_numpy().view("int64"), zone)
    np.testing.assert_array_equal(got, want)
    mixed = np.array(
        [zone, "Europe/Berlin"] * (len(local) // 2) + [zone] * (len(local) % 2), dtype=object
    )
    want_mixed = to_ns(from_local(local, pd.Series(mixed)))
    np.testing.assert_array_equal(
        local_to_utc_ns(local.to_numpy().view("int64"), mixed), want_mixed
    )


@pytest.mark.parametrize("zone", ZONES_WITH_ODD_CHANGES)
def test_one_zone_fast_path_equals_from_local_day_by_day(zone):
    """A lone decision converts a few times of one zone: the binary-search path gives the
    instants pandas gives, and leaves days with a spring-forward gap to the general one."""
    from training.core.localtime import _one_zone_to_utc, from_local, local_to_utc_ns, utc_offsets

    local = pd.Series(pd.date_range("2025-01-01", "2026-12-31", freq="10min"))
    want = to_ns(from_local(local, zone))
    ns = local.to_numpy().view("int64")
    utc_offsets(ns, zone)  # the zone's segments of these years joined, as in a decision
    fast = 0
    for day in range(1, len(ns) // 144 - 1):
        rows = slice(day * 144, (day + 1) * 144)
        got = _one_zone_to_utc(ns[rows], zone)
        if got is not None:
            fast += 1
            np.testing.assert_array_equal(got, want[rows])
        np.testing.assert_array_equal(local_to_utc_ns(ns[rows], zone), want[rows])
    assert fast >= len(ns) // 144 - 10 if zone != "UTC" else fast == 0


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe", "America/Havana"])
def test_deferred_times_leave_quiet_hours_at_their_end(zone):
    from training.core.localtime import from_local

    utc = pd.Series(pd.date_range("2025-03-01", "2025-11-30", freq="37min", tz="UTC"))
    got = defer_out_of_quiet_hours(utc, zone, 21, 8)
    local = to_local(utc, zone)
    quiet = (local.dt.hour >= 21) | (local.dt.hour < 8)
    assert (got[~quiet] == utc[~quiet]).all()
    day = local.dt.normalize() + pd.to_timedelta((local.dt.hour >= 21).astype(int), unit="D")
    want = from_local(day + pd.Timedelta(hours=8), zone)
    np.testing.assert_array_equal(to_ns(got[quiet]), to_ns(want[quiet]))


def test_cached_offsets_equal_pandas_conversion_everywhere():
    """Offsets from the cached yearly segments are pandas' own, in every zone of the
    tz database, at random instants over 50 years and at every change (to the second)."""
    from zoneinfo import available_timezones

    from training.core.localtime import _converted_offsets, _year_segments, utc_offsets

    rng = np.random.default_rng(5)
    low, high = pd.Timestamp("1995-01-01").value, pd.Timestamp("2045-01-01").value
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith("SystemV"))
    for zone in zones[::7]:
        instants = np.sort(rng.integers(low, high, 400))
        np.testing.assert_array_equal(
            utc_offsets(instants, zone), _converted_offsets(instants, zone)
        )
        starts, _ = _year_segments(zone, 2026)
        around = np.concatenate([starts[1:] - 1_000_000_000, starts[1:], starts[1:] + 1])
        np.testing.assert_array_equal(utc_offsets(around, zone), _converted_offsets(around, zone))
        # two adjacent years joined into one table (the first call joins, the next reads it)
        changes = np.concatenate([_year_segments(zone, 2025)[0][1:], starts])
        across = np.sort(np.concatenate([changes - 1_000_000_000, changes, changes + 1]))
        for _ in range(2):
            np.testing.assert_array_equal(
                utc_offsets(across, zone), _converted_offsets(across, zone)
            )
