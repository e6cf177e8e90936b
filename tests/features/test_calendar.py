"""The numpy calendar kernel against pandas' ``.dt`` accessors, across zones and DST."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.features.calendar import calendar_arrays, local_calendar

ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 with DST
    "Australia/Sydney",  # DST in the southern summer
    "Australia/Lord_Howe",  # half-hour DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
    "America/Sao_Paulo",  # had DST until 2019
]

# Instants around DST changes (spring forward and fall back) and month ends
EDGES = [
    "2026-03-29T00:59:59Z",
    "2026-03-29T01:00:00Z",  # London spring forward
    "2026-10-25T00:59:00Z",
    "2026-10-25T01:00:00Z",  # London fall back
    "2026-03-08T06:59:00Z",
    "2026-03-08T07:00:00Z",  # New York spring forward
    "2026-11-01T05:59:00Z",
    "2026-11-01T06:00:00Z",  # New York fall back
    "2026-04-04T15:59:00Z",
    "2026-04-04T16:00:00Z",  # Sydney fall back
    "2024-02-29T18:29:00Z",
    "2024-02-29T18:30:00Z",  # leap day ends in Kolkata
    "2023-02-28T23:59:59Z",
    "2100-02-28T12:00:00Z",  # not a leap year
    "2000-02-29T12:00:00Z",  # leap year (divisible by 400)
    "2026-12-31T23:30:00Z",
    "2026-01-31T10:15:00Z",
    "1969-12-31T23:59:59Z",  # before the epoch
    "1965-06-30T22:45:00Z",
]


def _expected(ts: pd.Series, zones: np.ndarray) -> pd.DataFrame:
    """The definition local_calendar had before the kernel: pandas .dt fields."""
    local = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    for zone in pd.unique(zones):
        mask = zones == zone
        local[mask] = ts[mask].dt.tz_convert(zone).dt.tz_localize(None).to_numpy()
    return pd.DataFrame(
        {
            "local_hour": (local.dt.hour + local.dt.minute / 60.0).to_numpy(dtype=float),
            "local_weekday": local.dt.weekday.to_numpy(dtype=float),
            "local_day_of_month": local.dt.day.to_numpy(dtype=float),
            "days_to_month_end": (local.dt.days_in_month - local.dt.day).to_numpy(dtype=float),
        },
        index=ts.index,
    )


def _instants() -> tuple[pd.Series, np.ndarray]:
    rng = np.random.default_rng(3)
    edges = pd.to_datetime(EDGES, utc=True).asi8
    spread = rng.integers(pd.Timestamp("1960-01-01").value, pd.Timestamp("2040-01-01").value, 3000)
    minutes = np.arange(-90, 91, 7) * 60 * 10**9  # every few minutes around each edge
    near = (edges[:, None] + minutes[None, :]).ravel()
    ns = np.concatenate([np.repeat(edges, len(ZONES)), near, spread])
    ns[::101] = np.iinfo(np.int64).min  # NaT
    zones = np.array(ZONES, dtype=object)[np.arange(len(ns)) % len(ZONES)]
    ts = pd.Series(pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"))
    ts.index = np.arange(len(ts))[::-1]  # a non-default index is kept
    return ts, zones


def test_calendar_arrays_match_pandas_in_every_zone():
    ts, zones = _instants()
    expected = _expected(ts, zones)
    got = calendar_arrays(ts.array.asi8, zones)
    for column, values in zip(expected.columns, got, strict=True):
        assert values.dtype == np.float64
        np.testing.assert_array_equal(values, expected[column].to_numpy(), err_msg=column)
    assert np.isnan(got[0][ts.isna().to_numpy()]).all()


def test_local_calendar_is_the_kernel_as_a_frame():
    ts, zones = _instants()
    got = local_calendar(ts, pd.Series(zones, index=ts.index), prefix="x_")
    expected = _expected(ts, zones).add_prefix("x_")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_one_zone_for_all_rows_and_datetime64_input():
    ts = pd.Series(pd.to_datetime(["2026-11-20T23:30:00Z", "2024-02-29T18:45:00Z"], utc=True))
    hour, weekday, day, to_end = calendar_arrays(
        ts.to_numpy(dtype="datetime64[ns]"), "Asia/Kolkata"
    )
    assert hour.tolist() == [5.0, 0.25]  # 05:00 Saturday; 00:15 on 1 March
    assert weekday.tolist() == [5.0, 4.0]
    assert day.tolist() == [21.0, 1.0]
    assert to_end.tolist() == [9.0, 30.0]


def test_missing_zone_means_utc_and_bad_zone_is_named():
    ns = pd.to_datetime(["2026-01-31T22:10:00Z"] * 2, utc=True).asi8
    hour, _, day, to_end = calendar_arrays(ns, np.array([None, "UTC"], dtype=object))
    assert hour.tolist() == [22 + 10 / 60] * 2 and day.tolist() == [31.0] * 2
    assert to_end.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
        calendar_arrays(ns, np.array(["UTC", "Mars/Olympus_Mons"], dtype=object))


def test_empty_input():
    out = calendar_arrays(np.array([], dtype=np.int64), np.array([], dtype=object))
    assert all(len(values) == 0 and values.dtype == np.float64 for values in out)


def test_calendar_once_per_distinct_instant_equals_every_row(monkeypatch):
    """per_distinct_instant: the same figures as computing every row, for repeated
    (zone, instant) pairs, the same instant in several zones, NaT, and hash collisions."""
    from training.features import calendar as cal

    rng = np.random.default_rng(11)
    zones = np.array(["Europe/Berlin", "Europe/Paris", "America/New_York", None], dtype=object)
    base = pd.Timestamp("2025-03-29", tz="UTC").value
    times = base + rng.integers(0, 72, 40) * 3_600 * 10**9
    ns = np.concatenate([times[rng.integers(0, 40, 5000)], [np.iinfo(np.int64).min]])
    zone_codes = rng.integers(0, 4, len(ns))

    def compute(rows):
        return cal.calendar_arrays(ns[rows], zones[zone_codes[rows]])

    want = compute(np.arange(len(ns)))
    utc = cal.per_distinct_instant(ns, None, lambda rows: cal.calendar_arrays(ns[rows], "UTC"))
    for a, b in zip(utc, cal.calendar_arrays(ns, "UTC"), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(cal.per_distinct_instant(ns, zone_codes, compute), want, strict=True):
        np.testing.assert_array_equal(a, b)
    calls = []

    def counted(rows):
        calls.append(len(rows))
        return compute(rows)

    cal.per_distinct_instant(ns, zone_codes, counted)
    assert calls[0] <= 40 * 4 + 1  # once per distinct pair
    monkeypatch.setattr(cal, "_MIX", np.uint64(0))  # zones no longer in the key: collisions
    calls.clear()
    got = cal.per_distinct_instant(ns, zone_codes, counted)
    assert calls == [len(ns)]  # every row computed as it is
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
