"""The partitioned layout of a history: one folder per table, one file per part.

    DIR/customers/part-00000.parquet   DIR/invoices/part-00000.parquet   ...
    DIR/customers/part-00001.parquet   DIR/invoices/part-00001.parquet   ...

Part ``i`` of every table holds the rows of one set of customers: a customer's row, its
invoices and their attempts and messages all sit in parts with the same name. So each
part is a small history of its own that can be validated and turned into features
alone (customer history features need all of a customer's rows together), which is
what the Dask path does (``training/scale``). How customers are assigned to parts is
free; :func:`customer_parts` (a stable hash of ``customer_id`` modulo the number of
parts) is what ``write_partitioned`` uses, and the simulator writes one block of
customers per part.

Read whole (``read_raw_tables``), a partitioned history is each table's parts
concatenated in part-name order; a reject's ``row`` then counts rows over that
concatenation (part 0's rows first).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from training.contract.errors import ContractError
from training.contract.tables import TABLE_NAMES

PART_PATTERN = re.compile(r"^part-(\d{5})\.(parquet|csv)$")


def part_name(index: int) -> str:
    """``part-00007`` (without suffix) for part 7."""
    return f"part-{index:05d}"


def is_partitioned(folder: Path | str) -> bool:
    """True when ``folder`` holds the partitioned layout (a ``customers/`` folder)."""
    return (Path(folder) / TABLE_NAMES[0]).is_dir()


def _part_files(folder: Path, table: str) -> dict[str, Path]:
    """Part name -> file of one table (Parquet wins when both formats of a part exist)."""
    directory = folder / table
    if not directory.is_dir():
        raise ContractError(
            f"missing table '{table}': expected the folder {table}/ of part files in {folder}"
        )
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        match = PART_PATTERN.match(path.name)
        if match is None:
            continue
        name = path.name.split(".")[0]
        if name not in found or match.group(2) == "parquet":
            found[name] = path
    return found


def list_parts(folder: Path | str) -> list[str]:
    """The part names of a partitioned history, checked to be the same for every table."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"history folder {folder} does not exist")
    files = {table: _part_files(folder, table) for table in TABLE_NAMES}
    names = sorted(files[TABLE_NAMES[0]])
    if not names:
        raise ContractError(f"partitioned history {folder}: no part files in customers/")
    for table in TABLE_NAMES[1:]:
        if sorted(files[table]) != names:
            missing = sorted(set(names) - set(files[table]))
            extra = sorted(set(files[table]) - set(names))
            detail = (f"missing {', '.join(missing)}" if missing else "") + (
                f"{'; ' if missing else ''}no customers part for {', '.join(extra)}"
                if extra
                else ""
            )
            raise ContractError(
                f"partitioned history {folder}: table '{table}' does not have the same "
                f"parts as customers ({detail})"
            )
    return names


def part_file(folder: Path | str, table: str, part: str) -> Path:
    """The file of ``table``'s ``part``."""
    files = _part_files(Path(folder), table)
    if part not in files:
        raise ContractError(f"missing part '{part}' of table '{table}' in {folder}")
    return files[part]


def customer_parts(customer_ids: pd.Series | np.ndarray, parts: int) -> np.ndarray:
    """Part number of each customer: a stable hash of the id's text modulo ``parts``
    (``pandas.util.hash_array``, the same on every machine and run)."""
    text = np.asarray(customer_ids, dtype=object).astype(str).astype(object)
    hashes = pd.util.hash_array(text, categorize=False)
    return (hashes % np.uint64(parts)).astype(np.int64)
