"""Pay cycles: when money arrives in a customer's account.

Insufficient-funds declines recover once the next pay lands. A customer's pay cycle is a
latent trait of the world; the product never sees it and must learn it from when the
customer's payments succeed.
"""

from __future__ import annotations

import numpy as np

from training.simulator.world import PAY_CYCLES

DEPOSIT_HOUR = 5  # pay is in the account from 05:00 local on payday
_FRIDAY_EPOCH_DAY = 1  # 1970-01-02 was a Friday


def _month_start(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[M]").astype("datetime64[D]")


def _last_business_day(month_start: np.ndarray) -> np.ndarray:
    next_month = (month_start.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return np.busday_offset(next_month - 1, 0, roll="backward")


def _business_day_on_or_before(days: np.ndarray) -> np.ndarray:
    return np.busday_offset(days, 0, roll="backward")


def days_since_payday(local: np.ndarray, cycle: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Days (fractional) since the latest payday at or before each local time.

    ``cycle`` holds names from :data:`PAY_CYCLES`; ``phase`` (0 or 1) picks which Fridays
    a biweekly earner is paid on. Irregular earners have no payday: NaN.
    """
    shifted = local - np.timedelta64(DEPOSIT_HOUR, "h")
    day = shifted.astype("datetime64[D]")
    frac = (shifted - day).astype("timedelta64[s]").astype(np.int64) / 86400.0
    day_number = day.astype(np.int64)
    month = _month_start(day)
    prev_month = (month.astype("datetime64[M]") - 1).astype("datetime64[D]")

    lbd_this = _last_business_day(month)
    lbd_prev = _last_business_day(prev_month)
    since_lbd = np.where(day >= lbd_this, day - lbd_this, day - lbd_prev).astype(np.int64)

    fifteenth = _business_day_on_or_before(month + 14)
    candidates = np.stack(
        [
            np.where(day >= lbd_prev, day - lbd_prev, np.timedelta64(10_000, "D")),
            np.where(day >= fifteenth, day - fifteenth, np.timedelta64(10_000, "D")),
            np.where(day >= lbd_this, day - lbd_this, np.timedelta64(10_000, "D")),
        ]
    ).astype(np.int64)
    since_semi = candidates.min(axis=0)

    since_first = (day - month).astype(np.int64)
    weekday_offset = (day_number - _FRIDAY_EPOCH_DAY) % 7
    biweekly = (day_number - _FRIDAY_EPOCH_DAY - 7 * np.asarray(phase, dtype=np.int64)) % 14

    out = np.full(len(local), np.nan)
    cycle = np.asarray(cycle, dtype=object)
    for name, days in (
        ("monthly_first", since_first),
        ("last_business_day", since_lbd),
        ("semi_monthly", since_semi),
        ("weekly_friday", weekday_offset),
        ("biweekly_friday", biweekly),
    ):
        mask = cycle == name
        out[mask] = days[mask] + frac[mask]
    unknown = set(np.unique(cycle)) - set(PAY_CYCLES)
    if unknown:
        raise ValueError(f"unknown pay cycle(s): {sorted(unknown)}")
    return out
