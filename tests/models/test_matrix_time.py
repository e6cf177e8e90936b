""":meth:`EventMatrix.time_columns` of many rows (each distinct event and instant worked
out once, then gathered) equals the same rows computed a few at a time, to the bit."""

from __future__ import annotations

import numpy as np

from training.features.calendar import DISTINCT_ROWS
from training.features.frames import HOUR_RESPONSE_INPUTS, TIME_COLUMNS
from training.models.matrix import EventMatrix

START = np.datetime64("2026-03-01T00:00", "ns").astype(np.int64)  # DST changes within weeks
HOUR = 3_600 * 10**9


def _matrix(rng: np.random.Generator, zones: list[object]) -> EventMatrix:
    names = ("cust_pay_day_of_month", "cust_pay_weekday", "cust_active_hour", *HOUR_RESPONSE_INPUTS)
    columns = {name: rng.uniform(-3.0, 25.0, len(zones)) for name in names}
    columns["timezone"] = np.array(zones, dtype=object)
    return EventMatrix.from_columns(np.arange(len(zones)).astype(str).astype(object), columns)


def test_repeated_event_instants_give_the_columns_of_each_row_computed_alone():
    rng = np.random.default_rng(7)
    zones = ["Europe/London", "America/New_York", None, "Asia/Kathmandu", "Europe/London"]
    for events in (zones * 8, ["America/New_York"] * 40):  # many zones; one zone
        matrix = _matrix(rng, events)
        # a grid: every event's hours repeated for four retry counts, and instants
        # shared between events (as the message search's slots are)
        pos = np.repeat(np.arange(len(events)), 60)
        ns = START + rng.integers(0, 24 * 40, len(pos)) * HOUR
        pos, ns = np.tile(pos, 4), np.tile(ns, 4)
        assert len(pos) >= DISTINCT_ROWS
        whole = matrix.time_columns(pos, ns)
        assert list(whole) == list(TIME_COLUMNS)
        step = DISTINCT_ROWS // 4  # below the threshold: every row computed as it is
        for name in TIME_COLUMNS:
            parts = [
                matrix.time_columns(pos[i : i + step], ns[i : i + step])[name]
                for i in range(0, len(pos), step)
            ]
            np.testing.assert_array_equal(whole[name], np.concatenate(parts), err_msg=name)
