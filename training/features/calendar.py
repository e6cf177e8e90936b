"""Local-calendar features of UTC instants: the customer's clock, not the server's.

:func:`calendar_arrays` is the one definition (numpy in, numpy out); it pays one
``tz_convert`` per distinct time zone for the UTC offsets and does the rest with integer
and ``datetime64`` arithmetic, so a single API request costs microseconds, not the
milliseconds of the pandas ``.dt`` accessors.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from training.core.localtime import DAY_NS, NAT, ns_array, to_ns, utc_offsets

MINUTE_NS = 60 * 10**9
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Mon=0)


def calendar_arrays(
    utc_ns: np.ndarray,
    timezones: np.ndarray | str | None,
    offsets: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local hour (hour + minute/60), weekday (Mon=0), day of month, days to month end.

    ``utc_ns``: int64 nanoseconds since the epoch (or ``datetime64``), NaT allowed;
    ``timezones``: one IANA name per instant (or one for all; missing means UTC); or
    ``offsets``: the UTC offsets of the instants (NaT read as 0) by a caller that knows
    the zones better (as codes), ``timezones`` then unread.
    All four outputs are float64 with NaN where the instant is NaT.
    """
    utc_ns = ns_array(utc_ns)
    valid = utc_ns != NAT
    if offsets is None:
        shift = utc_offsets(utc_ns, timezones)
    else:
        shift = offsets(np.where(valid, utc_ns, 0))
    local = np.where(valid, utc_ns + shift, 0)
    days = local // DAY_NS  # floor: days since the epoch, also before 1970
    hour = minute_hour((local - days * DAY_NS) // MINUTE_NS)
    weekday, day, to_end = day_fields(days)
    if not valid.all():
        for values in (hour, weekday, day, to_end):
            values[~valid] = np.nan
    return hour, weekday, day, to_end


def instant_calendar(utc_ns: int, zone: object) -> tuple[float, float, float, float] | None:
    """:func:`calendar_arrays` of one instant (int64 ns) in one zone (missing: UTC), on
    Python numbers (a lone request's failure time): the same offset lookup, the same
    integer arithmetic and float operations; None (the arrays) for NaT, a zone that is
    not a name, or a date outside Python's."""
    missing = zone is None or (isinstance(zone, float) and zone != zone)
    if utc_ns == NAT or not (isinstance(zone, str) or missing):
        return None
    name = zone if isinstance(zone, str) else "UTC"
    local = utc_ns + int(utc_offsets(np.array([utc_ns], dtype=np.int64), name)[0])
    days = local // DAY_NS
    minute = (local - days * DAY_NS) // MINUTE_NS
    if not _FIRST_DAY <= days <= _LAST_DAY:
        return None
    date = _EPOCH + dt.timedelta(days=days)
    in_month = _calendar.monthrange(date.year, date.month)[1]
    return (
        float(minute // 60) + (minute % 60) / 60.0,
        float((days + EPOCH_WEEKDAY) % 7),
        float(date.day),
        float(in_month - date.day),
    )


_EPOCH = dt.date(1970, 1, 1)
_FIRST_DAY = (dt.date.min - _EPOCH).days
_LAST_DAY = (dt.date.max - _EPOCH).days - 31  # (its month's end within Python's dates)


def minute_hour(minute: np.ndarray) -> np.ndarray:
    """Local hour (hour + minute/60) of minutes since local midnight (int64)."""
    return (minute // 60).astype(float) + (minute % 60) / 60.0


def day_fields(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weekday (Mon=0), day of month and days to month end (floats) of local dates given
    as int64 days since the epoch."""
    weekday = ((days + EPOCH_WEEKDAY) % 7).astype(float)
    date = days.astype("datetime64[D]")
    month = date.astype("datetime64[M]")
    month_start = month.astype("datetime64[D]")
    day = (date - month_start).astype(np.int64) + 1
    days_in_month = ((month + 1).astype("datetime64[D]") - month_start).astype(np.int64)
    return weekday, day.astype(float), (days_in_month - day).astype(float)


DISTINCT_ROWS = 2_000
"""Fewest rows worth finding the distinct (zone, instant) pairs of before working on
them: a batch's candidate grids repeat each event's times for every template, channel
and retry count; a lone request's few hundred rows cost less as they are."""

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: spreads zone codes over the key's bits


def per_distinct_instant(
    ns: np.ndarray,
    zone_codes: np.ndarray | None,
    compute: Callable[[np.ndarray], tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, ...]:
    """``compute(rows)`` (per-row arrays of the given rows) for every row, computed once
    per distinct (zone code, instant ``ns``) pair and gathered.

    Pairs are found by hashing them into one int64 key; a row whose pair differs from
    its key's first row (a hash collision) makes every row computed as it is."""
    every = np.arange(len(ns))
    if len(ns) < DISTINCT_ROWS:
        return compute(every)
    ns = ns_array(ns)
    key = ns
    if zone_codes is not None:
        key = (key.view(np.uint64) ^ (zone_codes.astype(np.uint64) * _MIX)).view(np.int64)
    codes, uniques = pd.factorize(key)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = every[::-1]  # each key's first row
    same = ns[first][codes] == ns
    if zone_codes is not None:
        same &= zone_codes[first][codes] == zone_codes
    if not same.all():
        return compute(every)
    return tuple(values[codes] for values in compute(first))


def local_calendar(ts: pd.Series, tz: pd.Series | str, prefix: str = "") -> pd.DataFrame:
    """:func:`calendar_arrays` as a frame with ``ts``'s index (columns ``{prefix}local_hour``,
    ``local_weekday``, ``local_day_of_month``, ``days_to_month_end``)."""
    zones = tz if isinstance(tz, str) else np.asarray(tz, dtype=object)
    hour, weekday, day, to_end = calendar_arrays(to_ns(ts), zones)
    return pd.DataFrame(
        {
            f"{prefix}local_hour": hour,
            f"{prefix}local_weekday": weekday,
            f"{prefix}local_day_of_month": day,
            f"{prefix}days_to_month_end": to_end,
        },
        index=ts.index,
    )


def circular_difference(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    """Signed distance a - b on a circle of ``period`` (in [-period/2, period/2))."""
    return (a - b + period / 2.0) % period - period / 2.0
