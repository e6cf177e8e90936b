"""The candidate-time features of one event's instants, read from small tables.

A lone decision scores its candidates in some eight model calls, each over a few dozen
to a few hundred instants of the same event, and every feature of an instant's time
(:data:`~training.features.frames.TIME_COLUMNS`) depends either on its local date only
(:func:`~training.features.frames.day_columns`: the calendar and the customer's payday
distances) or on its minute of the local day only
(:func:`~training.features.frames.hour_columns`: the hour, its distance to the active
hour, the hour response). :class:`EventTimeTable` computes those per local day of the
decision's window and per minute of the day met, with the same functions (each output
is an element-wise function of its own inputs, so a table entry is the figure the
instant's own computation gives, to the bit), and a model call only converts its
instants to local days and minutes and gathers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.core.localtime import DAY_NS, NAT, ns_array, zone_offsets
from training.features.calendar import MINUTE_NS, day_fields, minute_hour
from training.features.frames import HOUR_RESPONSE_INPUTS, TIME_COLUMNS, day_columns, hour_columns

DAYS_BEFORE = 7
DAYS_AFTER = 62
"""Local days the day table covers before the first instant and after the last one it is
built for: a decision's instants stay within its window (the table is then built once);
an instant outside makes it grow."""
MINUTES_PER_DAY = 24 * 60
HOUR_STARTS = np.arange(0, MINUTES_PER_DAY, 60, dtype=np.int64)


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
        self._minute_names: tuple[str, ...] = ()
        self._by_minute = np.zeros((0, MINUTES_PER_DAY))  # filled where ``_known``
        self._known = np.zeros(MINUTES_PER_DAY, dtype=bool)

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
        if not self._known[minute].all():
            self._add_minutes(minute)
        rows = {
            **dict(zip(self._day_names, self._by_day.take(at, axis=1), strict=True)),
            **dict(zip(self._minute_names, self._by_minute.take(minute, axis=1), strict=True)),
        }
        return {name: rows[name] for name in TIME_COLUMNS}

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

    def _add_minutes(self, minute: np.ndarray) -> None:
        """Compute the minute columns of the minutes of the day not met yet, at every
        hour of the day (a decision's instants share a few minutes of the hour: the
        retry grid's steps keep the failed charge's, the message slots are on the hour;
        a call costs about the same for one minute or for a few dozen)."""
        past_hour = np.unique(minute[~self._known[minute]] % 60)
        new = (HOUR_STARTS[:, None] + past_hour[None, :]).ravel()
        event = self._event
        profile = {name: event[name] for name in HOUR_RESPONSE_INPUTS}
        values = hour_columns(minute_hour(new), event["cust_active_hour"], profile)
        if not self._minute_names:
            self._minute_names = tuple(values)
            self._by_minute = np.full((len(values), MINUTES_PER_DAY), np.nan)
        for row, name in enumerate(self._minute_names):
            self._by_minute[row, new] = values[name]
        self._known[new] = True
