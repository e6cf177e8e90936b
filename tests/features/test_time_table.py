"""One event's time features read from its day and minute tables equal, to the bit,
those computed for each instant (the lone decision's path against the general one)."""

from __future__ import annotations

import numpy as np
import pytest

from training.core.localtime import NAT
from training.features.calendar import calendar_arrays
from training.features.frames import HOUR_RESPONSE_INPUTS, time_columns
from training.features.time_table import EventTimeTable, minute_harmonics

ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe"]
START = np.datetime64("2026-03-01T00:00", "ns").astype(np.int64)  # DST changes in range
DAY = 86_400 * 10**9


def _event(rng: np.random.Generator, history: bool) -> dict[str, np.ndarray]:
    names = ("cust_pay_day_of_month", "cust_pay_weekday", "cust_active_hour", *HOUR_RESPONSE_INPUTS)
    if not history:  # a customer without history: NaN and zero counts
        return {
            name: np.array([np.nan if "pay" in name or "active" in name else 0.0]) for name in names
        }
    return {name: np.array([rng.uniform(-3.0, 25.0)]) for name in names}


def _expected(ns: np.ndarray, zone: str, event: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(ns)
    hour, weekday, day, to_end = calendar_arrays(ns, zone)
    return time_columns(
        hour,
        weekday,
        day,
        to_end,
        np.repeat(event["cust_pay_day_of_month"], n),
        np.repeat(event["cust_pay_weekday"], n),
        np.repeat(event["cust_active_hour"], n),
        {name: np.repeat(event[name], n) for name in HOUR_RESPONSE_INPUTS},
    )


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("history", [True, False])
def test_table_equals_the_instants_own_features(zone, history):
    rng = np.random.default_rng(len(zone) + history)
    event = _event(rng, history)
    table = EventTimeTable(zone, event)
    # calls over growing and moving ranges of days (the table is rebuilt to cover them)
    for first_day, days in [(0, 3), (20, 10), (-5, 2), (0, 60), (40, 40)]:
        ns = START + first_day * DAY + rng.integers(0, days * DAY, size=int(rng.integers(1, 300)))
        ns[::7] -= ns[::7] % (15 * 60 * 10**9)  # some on the quarter hour, as slots are
        got = table.columns(ns)
        want = _expected(ns, zone, event)
        assert got is not None and list(got) == list(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


def test_missing_instants_are_left_to_the_general_path():
    table = EventTimeTable("UTC", _event(np.random.default_rng(0), True))
    assert table.columns(np.array([START, NAT])) is None
    assert table.columns(np.zeros(0, dtype=np.int64)) is None


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu"])
def test_instants_at_the_tables_edges_read_their_own_days(zone):
    """Instants whose UTC day is near the first or last day the table covers (where the
    bounds of the UTC days do not settle the local ones: the exact days are covered)
    get their own features, and the table grows only for local days it lacks."""
    rng = np.random.default_rng(3)
    event = _event(rng, True)
    table = EventTimeTable(zone, event)
    table.columns(np.array([START]))
    first, width = table._first_day, table._by_day.shape[1]
    for day in (first - 1, first, first + 1, first + width - 2, first + width - 1, first + width):
        ns = day * DAY + rng.integers(0, DAY, size=50)
        got = table.columns(ns)
        want = _expected(ns, zone, event)
        assert got is not None
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)
    local_days = (START + np.arange(-2, 3) * DAY) // DAY
    table = EventTimeTable(zone, event)
    table.columns(np.array([START]))
    kept = (table._first_day, table._by_day.shape[1])
    table.columns(local_days * DAY + DAY // 2)  # well inside: no growth
    assert (table._first_day, table._by_day.shape[1]) == kept


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu", "America/New_York"])
def test_every_minute_of_a_day_equals_its_own_features(zone):
    """The minute table is made for the whole day at once, from hour harmonics worked
    out once per process (``minute_harmonics``, shared and never written): each of a
    day's 1,440 minutes read from it equals the instant's own computation."""
    event = _event(np.random.default_rng(5), True)
    table = EventTimeTable(zone, event)
    ns = START + 10 * DAY + np.arange(24 * 60, dtype=np.int64) * 60 * 10**9 + 7 * 10**9
    got, want = table.columns(ns), _expected(ns, zone, event)
    assert got is not None
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)
    hours, harmonics = minute_harmonics()
    assert not hours.flags.writeable
    assert all(not a.flags.writeable for pair in harmonics.values() for a in pair)
