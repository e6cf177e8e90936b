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
from training.contract.partitioned import customer_parts, part_name
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
    "write_part",
    "write_partitioned",
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
        _write_frame(frame, path, fmt)
        for other in FORMATS:
            if other != fmt:
                (folder / f"{table}.{other}").unlink(missing_ok=True)
        paths[table] = path
    return paths


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        _csv_ready(frame).to_csv(path, index=False)
    else:
        _parquet_ready(frame).to_parquet(path, index=False)


def write_part(history: History, folder: Path | str, index: int, fmt: str = "parquet") -> None:
    """Write ``history`` as part ``index`` of a partitioned history (``partitioned.py``):
    ``<table>/part-NNNNN.<fmt>``. The caller keeps each customer's rows in one part."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    for table, frame in history.tables().items():
        directory = Path(folder) / table
        directory.mkdir(parents=True, exist_ok=True)
        _write_frame(frame, directory / f"{part_name(index)}.{fmt}", fmt)


def write_partitioned(
    history: History, folder: Path | str, parts: int, fmt: str = "parquet"
) -> None:
    """Write an in-memory history in the partitioned layout, customers assigned to parts
    by :func:`~training.contract.partitioned.customer_parts` of their id (invoices by their
    ``customer_id``); attempts and messages follow their invoice (rows pointing to no
    invoice go to part 0, where validation rejects them)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    invoice_rows = customer_parts(history.invoices["customer_id"], parts)
    invoice_part = pd.Series(invoice_rows, index=history.invoices["invoice_id"].to_numpy())
    invoice_part = invoice_part[~invoice_part.index.duplicated()]
    of_row = {
        "customers": customer_parts(history.customers["customer_id"], parts),
        "invoices": invoice_rows,
        "attempts": history.attempts["invoice_id"].map(invoice_part).fillna(0).to_numpy(int),
        "messages": history.messages["invoice_id"].map(invoice_part).fillna(0).to_numpy(int),
    }
    frames = history.tables()
    for index in range(parts):
        part = History.from_tables(
            {name: frame[of_row[name] == index] for name, frame in frames.items()}
        )
        write_part(part, folder, index, fmt)


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
