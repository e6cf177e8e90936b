"""Find and read the four table files of a history folder, as stored (unvalidated).

A history folder holds ``<table>.parquet`` or ``<table>.csv`` for each of the four
tables. When both files exist for a table, the Parquet one is read (it carries types;
the CSV is usually a human-readable copy). A folder in the partitioned layout
(``partitioned.py``: ``<table>/part-NNNNN.parquet``) is read as each table's parts
concatenated in part order. Both the validator and ``io`` (which loads and writes
histories) build on this module, which needs neither of them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.contract.errors import ContractError
from training.contract.partitioned import is_partitioned, list_parts, part_file
from training.contract.tables import TABLE_NAMES

FORMATS = ("parquet", "csv")


def find_table_file(folder: Path | str, table: str) -> Path:
    """The file holding ``table`` in ``folder``; Parquet wins when both formats are there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"history folder {folder} does not exist")
    for fmt in FORMATS:
        path = folder / f"{table}.{fmt}"
        if path.is_file():
            return path
    raise ContractError(
        f"missing table '{table}': expected {table}.parquet or {table}.csv in {folder}"
    )


def read_table_file(path: Path) -> pd.DataFrame:
    """One table as stored: CSV with every value a string (``""`` when empty), Parquet typed.

    CSV is read without NA guessing so that nothing (``"NA"``, ``"null"``, leading zeros,
    ``"1e3"``) is reinterpreted before validation; only the empty field means missing.
    """
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8"
            )
        else:
            frame = pd.read_parquet(path)
    except Exception as error:  # any reader failure is a file the contract cannot accept
        raise ContractError(f"cannot read {path}: {error}") from error
    return frame.reset_index(drop=True)


def read_raw_tables(folder: Path | str) -> dict[str, pd.DataFrame]:
    """All four tables of ``folder``, unvalidated, each with a 0-based row-number index
    (partitioned: over the parts concatenated in part order)."""
    if is_partitioned(folder):
        parts = list_parts(folder)
        return {
            table: pd.concat(
                [read_table_file(part_file(folder, table, part)) for part in parts],
                ignore_index=True,
            )
            for table in TABLE_NAMES
        }
    paths = {table: find_table_file(folder, table) for table in TABLE_NAMES}
    return {table: read_table_file(path) for table, path in paths.items()}


def read_raw_part(folder: Path | str, part: str) -> dict[str, pd.DataFrame]:
    """The four tables of one part of a partitioned history, unvalidated, each with a
    0-based row-number index within the part."""
    return {table: read_table_file(part_file(folder, table, part)) for table in TABLE_NAMES}
