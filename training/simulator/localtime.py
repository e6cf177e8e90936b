"""Wall-clock conversions between UTC instants and each row's IANA time zone.

Vectorized by time zone: a history has a handful of zones and many rows, so converting
one zone's rows at a time is a few pandas calls, not a loop over rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def to_local(utc: pd.Series | np.ndarray, tz: pd.Series | np.ndarray) -> np.ndarray:
    """Local wall-clock times (naive ``datetime64[ns]``) of UTC instants."""
    stamps = pd.DatetimeIndex(pd.to_datetime(np.asarray(utc), utc=True))
    zones = np.asarray(tz, dtype=object)
    out = np.empty(len(stamps), dtype="datetime64[ns]")
    for zone in pd.unique(zones):
        mask = zones == zone
        out[mask] = stamps[mask].tz_convert(zone).tz_localize(None).to_numpy()
    return out


def to_utc(local: np.ndarray, tz: pd.Series | np.ndarray) -> np.ndarray:
    """UTC instants (``datetime64[ns]``, naive UTC) of local wall-clock times.

    Times that do not exist (spring forward) move forward; ambiguous ones (fall back)
    take the later, standard-time reading.
    """
    walls = pd.DatetimeIndex(np.asarray(local, dtype="datetime64[ns]"))
    zones = np.asarray(tz, dtype=object)
    out = np.empty(len(walls), dtype="datetime64[ns]")
    for zone in pd.unique(zones):
        mask = zones == zone
        localized = walls[mask].tz_localize(
            zone, ambiguous=np.zeros(int(mask.sum()), dtype=bool), nonexistent="shift_forward"
        )
        out[mask] = localized.tz_convert("UTC").tz_localize(None).to_numpy()
    return out


def hour_of_day(local: np.ndarray) -> np.ndarray:
    """Fractional local hour in [0, 24)."""
    day = local.astype("datetime64[D]")
    return (local - day).astype("timedelta64[s]").astype(np.int64) / 3600.0


def weekday(local: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6."""
    days = local.astype("datetime64[D]").astype(np.int64)
    return (days + 3) % 7  # 1970-01-01 was a Thursday


def naive_utc(values: pd.Series | np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    """UTC instants as naive ``datetime64[ns]`` (tz-aware pandas data gives objects otherwise)."""
    index = pd.DatetimeIndex(
        pd.to_datetime(
            np.asarray(values) if not isinstance(values, pd.Series) else values, utc=True
        )
    )
    return index.tz_convert(None).to_numpy()
