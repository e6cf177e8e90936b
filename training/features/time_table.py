"""The candidate-time features of one event's instants, read from small tables.

A lone decision scores its candidates in some eight model calls, each over a few dozen
to a few hundred instants of the same event, and every feature of an instant's time
(:data:`~training.features.frames.TIME_COLUMNS`) depends either on its local date only
(:func:`~training.features.frames.day_columns`: the calendar and the customer's payday
distances) or on its minute of the local day only
(:func:`~training.features.frames.hour_columns`: the hour, its distance to the active
hour, the hour response). :class:`EventTimeTable` computes those per local day of the
decision's window and for every minute of the day at once, on first use, with the same
functions (each output is an element-wise function of its own inputs, so a table entry
is the figure the instant's own computation gives, to the bit), and a model call only
converts its instants to local days and minutes and gathers. The minute table is one
call of :func:`~training.features.frames.hour_columns` over the day's 1,440 minutes,
their hour harmonics worked out once per process (:func:`minute_harmonics`): a few
dozen numpy calls, where filling it by the minutes met took the same calls again for
the second decision's minute of the hour (the retry grid keeps the failed charge's,
the message slots are on the hour).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from training.core.localtime import DAY_NS, NAT, ns_array, zone_offsets
from training.features.calendar import MINUTE_NS, day_fields, minute_hour
from training.features.customer import Harmonics, hour_harmonics
from training.features.frames import HOUR_RESPONSE_INPUTS, TIME_COLUMNS, day_columns, hour_columns

DAYS_BEFORE = 7
DAYS_AFTER = 62
"""Local days the day table covers before the first instant and after the last one it is
built for: a decision's instants stay within its window (the table is then built once);
an instant outside makes it grow."""
MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=1)
def minute_harmonics() -> tuple[np.ndarray, Harmonics]:
    """Every minute of the day's local hour and its hour harmonics (the same for every
    event: worked out once per process; never written)."""
    hours = minute_hour(np.arange(MINUTES_PER_DAY, dtype=np.int64))
    harmonics = hour_harmonics(hours)
    for array in (hours, *(a for pair in harmonics.values() for a in pair)):
        array.flags.writeable = False
    return hours, harmonics


class EventTimeTable:
    """:func:`~training.features.frames.time_columns` of one event's instants (zone
    ``zone``; ``event``: its customer columns as one-value arrays, by name)."""

    def __init__(self, zone: str, event: Mapping[str, np.ndarray]) -> None:
        self.zone = zone
        self._event = event
        self._first_day = 0
        # one row per column (a model call gathers each table's rows in one ``take``)
        self._day_names: tuple[str, ...] = ()
        self._by_day = np.zeros((0, 0))  # (columns, days from ``_first_day``)
        self._by_minute: np.ndarray | None = None  # (columns, minutes of the day)
        # each name of TIME_COLUMNS, in order, its table (0: by day, 1: by minute) and row
        self._order: tuple[tuple[str, int, int], ...] = ()

    def columns(self, utc_ns: np.ndarray) -> dict[str, np.ndarray] | None:
        """The time features of instants ``utc_ns`` by name, in :data:`TIME_COLUMNS`'
        order; None when one is NaT (the general path handles missing times)."""
        ns = ns_array(utc_ns)
        if len(ns) == 0:
            return None
        low, high = int(ns.min()), int(ns.max())
        if low == NAT:  # (NaT is the smallest int64)
            return None
        local = ns + zone_offsets(ns, self.zone, (low, high))
        days, since_midnight = np.divmod(local, DAY_NS)
        minute = since_midnight // MINUTE_NS
        at = days - self._cover_around(low, high, days)
        by_minute = self._minutes()
        tables = (self._by_day.take(at, axis=1), by_minute.take(minute, axis=1))
        return {name: tables[t][row] for name, t, row in self._order}

    def _cover_around(self, low_ns: int, high_ns: int, days: np.ndarray) -> int:
        """:meth:`_cover` of the local ``days`` of instants ``low_ns``..``high_ns`` (UTC):
        a local day is within a day of its UTC one (offsets are under 26 hours), so the
        table covers them when it covers two days either side of the UTC days (no
        reduction of ``days``); else the exact days are covered."""
        first = self._first_day
        if first <= low_ns // DAY_NS - 2 and high_ns // DAY_NS + 2 < first + self._by_day.shape[1]:
            return first
        return self._cover(int(days.min()), int(days.max()))

    def _cover(self, low: int, high: int) -> int:
        """Make the day table cover local days ``low``..``high``; its first day."""
        first = self._first_day
        last = first + self._by_day.shape[1] - 1
        if first <= low and high <= last:
            return first
        if self._by_day.shape[1]:
            low, high = min(low, first), max(high, last)
        days = np.arange(low - DAYS_BEFORE, high + DAYS_AFTER + 1, dtype=np.int64)
        event = self._event
        columns = day_columns(
            *day_fields(days), event["cust_pay_day_of_month"], event["cust_pay_weekday"]
        )
        self._day_names = tuple(columns)
        self._by_day = np.array(list(columns.values()), dtype=np.float64)
        self._first_day = int(days[0])
        return self._first_day

    def _minutes(self) -> np.ndarray:
        """The minute table, computed for every minute of the day on first use."""
        if self._by_minute is None:
            hours, harmonics = minute_harmonics()
            event = self._event
            profile = {name: event[name] for name in HOUR_RESPONSE_INPUTS}
            values = hour_columns(hours, event["cust_active_hour"], profile, harmonics)
            self._by_minute = np.array(list(values.values()), dtype=np.float64)
            day_rows = {name: (0, row) for row, name in enumerate(self._day_names)}
            minute_rows = {name: (1, row) for row, name in enumerate(values)}
            rows = {**day_rows, **minute_rows}
            self._order = tuple((name, *rows[name]) for name in TIME_COLUMNS)
        return self._by_minute
