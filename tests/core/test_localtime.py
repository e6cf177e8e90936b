"""UTC instants to and from int64 nanoseconds (training/core/localtime.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.core.localtime import NAT, from_ns, to_ns, utc_offsets, zone_offsets


@pytest.mark.parametrize(
    "ns",
    [
        np.zeros(0, dtype=np.int64),
        np.array([1_700_000_000_123_456_789], dtype=np.int64),
        np.array([1_700_000_000_000_000_000, NAT, -86_400_000_000_000], dtype=np.int64),
        np.arange(0, 40 * 3_600_000_000_000, 3_600_000_000_000)[::3],  # not contiguous
    ],
)
def test_from_ns_equals_localizing_the_naive_times_to_utc(ns):
    expected = pd.DatetimeIndex(ns.astype(np.int64).view("datetime64[ns]")).tz_localize("UTC")
    got = from_ns(ns)
    pd.testing.assert_index_equal(got, expected, exact=True)
    assert got.freq == expected.freq
    assert np.array_equal(to_ns(got), ns)


def test_from_ns_keeps_its_own_copy_of_the_times():
    ns = np.array([0, 3_600_000_000_000], dtype=np.int64)
    times = from_ns(ns)
    ns[0] = 7
    assert times[0] == pd.Timestamp(0, tz="UTC")


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe"])
def test_zone_offsets_equal_utc_offsets(zone):
    """One zone, no NaT: the same offsets without the checks, across DST changes and a
    year's end (the joined segments and the per-year path)."""
    rng = np.random.default_rng(3)
    start = np.datetime64("2026-01-01", "ns").astype(np.int64)
    for span_days in (2, 400, 3000):
        ns = start + rng.integers(-span_days * 86_400, span_days * 86_400, 500) * 10**9
        np.testing.assert_array_equal(zone_offsets(ns, zone), utc_offsets(ns, zone), strict=True)


def test_warmed_zones_answer_from_one_run_with_the_same_offsets():
    from training.core import localtime

    zone = "America/Santiago"  # southern hemisphere, changes in April and September
    localtime._SPANS.pop(zone, None)
    instants = np.arange(
        pd.Timestamp("2030-01-01", tz="UTC").value,
        pd.Timestamp("2033-01-01", tz="UTC").value,
        7 * 3_600_000_000_001,
        dtype=np.int64,
    )
    expected = localtime._converted_offsets(instants, zone)
    assert localtime.warm_zones([zone, zone, "Not/AZone", None, "UTC"], 2030, 2032) == 1
    span = localtime._SPANS[zone]
    assert (span[4], span[5]) == (2030, 2032)
    assert np.array_equal(utc_offsets(instants, zone), expected)


def test_warming_many_years_keeps_the_last_five():
    from training.core import localtime

    zone = "Pacific/Auckland"
    localtime._SPANS.pop(zone, None)
    localtime.warm_zones([zone], 2040, 2050)
    assert localtime._SPANS[zone][4:] == (2046, 2050)
