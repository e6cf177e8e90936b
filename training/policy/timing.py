"""Local-time arithmetic over UTC timestamps, one IANA time zone per row, vectorized.

Schedules are stored in UTC but decided in the customer's local time (quiet hours,
"the morning after payday", "same clock time three days later"). Every helper groups the
rows by time zone and converts each group with one ``tz_convert`` / ``tz_localize``
call, so the cost grows with the number of distinct zones, not with the number of rows.

Wall-clock times that do not exist (spring-forward gap) move forward to the first
existing instant; wall-clock times that happen twice (fall-back) take the first one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UTC_DTYPE = "datetime64[ns, UTC]"


def _as_utc(ts: pd.Series) -> pd.Series:
    ts = pd.to_datetime(ts, utc=True)
    return ts.astype(UTC_DTYPE)


def _zones(tz: pd.Series | str, index: pd.Index) -> pd.Series:
    if isinstance(tz, str):
        return pd.Series(tz, index=index, dtype=object)
    return pd.Series(tz.to_numpy(dtype=object), index=index)


def to_local(ts: pd.Series, tz: pd.Series | str) -> pd.Series:
    """Naive local wall-clock times (``datetime64[ns]``) of UTC ``ts`` in zone ``tz``."""
    ts = _as_utc(ts)
    zones = _zones(tz, ts.index)
    unique = pd.unique(zones)
    if len(unique) == 1:  # the API's one-event case: no masks
        return ts.dt.tz_convert(unique[0]).dt.tz_localize(None).astype("datetime64[ns]")
    out = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    for zone in unique:
        mask = (zones == zone).to_numpy()
        out.loc[mask] = ts[mask].dt.tz_convert(zone).dt.tz_localize(None).to_numpy()
    return out


def from_local(local: pd.Series, tz: pd.Series | str) -> pd.Series:
    """UTC instants of naive local wall-clock times ``local`` in zone ``tz`` (DST-safe)."""
    local = pd.to_datetime(local).astype("datetime64[ns]")
    zones = _zones(tz, local.index)
    unique = pd.unique(zones)
    if len(unique) == 1:
        localized = local.dt.tz_localize(
            unique[0], ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
        )
        return localized.dt.tz_convert("UTC").astype(UTC_DTYPE)
    out = pd.Series(pd.NaT, index=local.index, dtype=UTC_DTYPE)
    for zone in unique:
        mask = (zones == zone).to_numpy()
        part = local[mask]
        localized = part.dt.tz_localize(
            zone, ambiguous=np.ones(len(part), dtype=bool), nonexistent="shift_forward"
        )
        out.loc[mask] = localized.dt.tz_convert("UTC").to_numpy()
    return out.astype(UTC_DTYPE)


def local_hour(ts: pd.Series, tz: pd.Series | str) -> pd.Series:
    return to_local(ts, tz).dt.hour


def local_weekday(ts: pd.Series, tz: pd.Series | str) -> pd.Series:
    """Monday=0 ... Sunday=6, in local time."""
    return to_local(ts, tz).dt.weekday


def local_date(ts: pd.Series, tz: pd.Series | str) -> pd.Series:
    """Local calendar day as a naive midnight timestamp (``datetime64[ns]``)."""
    return to_local(ts, tz).dt.normalize()


def at_local_time(
    day: pd.Series, tz: pd.Series | str, hour: int | pd.Series, minute: int | pd.Series = 0
) -> pd.Series:
    """UTC instant of ``hour:minute`` local time on local calendar day ``day``."""
    day = pd.to_datetime(day).astype("datetime64[ns]").dt.normalize()
    offset = pd.to_timedelta(hour, unit="h") + pd.to_timedelta(minute, unit="m")
    if isinstance(offset, pd.TimedeltaIndex):
        offset = pd.Series(offset, index=day.index)
    return from_local(day + offset, tz)


def in_quiet_hours(
    ts: pd.Series, tz: pd.Series | str, start_hour: int = 21, end_hour: int = 8
) -> pd.Series:
    """True where the local time lies in ``[start_hour, end_hour)`` (may wrap midnight)."""
    hour = local_hour(ts, tz)
    if start_hour == end_hour:
        return pd.Series(False, index=hour.index)
    if start_hour > end_hour:
        return (hour >= start_hour) | (hour < end_hour)
    return (hour >= start_hour) & (hour < end_hour)


def defer_out_of_quiet_hours(
    ts: pd.Series, tz: pd.Series | str, start_hour: int = 21, end_hour: int = 8
) -> pd.Series:
    """Move every time inside local quiet hours to the next allowed local time.

    With the default 21:00-08:00, 22:30 local moves to 08:00 the next local day and
    03:00 to 08:00 the same day; times outside quiet hours are returned unchanged.
    """
    ts = _as_utc(ts)
    if start_hour == end_hour or ts.empty:
        return ts
    local = to_local(ts, tz)
    hour = local.dt.hour
    if start_hour > end_hour:
        quiet = (hour >= start_hour) | (hour < end_hour)
        next_day = hour >= start_hour
    else:
        quiet = (hour >= start_hour) & (hour < end_hour)
        next_day = pd.Series(False, index=hour.index)
    if not quiet.any():
        return ts
    target_day = local.dt.normalize() + pd.to_timedelta(next_day.astype(int), unit="D")
    target = at_local_time(target_day[quiet], _zones(tz, ts.index)[quiet], end_hour)
    out = ts.copy()
    out.loc[quiet] = target.to_numpy()
    return out


def to_ns(values) -> np.ndarray:
    """UTC instants as int64 nanoseconds, without a detour through Python objects."""
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.array.asi8
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True, cache=False)).asi8


def from_ns(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds (UTC) back to a UTC ``DatetimeIndex``."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC")
