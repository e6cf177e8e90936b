"""Local-time arithmetic over UTC timestamps, one IANA time zone per row, vectorized.

Schedules are stored in UTC but decided in the customer's local time (quiet hours,
"the morning after payday", "same clock time three days later"). Every helper groups the
rows by time zone and converts each group with one ``tz_convert`` / ``tz_localize``
call, so the cost grows with the number of distinct zones, not with the number of rows.
UTC to local goes through :func:`utc_offsets` (int64 nanoseconds in, int64 out), which
the calendar features share, so one request pays a few microseconds per zone.

Wall-clock times that do not exist (spring-forward gap) move forward to the first
existing instant; wall-clock times that happen twice (fall-back) take the first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from functools import lru_cache

import numpy as np
import pandas as pd

from training.core.columnar import utc_index

UTC_DTYPE = "datetime64[ns, UTC]"
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
NAT = np.iinfo(np.int64).min
LATEST_NS = np.iinfo(np.int64).max
"""The largest int64 nanoseconds: "no time yet" where a minimum is taken."""
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def _as_utc(ts: pd.Series) -> pd.Series:
    ts = pd.to_datetime(ts, utc=True)
    return ts.astype(UTC_DTYPE)


def _zones(tz: pd.Series | str, index: pd.Index) -> pd.Series:
    if isinstance(tz, str):
        return pd.Series(tz, index=index, dtype=object)
    return pd.Series(tz.to_numpy(dtype=object), index=index)


def _zone_offsets(utc_ns: np.ndarray, zone) -> np.ndarray:
    """UTC offsets (ns) of instants in one zone; ``None`` means UTC (``tz_convert(None)``)."""
    if zone is None or zone == "UTC":
        return np.zeros(len(utc_ns), dtype=np.int64)
    if isinstance(zone, str):
        return _offsets_from_segments(utc_ns, zone)
    return _converted_offsets(utc_ns, zone)


_MINUTE_NS = 60_000_000_000
_GRID_NS = 15 * _MINUTE_NS  # offsets change on quarter hours of UTC in every modern zone


def _offsets_from_segments(
    utc_ns: np.ndarray, zone: str, bounds: tuple[int, int] | None = None
) -> np.ndarray:
    """Offsets looked up in the zone's constant-offset segments of each year (cached):
    a binary search instead of a pandas conversion, which costs ~30 µs per call and the
    policy converts a few dozen times per decision (``bounds``: the instants' smallest
    and largest, when the caller has them)."""
    if len(utc_ns):  # the usual case: instants within the years this zone was used for
        span = _SPANS.get(zone)
        if span is not None:
            low, high = (utc_ns.min(), utc_ns.max()) if bounds is None else bounds
            if span[0] <= low and high < span[1]:
                return span[3][np.searchsorted(span[2], utc_ns, side="right") - 1]
    years = utc_ns.view("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    if len(years) and (years.min() < 1700 or years.max() > 2200):  # outside any billing history
        return _converted_offsets(utc_ns, zone)
    first = int(years.min()) if len(years) else 1970
    if len(years) == 0 or (years == first).all():
        _cover(zone, first, first)
        starts, offsets = _year_segments(zone, first)
        return offsets[np.searchsorted(starts, utc_ns, side="right") - 1]
    _cover(zone, int(years.min()), int(years.max()))
    out = np.empty(len(utc_ns), dtype=np.int64)
    for year in np.unique(years):  # a loop over the years present, not over rows
        rows = years == year
        starts, offsets = _year_segments(zone, int(year))
        out[rows] = offsets[np.searchsorted(starts, utc_ns[rows], side="right") - 1]
    return out


_SPANS: dict[str, tuple[int, int, np.ndarray, np.ndarray, int, int]] = {}
"""Per zone: the segments of a run of consecutive years joined (instants start..end ns,
years low..high), so a lookup inside it is one binary search, no year arithmetic."""


def _cover(zone: str, first_year: int, last_year: int) -> None:
    """Join the zone's segments of ``first_year``..``last_year`` (adjacent years: a
    decision's instants) with those already joined when the run stays short."""
    if last_year - first_year > 1:
        return  # instants years apart (or missing ones, read as 1970): the per-year path
    span = _SPANS.get(zone)
    low, high = first_year, last_year
    if span is not None:
        if span[4] <= low and high <= span[5]:
            return
        if max(high, span[5]) - min(low, span[4]) <= 4:
            low, high = min(low, span[4]), max(high, span[5])
    parts = [_year_segments(zone, year) for year in range(low, high + 1)]
    start = int(np.datetime64(f"{low:04d}-01-01", "ns").astype(np.int64))
    end = int(np.datetime64(f"{high + 1:04d}-01-01", "ns").astype(np.int64))
    starts = np.concatenate([p[0] for p in parts])
    offsets = np.concatenate([p[1] for p in parts])
    _SPANS[zone] = (start, end, starts, offsets, low, high)


