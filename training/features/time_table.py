"""The candidate-time features of one event's instants, read from small tables.

A lone decision scores its candidates in some eight model calls, each over a few dozen
to a few hundred instants of the same event, and every feature of an instant's time
(:data:`~training.features.frames.TIME_FEATURES` and the hour response) depends only on
its local date and its minute of the day: the day's fields and the customer's payday
distances per local day of the window, the hour, its distance to the active hour and
the hour response per minute of the day. :class:`EventTimeTable` computes those once per
decision with :func:`~training.features.frames.time_columns` itself (each output is an
element-wise function of its own inputs, so a table entry is the figure the instant's
own computation gives, to the bit) and each model call only converts its instants to
local days and minutes and gathers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.core.localtime import DAY_NS, NAT, ns_array, zone_offsets
from training.features.calendar import MINUTE_NS, day_fields, minute_hour
from training.features.frames import HOUR_RESPONSE_INPUTS, TIME_FEATURES, time_columns

DAY_COLUMNS = (
    "local_weekday",
    "local_day_of_month",
    "days_to_month_end",
    "days_from_usual_payday",
    "weekdays_from_usual_payday",
)
"""The time features that depend on the local date only."""
MINUTE_COLUMNS = (
    "local_hour",
    "hours_from_active_hour",
    "hour_click_rate",
    "active_hour_closeness",
    "hour_sends",
)
"""Those that depend on the minute of the local day only."""
DAY_MARGIN = 7
"""Days added either side when the day table grows (a decision's instants stay within
its window, so it is built once or twice)."""
ORDER = (*TIME_FEATURES, "hour_click_rate", "active_hour_closeness", "hour_sends")
MINUTES = np.arange(24 * 60, dtype=np.int64)


class EventTimeTable:
    """:func:`~training.features.frames.time_columns` of one event's instants (zone
    ``zone``; ``event``: its customer columns as one-value arrays, by name)."""

    def __init__(self, zone: str, event: Mapping[str, np.ndarray]) -> None:
        self.zone = zone
        self._event = event
        self._first_day = 0
        self._by_day: dict[str, np.ndarray] = {}
        self._by_minute: dict[str, np.ndarray] | None = None

    def columns(self, utc_ns: np.ndarray) -> dict[str, np.ndarray] | None:
        """The time features of instants ``utc_ns`` by name; None when one is NaT (the
        general path handles missing times)."""
        ns = ns_array(utc_ns)
        if len(ns) == 0 or ns.min() == NAT:
            return None
        local = ns + zone_offsets(ns, self.zone)
        days = local // DAY_NS
        minute = (local - days * DAY_NS) // MINUTE_NS
        at = days - self._cover(int(days.min()), int(days.max()))
        by_day, by_minute = self._by_day, self._minute_table()
        # in the order time_columns gives them
        return {
            name: by_day[name][at] if name in by_day else by_minute[name][minute] for name in ORDER
        }

    def _cover(self, low: int, high: int) -> int:
        """Make the day table cover local days ``low``..``high``; its first day."""
        first = self._first_day
        last = first + len(self._by_day.get(DAY_COLUMNS[0], ())) - 1
        if first <= low and high <= last:
            return first
        if self._by_day:
            low, high = min(low, first), max(high, last)
        days = np.arange(low - DAY_MARGIN, high + DAY_MARGIN + 1, dtype=np.int64)
        weekday, day, to_end = day_fields(days)
        filler = np.zeros(len(days))  # the hour: no day column reads it
        columns = time_columns(filler, weekday, day, to_end, **self._inputs())
        self._by_day = self._select(columns, DAY_COLUMNS)
        self._first_day = int(days[0])
        return self._first_day

    def _minute_table(self) -> dict[str, np.ndarray]:
        if self._by_minute is None:
            filler = np.zeros(len(MINUTES))  # the calendar: no minute column reads it
            hour = minute_hour(MINUTES)
            columns = time_columns(hour, filler, filler, filler, **self._inputs())
            self._by_minute = self._select(columns, MINUTE_COLUMNS)
        return self._by_minute

    def _inputs(self) -> dict:
        event = self._event
        return {
            "pay_day_of_month": event["cust_pay_day_of_month"],
            "pay_weekday": event["cust_pay_weekday"],
            "active_hour": event["cust_active_hour"],
            "profile": {name: event[name] for name in HOUR_RESPONSE_INPUTS},
        }

    @staticmethod
    def _select(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {name: columns[name] for name in names}
