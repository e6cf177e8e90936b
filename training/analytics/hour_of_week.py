"""Hour-of-week grids (7 local weekdays x 24 local hours) of retries and customer payments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.analytics.cycles import WEEKDAYS

STATISTICS = ("successes", "attempts", "success_rate", "share")


def hour_of_week(
    follow_ups: pd.DataFrame, initiated_by: str = "merchant", statistic: str = "successes"
) -> pd.DataFrame:
    """A 7 x 24 grid (rows Mon..Sun, columns local hour 0..23) of follow-up attempts.

    ``follow_ups`` comes from ``follow_up_attempts`` (local time is the customer's).
    ``statistic``: ``successes`` (count of successful attempts), ``attempts`` (count of
    all attempts), ``success_rate`` (successes / attempts, NaN where nothing was tried) or
    ``share`` (each cell's share of all successes in the grid).
    """
    if initiated_by not in ("merchant", "customer"):
        raise ValueError(f"initiated_by must be 'merchant' or 'customer', not {initiated_by!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; expected one of {STATISTICS}")
    rows = follow_ups[follow_ups["initiated_by"] == initiated_by]
    successes = _grid(rows[rows["succeeded"]])
    if statistic == "successes":
        grid = successes
    elif statistic == "attempts":
        grid = _grid(rows)
    elif statistic == "success_rate":
        attempts = _grid(rows)
        grid = successes.div(attempts.where(attempts > 0))
    else:
        total = successes.to_numpy().sum()
        grid = successes / total if total else successes.astype("float64") * np.nan
    grid.attrs.update(initiated_by=initiated_by, statistic=statistic)
    return grid


def _grid(rows: pd.DataFrame) -> pd.DataFrame:
    counts = pd.crosstab(rows["local_weekday"], rows["local_hour"])
    grid = counts.reindex(index=range(7), columns=range(24), fill_value=0).astype("int64")
    grid.index = pd.Index(WEEKDAYS, name="local weekday")
    grid.columns = pd.Index(range(24), name="local hour")
    return grid
