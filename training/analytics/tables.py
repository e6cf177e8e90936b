"""Readable tables for people: percentages as ``43.1%``, counts with thousands separators."""

from __future__ import annotations

import pandas as pd
from pandas.api import types as ptypes

_PERCENT_SUFFIXES = ("_rate", "_share", "ci_low", "ci_high")


def _is_percent(name: object) -> bool:
    text = str(name)
    return text.endswith(_PERCENT_SUFFIXES) or text.startswith("recovered by day")


def readable(table: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """A copy with every value formatted as text, for display only.

    Rate and share columns (``*_rate``, ``*_share``, ``ci_low``/``ci_high``, ``recovered by
    day N``) and whole grids of rates in [0, 1] become percentages; integer columns get
    thousands separators; other floats get two decimals. Missing values show as ``–``.
    Underscores in column names become spaces.
    """
    out = table.copy()
    for name in out.columns:
        column = out[name]
        if ptypes.is_bool_dtype(column) or not ptypes.is_numeric_dtype(column):
            continue
        if _is_percent(name):
            text = column.map(lambda v: f"{v:.{decimals}%}")
        elif ptypes.is_integer_dtype(column):
            text = column.map(lambda v: f"{v:,}")
        else:
            text = column.map(lambda v: f"{v:,.2f}")
        out[name] = text.where(column.notna(), "–")
    out.columns = [str(c).replace("_", " ") for c in out.columns]
    return out


def readable_grid(grid: pd.DataFrame, percent: bool = True, decimals: int = 0) -> pd.DataFrame:
    """A grid (e.g. hour of week) formatted cell by cell; NaN shows as ``–``."""
    fmt = (lambda v: f"{v:.{decimals}%}") if percent else (lambda v: f"{v:,.{decimals}f}")
    return grid.apply(lambda column: column.map(fmt).where(column.notna(), "–"))