def warm_zones(zones: Iterable[object], first_year: int, last_year: int) -> int:
    """Build the offset segments of ``zones`` for ``first_year``..``last_year`` now (a
    server at load) instead of in the first decision that meets each zone (2-20 ms a zone
    and year); the lookups give the same offsets either way. Joined as one run per zone
    for at most the last 5 years; names that are not zones are skipped. Returns the
    number of zones warmed."""
    low = max(first_year, last_year - 4)
    warmed = 0
    for zone in dict.fromkeys(zones):
        if not isinstance(zone, str) or zone == "UTC":
            continue
        try:
            for year in range(low, last_year + 1):
                _cover(zone, year, year)
        except ValueError:  # not a time zone: the decision that meets it says so
            continue
        warmed += 1
    return warmed


@lru_cache(maxsize=4096)
def _year_segments(zone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """Start instants (ns) and offsets of the zone's constant-offset stretches in ``year``:
    offsets on a quarter-hour grid, each change then pinned to the second."""
    start = np.datetime64(f"{year:04d}-01-01", "ns").astype(np.int64)
    end = np.datetime64(f"{year + 1:04d}-01-01", "ns").astype(np.int64)
    grid = np.arange(start, end + 1, _GRID_NS, dtype=np.int64)
    offsets = _converted_offsets(grid, zone)
    changes = np.flatnonzero(offsets[1:] != offsets[:-1]) + 1
    starts = [start]
    for i in changes:  # a few per year
        low, high = grid[i - 1], grid[i]
        for step in (_MINUTE_NS, 1_000_000_000):
            points = np.arange(low, high + 1, step, dtype=np.int64)
            k = int(np.argmax(_converted_offsets(points, zone) != offsets[i - 1]))
            low, high = points[k - 1], points[k]
        starts.append(high)
    return np.array(starts, dtype=np.int64), np.concatenate([offsets[:1], offsets[changes]])


def _converted_offsets(utc_ns: np.ndarray, zone) -> np.ndarray:
    """Offsets by pandas' own conversion (the reference the cached segments come from)."""
    if not isinstance(zone, str | tzinfo):
        raise ValueError(f"time zone must be an IANA name, got {zone!r}")
    instants = pd.DatetimeIndex(utc_ns.view("datetime64[ns]"), dtype=_UTC_NS)
    try:
        local = instants.tz_convert(zone).tz_localize(None)
    except Exception as err:  # pytz, zoneinfo and dateutil raise different types
        raise ValueError(f"unknown time zone {zone!r}") from err
    return local.asi8 - utc_ns


def ns_array(values: np.ndarray) -> np.ndarray:
    """int64 nanoseconds of an int64 or ``datetime64`` array (no copy when already int64)."""
    values = np.asarray(values)
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").view(np.int64)
    return values.astype(np.int64, copy=False)


def utc_offsets(utc_ns: np.ndarray, zones: np.ndarray | str | None) -> np.ndarray:
    """UTC offset (int64 ns, local minus UTC) of each instant in its row's zone.

    ``utc_ns``: int64 nanoseconds since the epoch (or ``datetime64``; NaT gets offset 0);
    ``zones``: one IANA name per row, or one name for all rows; missing means UTC.
    One ``tz_convert`` per distinct zone, then integer arithmetic.
    """
    utc_ns = ns_array(utc_ns)
    valid = utc_ns != NAT
    safe = np.where(valid, utc_ns, 0)
    if zones is None or isinstance(zones, str):
        return np.where(valid, _zone_offsets(safe, zones), 0)
    zones = np.asarray(zones, dtype=object)
    if zones.shape != utc_ns.shape:
        raise ValueError(f"zones: expected {utc_ns.shape} values, got {zones.shape}")
    missing = pd.isna(zones)
    if missing.any():
        zones = np.where(missing, "UTC", zones)
    if len(zones) and isinstance(zones[0], str) and (zones == zones[0]).all():
        return np.where(valid, _zone_offsets(safe, zones[0]), 0)  # the API's usual case
    codes, unique = pd.factorize(zones)
    offsets = np.zeros(len(safe), dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(unique) + 1))
    for k, zone in enumerate(unique):
        rows = order[bounds[k] : bounds[k + 1]]
        offsets[rows] = _zone_offsets(safe[rows], zone)
    return np.where(valid, offsets, 0)


