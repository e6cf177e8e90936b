"""A lone request's invoice features on Python values against the arrays: one
instant's local calendar (its failure time) against :func:`calendar_arrays`, to the
bit, and one merchant advice code."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from training.core.localtime import NAT
from training.features.calendar import calendar_arrays, instant_calendar
from training.features.invoice import _failure_calendar

ZONES = [
    "Europe/London",
    "America/New_York",
    "UTC",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    None,
    math.nan,
]
DAY_NS = 86_400 * 10**9


def test_one_instant_equals_the_arrays_to_the_bit():
    rng = np.random.default_rng(105)
    met: Counter[str] = Counter()
    low = np.datetime64("1950-01-01", "ns").astype(np.int64)
    high = np.datetime64("2090-01-01", "ns").astype(np.int64)
    for _ in range(3000):
        zone = ZONES[int(rng.integers(0, len(ZONES)))]
        if rng.random() < 0.5:  # near the DST changes of the recent years, on the minute
            ns = np.datetime64("2025-03-01", "ns").astype(np.int64)
            ns += int(rng.integers(0, 300 * 24 * 60)) * 60 * 10**9
        else:
            ns = int(rng.integers(low, high))
        got = instant_calendar(int(ns), zone)
        assert got is not None
        want = calendar_arrays(np.array([ns], dtype=np.int64), np.array([zone], dtype=object))
        for g, w in zip(got, want, strict=True):
            assert type(g) is float and w.dtype == np.float64
            assert np.array([g]).tobytes() == w.tobytes()
        hour, weekday, day, to_end = got
        met["on the hour" if hour == int(hour) else "minutes"] += 1
        met["month end" if to_end == 0 else "month start" if day == 1 else "within"] += 1
        met[f"weekday {weekday:.0f}"] += 1
        met["missing zone" if not isinstance(zone, str) else "zone"] += 1
    assert len(met) == 14 and min(met.values()) >= 10, met


def test_the_failures_calendar_of_one_event_and_of_several():
    ns = np.array([np.datetime64("2025-10-26T01:30", "ns").astype(np.int64)])
    for zone in ("Europe/London", None, math.nan):
        zones = np.array([zone], dtype=object)
        got = _failure_calendar(ns, zones)
        want = calendar_arrays(ns, zones)[:3]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w, strict=True)
    several = np.array([ns[0], NAT, ns[0] + DAY_NS])
    zones = np.array(["Europe/London", None, "Asia/Kathmandu"], dtype=object)
    want = calendar_arrays(several, zones)[:3]
    for g, w in zip(_failure_calendar(several, zones), want, strict=True):
        np.testing.assert_array_equal(g, w, strict=True)


def test_nat_and_zones_that_are_no_names_are_left_to_the_arrays():
    assert instant_calendar(int(NAT), "UTC") is None
    assert instant_calendar(0, 5) is None
    zones = np.array([None], dtype=object)
    got = _failure_calendar(np.array([NAT]), zones)
    assert all(np.isnan(values).all() for values in got)


def test_one_advice_code_equals_the_arrays():
    from training.features import invoice

    texts = [
        "1",
        "01",
        " 2 ",
        "-1",
        "+5",
        "",
        "  ",
        "\t3\n",
        "\u20037",
        "24",
        "abc",
        "1.0",
        "1\x00",
        "\x00",
    ]
    for value in [*texts, None, math.nan, np.str_("3"), 4, 2.0]:
        want = invoice.advice_codes(np.array([value, "x"], dtype=object))[:1]
        got = invoice.advice_codes(np.array([value], dtype=object))
        assert got.dtype == object and type(got[0]) is type(want[0]) is str
        assert got.tolist() == want.tolist(), value


def test_one_zone_name_is_kept_and_a_missing_one_read_as_utc():
    from training.features.frames import _zones_or_utc

    for zones in (["Europe/London"], [None], [math.nan], ["UTC", None], []):
        given = np.array(zones, dtype=object)
        want = np.where(pd.isna(given), "UTC", given) if pd.isna(given).any() else given
        np.testing.assert_array_equal(_zones_or_utc(given), want, strict=True)
