"""Read and write histories in the data contract.

A history folder holds ``<table>.parquet`` or ``<table>.csv`` for each of the four
tables. When both files exist for a table, the Parquet one is read (it carries types;
the CSV is usually a human-readable copy). Anything that trains or evaluates calls
``load_history``: it reads, validates and returns the clean typed ``History``.

Finding and reading the raw files lives in ``raw_tables`` (the validator reads through
it too); its functions are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from training.config.params import ValidateParams
from training.contract.errors import ContractError
from training.contract.history import History
from training.contract.raw_tables import (
    FORMATS,
    find_table_file,
    read_raw_tables,
    read_table_file,
)
from training.contract.report import ValidationReport
from training.contract.validate import validate_tables

__all__ = [
    "FORMATS",
    "find_table_file",
    "load_history",
    "read_raw_tables",
    "read_table_file",
    "write_history",
]

TimeUnit = Literal["s", "ms", "us", "ns"]
# the units coarser than nanoseconds, each with its length in nanoseconds
COARSE_UNITS: tuple[tuple[TimeUnit, int], ...] = (("s", 10**9), ("ms", 10**6), ("us", 10**3))


def _iso_utc(stamps: pd.Series) -> pd.Series:
    """ISO 8601 with ``Z``, at the coarsest unit (s, ms, us, ns) that keeps every value exact."""
    values = stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy()
    ticks = values[~np.isnat(values)].astype(np.int64)
    unit: TimeUnit = next((u for u, step in COARSE_UNITS if not (ticks % step).any()), "ns")
    text = pd.Series(np.datetime_as_string(values, unit=unit, timezone="UTC"), index=stamps.index)
    return text.where(~np.isnat(values), "")


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) or ptypes.is_datetime64_dtype(column):
            if getattr(column.dt, "tz", None) is None:
                column = column.dt.tz_localize("UTC")
            out[name] = _iso_utc(column)
        elif ptypes.is_bool_dtype(column):
            out[name] = np.where(column.to_numpy(dtype=bool), "true", "false")
    return out


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert("UTC")
        elif ptypes.is_datetime64_dtype(out[name]):
            out[name] = out[name].dt.tz_localize("UTC")
    return out


def write_history(history: History, folder: Path | str, fmt: str = "parquet") -> dict[str, Path]:
    """Write the four tables as ``<table>.<fmt>``; return the paths by table.

    CSV timestamps are written as ISO 8601 in UTC with ``Z``, booleans as ``true``/``false``,
    missing values as empty fields. A file of the other format for the same table is
    removed, so the folder holds exactly the history just written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for table, frame in history.tables().items():
        path = folder / f"{table}.{fmt}"
        if fmt == "csv":
            _csv_ready(frame).to_csv(path, index=False)
        else:
            _parquet_ready(frame).to_parquet(path, index=False)
        for other in FORMATS:
            if other != fmt:
                (folder / f"{table}.{other}").unlink(missing_ok=True)
        paths[table] = path
    return paths


def load_history(
    folder: Path | str, settings: ValidateParams | None = None
) -> tuple[History, ValidationReport]:
    """Read and validate ``folder``; return the clean typed history and the report.

    Rejected rows are left out of the history. Raises ``ContractError`` when a table or
    required column is missing, or when the reject share is above
    ``settings.max_reject_share``.
    """
    settings = settings if settings is not None else ValidateParams()
    history, report = validate_tables(read_raw_tables(folder), settings)
    if not report.ok:
        raise ContractError(f"{folder}: {report.limit_message()}")
    return history, report