def zone_offsets(
    utc_ns: np.ndarray, zone: str, bounds: tuple[int, int] | None = None
) -> np.ndarray:
    """:func:`utc_offsets` of int64 instants in one zone, none of them NaT (the caller
    checked): the same offsets without its per-call checks (``bounds``: the instants'
    smallest and largest, when the caller worked them out already)."""
    if bounds is None or zone is None or zone == "UTC":
        return _zone_offsets(utc_ns, zone)
    return _offsets_from_segments(utc_ns, zone, bounds)


def to_local(ts: pd.Series, tz: pd.Series | str) -> pd.Series:
    """Naive local wall-clock times (``datetime64[ns]``) of UTC ``ts`` in zone ``tz``."""
    if not isinstance(ts, pd.Series):
        ts = pd.Series(ts)
    ns = to_ns(ts)
    zones = tz if isinstance(tz, str) else np.asarray(tz, dtype=object)
    local = np.where(ns != NAT, ns + utc_offsets(ns, zones), NAT)
    return pd.Series(local.view("datetime64[ns]"), index=ts.index, name=ts.name)


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


def quiet_hour(hour: np.ndarray, start_hour: int, end_hour: int) -> np.ndarray:
    """True where the local ``hour`` lies in ``[start_hour, end_hour)`` (may wrap midnight;
    equal bounds: no quiet hours)."""
    hour = np.asarray(hour)
    if start_hour == end_hour:
        return np.zeros(hour.shape, dtype=bool)
    if start_hour > end_hour:
        return (hour >= start_hour) | (hour < end_hour)
    return (hour >= start_hour) & (hour < end_hour)


def in_quiet_hours(
    ts: pd.Series, tz: pd.Series | str, start_hour: int = 21, end_hour: int = 8
) -> pd.Series:
    """True where the local time lies in ``[start_hour, end_hour)`` (may wrap midnight)."""
    hour = local_hour(ts, tz)
    return pd.Series(quiet_hour(hour.to_numpy(), start_hour, end_hour), index=hour.index)


def local_to_utc_ns(local_ns: np.ndarray, zones: np.ndarray | str) -> np.ndarray:
    """:func:`from_local` on int64 nanoseconds: the UTC instant of each local wall-clock
    time, with the same rules (a time in a spring-forward gap moves to the gap's end, a
    time that happens twice takes the first, daylight-saving, instant).

    Each time is tried with the zone's offset a day before and a day after it (a zone
    changes offset at most once in two days); a candidate is right when its own offset
    is the one tried. Only times in a gap (neither is right) go through pandas.
    """
    local_ns = ns_array(local_ns)
    if isinstance(zones, str):
        fast = _one_zone_to_utc(local_ns, zones)
        if fast is not None:
            return fast
    before = utc_offsets(local_ns - DAY_NS, zones)
    after = utc_offsets(local_ns + DAY_NS, zones)
    first, second = local_ns - before, local_ns - after
    first_ok = utc_offsets(first, zones) == before
    second_ok = utc_offsets(second, zones) == after
    out = np.where(
        first_ok & second_ok, np.minimum(first, second), np.where(first_ok, first, second)
    )
    gap = ~(first_ok | second_ok)
    if gap.any():
        rows = np.flatnonzero(gap)
        zone = zones if isinstance(zones, str) else pd.Series(np.asarray(zones, dtype=object)[rows])
        out[rows] = to_ns(from_local(pd.Series(local_ns[rows].view("datetime64[ns]")), zone))
    return out


