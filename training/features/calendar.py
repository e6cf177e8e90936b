"""Local-calendar features of UTC instants: the customer's clock, not the server's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.policy.timing import to_local


def local_calendar(ts: pd.Series, tz: pd.Series | str, prefix: str = "") -> pd.DataFrame:
    """Local hour (fractional), weekday (Mon=0), day of month and days to month end."""
    local = to_local(ts, tz)
    hour = local.dt.hour + local.dt.minute / 60.0
    days_in_month = local.dt.days_in_month
    return pd.DataFrame(
        {
            f"{prefix}local_hour": hour.to_numpy(dtype=float),
            f"{prefix}local_weekday": local.dt.weekday.to_numpy(dtype=float),
            f"{prefix}local_day_of_month": local.dt.day.to_numpy(dtype=float),
            f"{prefix}days_to_month_end": (days_in_month - local.dt.day).to_numpy(dtype=float),
        },
        index=ts.index,
    )


def circular_difference(a: np.ndarray, b: np.ndarray, period: float) -> np.ndarray:
    """Signed distance a - b on a circle of ``period`` (in [-period/2, period/2))."""
    return (a - b + period / 2.0) % period - period / 2.0
