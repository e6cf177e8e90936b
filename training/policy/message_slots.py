"""The times the message search tries messages at, laid out once per call.

Each round of the search (:mod:`training.policy.message_search`) moves each event's
earliest time out of local quiet hours (its first allowed time) and tries that time and
the allowed local hours of ``message_days_ahead`` local days from its local day, inside
the window. Those local hours are the same every round, only the days shift, and a time
in quiet hours moves to the end of the quiet hours of a local day: both are converted to
UTC once per call, for every local day from the failed charge's to past the window's
end, with the local day of every converted end, so a round converts its earliest times
to local ones once and gathers the rest (a round used to convert each deferred time back
to UTC and its first allowed time to a local day again).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from training.config.policy import PolicyConfig
from training.core.localtime import (
    DAY_NS,
    HOUR_NS,
    defer_quiet_ns,
    local_to_utc_ns,
    quiet_hour,
    utc_offsets,
    zone_offsets,
)
from training.features.calendar import per_distinct_instant


class SlotTable:
    """The slots and the ends of quiet hours of every local day a call's rounds can
    meet, per event, in UTC (see the module's docstring)."""

    def __init__(
        self,
        failed: np.ndarray,
        window_end: np.ndarray,
        tz: np.ndarray | str,
        tz_codes: np.ndarray | None,
        config: PolicyConfig,
    ) -> None:
        self.tz, self.days_ahead = tz, config.message_days_ahead
        self.quiet_start = config.quiet_hours.start_hour
        self.quiet_end = config.quiet_hours.end_hour
        hours = _allowed_hours(tuple(config.message_local_hours), self.quiet_start, self.quiet_end)
        self.per_day = len(hours)
        if len(failed) == 1 and isinstance(tz, str):  # a lone request
            self._one(int(failed[0]), int(window_end[0]), hours, config)
            return
        n = len(failed)
        both = tz if isinstance(tz, str) else np.concatenate([tz, tz])
        first, last = _local_day(np.concatenate([failed, window_end]), both).reshape(2, n)
        self.first_day = first - 1  # a day before the failed charge's
        days = int((last - self.first_day).max()) + 2
        self.day = np.repeat(np.arange(days), len(hours))  # each slot's day in the table
        # the ends of quiet hours: a deferred time is at most a gap and two days past the
        # window's end (beyond it, ``defer`` converts as each round used to)
        ends = 0 if self.quiet_start == self.quiet_end else days + 2
        ends += int(np.ceil(config.min_message_gap_hours / 24)) if ends else 0
        self.ends = ends
        width = len(self.day) + ends
        layout = np.empty((n, width), dtype=np.int64)  # local times: the slots, the ends
        layout[:, : len(self.day)] = (self.first_day[:, None] + self.day[None, :]) * DAY_NS
        layout[:, : len(self.day)] += np.tile(hours, days)
        layout[:, len(self.day) :] = (self.first_day[:, None] + np.arange(ends)) * DAY_NS
        layout[:, len(self.day) :] += self.quiet_end * HOUR_NS
        local_ns = layout.ravel()
        rows = np.repeat(np.arange(n), width)

        def utc(at: np.ndarray) -> tuple[np.ndarray]:
            return (local_to_utc_ns(local_ns[at], tz if isinstance(tz, str) else tz[rows[at]]),)

        (at,) = per_distinct_instant(local_ns, None if tz_codes is None else tz_codes[rows], utc)
        at = at.reshape(n, width)
        self.at = at[:, : len(self.day)]
        # no time twice in an event's slots (two local hours meet in UTC only around a
        # daylight-saving change, and only with hours an hour apart): no round dedupes
        self.distinct = bool((np.diff(np.sort(self.at, axis=1), axis=1) != 0).all())
        self.end_at = at[:, len(self.day) :].ravel()  # by event, then day
        end_zones = tz if isinstance(tz, str) else np.repeat(tz, ends)
        self.end_day = _local_day(self.end_at, end_zones) - np.repeat(self.first_day, ends)
        self.row_start = np.arange(n) * ends  # each event's first end in ``end_at``

    def defer(self, earliest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each event's first allowed time from ``earliest`` (moved out of quiet hours, as
        :func:`~training.core.localtime.defer_quiet_ns` moves it: the same instants) and
        its local day, counted from the table's first; the first may be ``earliest``
        itself (not copied)."""
        local = earliest + _offsets(earliest, self.tz)
        day = local // DAY_NS
        hour = (local - day * DAY_NS) // HOUR_NS
        day -= self.first_day
        start, end = self.quiet_start, self.quiet_end
        if self.ends == 0:
            return earliest, day
        quiet = quiet_hour(hour, start, end)
        if not quiet.any():
            return earliest, day
        # the quiet hours end on the local day of ``earliest`` or on the next one
        end_day = day + (hour >= start) if start > end else day
        if end_day.min() < 0 or end_day.max() >= self.ends:  # outside the table
            ref = defer_quiet_ns(earliest, self.tz, start, end)
            return ref, _local_day(ref, self.tz) - self.first_day
        at = self.row_start + end_day
        return np.where(quiet, self.end_at[at], earliest), np.where(quiet, self.end_day[at], day)

    def _one(self, failed: int, window_end: int, hours: np.ndarray, config: PolicyConfig) -> None:
        """The table of one event in one zone (a lone request): the same arrays as the
        general layout's, in a third of its numpy calls."""
        zone = self.tz
        assert isinstance(zone, str)
        both = np.array([failed, window_end], dtype=np.int64)
        bounds = (min(failed, window_end), max(failed, window_end))
        first, last = ((both + zone_offsets(both, zone, bounds)) // DAY_NS).tolist()
        first_day = first - 1  # a day before the failed charge's
        self.first_day = np.array([first_day], dtype=np.int64)
        days = last - first_day + 2
        self.day = np.repeat(np.arange(days), len(hours))
        ends = 0 if self.quiet_start == self.quiet_end else days + 2
        ends += int(np.ceil(config.min_message_gap_hours / 24)) if ends else 0
        self.ends = ends
        day_ns = np.arange(first_day, first_day + max(days, ends), dtype=np.int64) * DAY_NS
        slots = (day_ns[:days, None] + hours[None, :]).ravel()
        local = np.concatenate([slots, day_ns[:ends] + self.quiet_end * HOUR_NS])
        at = local if zone == "UTC" else local_to_utc_ns(local, zone)  # (UTC: the same)
        self.at = at[None, : len(slots)]
        self.distinct = bool((np.diff(np.sort(self.at, axis=1), axis=1) != 0).all())
        self.end_at = at[len(slots) :]
        self.end_day = _local_day(self.end_at, zone) - first_day
        self.row_start = np.zeros(1, dtype=np.int64)

    def defer_one(self, earliest: int) -> tuple[int, int]:
        """:meth:`defer` of a lone request's one event (one zone) on Python integers: the
        same instant and local day (its offset looked up as :meth:`defer`'s), without a
        dozen numpy calls a round."""
        zone = self.tz
        assert isinstance(zone, str)
        at = np.array([earliest], dtype=np.int64)
        offset = 0 if zone == "UTC" else int(zone_offsets(at, zone, (earliest, earliest))[0])
        local = earliest + offset
        day = local // DAY_NS
        hour = (local - day * DAY_NS) // HOUR_NS
        day -= int(self.first_day[0])
        start, end = self.quiet_start, self.quiet_end
        if self.ends == 0:
            return earliest, day
        quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
        if not quiet:
            return earliest, day
        end_day = day + (hour >= start) if start > end else day
        if end_day < 0 or end_day >= self.ends:  # outside the table
            ref = defer_quiet_ns(at, zone, start, end)
            return int(ref[0]), int(_local_day(ref, zone)[0]) - int(self.first_day[0])
        return int(self.end_at[end_day]), int(self.end_day[end_day])

    def later_one(self, ref: int, ref_day: int, window_end: int) -> np.ndarray:
        """:meth:`times` of a lone request's one event after its first allowed time
        ``ref`` (the times :meth:`times` puts after the first, in its order): a slice of
        the event's slots, the days tried being consecutive."""
        if not self.distinct:
            one = np.zeros(1, dtype=np.intp)
            _, times = self.times(one, np.array([ref]), np.array([ref_day]), np.array([window_end]))
            return times[1:]
        days = len(self.day) // self.per_day if self.per_day else 0
        low = min(max(ref_day, 0), days)
        high = min(max(ref_day + self.days_ahead, low), days)
        at = self.at[0, low * self.per_day : high * self.per_day]
        return at[(at > ref) & (at < window_end)]

    def times(
        self, pos: np.ndarray, ref: np.ndarray, ref_day: np.ndarray, window_end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The times a message of each event ``pos`` (sorted) is tried at: its first
        allowed time ``ref`` and the allowed local hours of the next ``message_days_ahead``
        days from its local day ``ref_day`` (:meth:`defer`'s), inside the window, as the
        index in ``pos`` of each time's event and the time (ns). The first allowed times
        come first (one per event, in ``pos`` order), then the others by event, day and
        hour; no time twice for an event."""
        first = ref[pos]
        day = ref_day[pos][:, None]
        at = self.at[pos]
        keep = (self.day >= day) & (self.day < day + self.days_ahead)
        # strictly after the first allowed time: that one is tried first, and only once
        keep &= (at > first[:, None]) & (at < window_end[pos][:, None])
        grid, _ = np.nonzero(keep)
        owner = np.concatenate([np.arange(len(pos)), grid])
        times = np.concatenate([first, at[keep]])
        if self.distinct:
            return owner, times
        order = np.lexsort((np.arange(len(owner)), times, owner))
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (owner[order][1:] == owner[order][:-1]) & (
            times[order][1:] == times[order][:-1]
        )
        kept = np.sort(order[~repeat])
        return owner[kept], times[kept]


def _local_day(utc_ns: np.ndarray, zones: np.ndarray | str) -> np.ndarray:
    """The local day (days since the epoch, local calendar) of each instant."""
    return (utc_ns + _offsets(utc_ns, zones)) // DAY_NS


def _offsets(utc_ns: np.ndarray, zones: np.ndarray | str) -> np.ndarray:
    """UTC offsets of instants none of which is NaT (the table's and the rounds' times):
    one zone without :func:`~training.core.localtime.utc_offsets`' checks."""
    return zone_offsets(utc_ns, zones) if isinstance(zones, str) else utc_offsets(utc_ns, zones)


@lru_cache(maxsize=16)
def _allowed_hours(local_hours: tuple[int, ...], quiet_start: int, quiet_end: int) -> np.ndarray:
    """A local day's allowed message hours (ns from its midnight; kept, never written)."""
    offsets, quiet = _day_hours(1, local_hours, quiet_start, quiet_end)
    hours = offsets[~quiet]
    hours.flags.writeable = False
    return hours


@lru_cache(maxsize=16)
def _day_hours(
    days_ahead: int, local_hours: tuple[int, ...], quiet_start: int, quiet_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """The message slots of a local day and the next ``days_ahead - 1``: their offsets
    (ns) from the first day's local midnight, by day then hour, and which of them fall
    in quiet hours (kept: the same for every round of every call)."""
    hours = np.array(local_hours, dtype=np.int64)
    days = np.arange(days_ahead)
    offsets = np.repeat(days, len(hours)) * DAY_NS + np.tile(hours, len(days)) * HOUR_NS
    quiet = np.tile(quiet_hour(hours, quiet_start, quiet_end), len(days))
    offsets.flags.writeable = quiet.flags.writeable = False  # shared between calls
    return offsets, quiet