def _one_zone_to_utc(local_ns: np.ndarray, zone: str) -> np.ndarray | None:
    """:func:`local_to_utc_ns` for one zone whose joined segments (``_SPANS``) cover the
    times a day either side: the same offsets looked up with four binary searches and no
    per-call checks (a lone decision converts a few times a few times). ``None`` when
    they do not cover them, a time is NaT or in a spring-forward gap: the general path."""
    span = _SPANS.get(zone)
    if span is None or not len(local_ns):
        return None
    low, high = int(local_ns.min()), int(local_ns.max())
    if low == NAT or not (span[0] <= low - DAY_NS and high + DAY_NS < span[1]):
        return None
    starts, offsets = span[2], span[3]

    def offset(ns: np.ndarray) -> np.ndarray:
        return offsets[np.searchsorted(starts, ns, side="right") - 1]

    before, after = offset(local_ns - DAY_NS), offset(local_ns + DAY_NS)
    first, second = local_ns - before, local_ns - after
    first_ok, second_ok = offset(first) == before, offset(second) == after
    if not (first_ok | second_ok).all():
        return None
    return np.where(
        first_ok & second_ok, np.minimum(first, second), np.where(first_ok, first, second)
    )


def defer_quiet_ns(
    utc_ns: np.ndarray, zones: np.ndarray | str, start_hour: int, end_hour: int
) -> np.ndarray:
    """:func:`defer_out_of_quiet_hours` on int64 nanoseconds."""
    utc_ns = ns_array(utc_ns)
    if start_hour == end_hour or len(utc_ns) == 0:
        return utc_ns.copy()
    local = utc_ns + utc_offsets(utc_ns, zones)
    hour = (local // HOUR_NS) % 24
    quiet = quiet_hour(hour, start_hour, end_hour) & (utc_ns != NAT)
    next_day = (hour >= start_hour) if start_hour > end_hour else np.zeros(len(hour), dtype=bool)
    if not quiet.any():
        return utc_ns.copy()
    target = local - local % DAY_NS + next_day * DAY_NS + end_hour * HOUR_NS
    rows = np.flatnonzero(quiet)
    out = utc_ns.copy()
    out[rows] = local_to_utc_ns(
        target[rows], zones if isinstance(zones, str) else np.asarray(zones, dtype=object)[rows]
    )
    return out


def defer_out_of_quiet_hours(
    ts: pd.Series, tz: pd.Series | str, start_hour: int = 21, end_hour: int = 8
) -> pd.Series:
    """Move every time inside local quiet hours to the next allowed local time.

    With the default 21:00-08:00, 22:30 local moves to 08:00 the next local day and
    03:00 to 08:00 the same day; times outside quiet hours are returned unchanged.
    """
    ts = _as_utc(ts)
    zones = tz if isinstance(tz, str) else np.asarray(tz, dtype=object)
    moved = defer_quiet_ns(to_ns(ts), zones, start_hour, end_hour)
    return pd.Series(from_ns(moved), index=ts.index, name=ts.name)


def to_ns(values) -> np.ndarray:
    """UTC instants as int64 nanoseconds, without a detour through Python objects."""
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.array
    if isinstance(values, pd.arrays.DatetimeArray) and values.tz is not None:
        return (values if values.unit == "ns" else values.as_unit("ns")).asi8
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True, cache=False)).as_unit("ns").asi8


def from_ns(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds (UTC) back to a UTC ``DatetimeIndex`` (without pandas' checks and
    inference: the policy calls this a few times per decision)."""
    return utc_index(ns)
