"""Enforce the data contract on a history: clean typed tables plus every rejected row.

Per table, ``coerce`` settles types and ``schemas`` (pandera) checks values; then the
cross-table rules run, vectorized, parents before children: foreign keys
(invoice -> customer, attempt -> invoice, message -> invoice; a row whose parent was
rejected is rejected too) and time order (no attempt or message before its invoice's
``due_at``; no open or click before the message was sent). A duplicated key keeps its
first row (file order) and rejects the later ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.config.params import ValidateParams
from training.contract.coerce import PROBLEM_COLUMNS, coerce_table, empty_problems, problems_frame
from training.contract.errors import ContractError
from training.contract.history import History
from training.contract.raw_tables import read_raw_tables
from training.contract.report import REJECT_COLUMNS, ValidationReport
from training.contract.schemas import missing_reason, schema_problems
from training.contract.tables import TABLE_NAMES, TABLES

__all__ = ["ContractError", "ValidationReport", "validate_folder", "validate_tables"]

# (child table, column, parent table), parents listed before their children
FOREIGN_KEYS = (
    ("invoices", "customer_id", "customers"),
    ("attempts", "invoice_id", "invoices"),
    ("messages", "invoice_id", "invoices"),
)
# (table, column, reference column, reference table or None for the same row)
TIME_ORDER = (
    ("attempts", "attempted_at", "due_at", "invoices"),
    ("messages", "sent_at", "due_at", "invoices"),
    ("messages", "opened_at", "sent_at", None),
    ("messages", "clicked_at", "sent_at", None),
)


def unknown_parent_reason(column: str, parent: str) -> str:
    return f"{column} not found in {parent}"


def rejected_parent_reason(column: str, parent: str) -> str:
    return f"{column} refers to a rejected {parent} row"


def time_order_reason(column: str, reference: str, parent: str | None) -> str:
    owner = "its invoice's " if parent else ""
    return f"{column} is before {owner}{reference}"


def check_structure(raw: dict[str, pd.DataFrame]) -> None:
    """Every table and every required column is present, or a ContractError names them."""
    missing_tables = [t for t in TABLE_NAMES if t not in raw]
    if missing_tables:
        raise ContractError(f"missing table(s): {', '.join(missing_tables)}")
    missing = [
        f"'{column}' in table '{name}'"
        for name in TABLE_NAMES
        for column in TABLES[name].required_columns
        if column not in raw[name].columns
    ]
    if missing:
        raise ContractError(f"missing required column(s): {'; '.join(missing)}")


def _own_problems(raw: pd.DataFrame, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed frame and the problems found within the table itself."""
    table = TABLES[name]
    typed, type_problems = coerce_table(raw, table)
    checked = schema_problems(typed, table)
    # a value that did not parse is already rejected for its type, not also as missing
    unparsed = type_problems[["row", "field"]].drop_duplicates().assign(unparsed=True)
    checked = checked.merge(unparsed, on=["row", "field"], how="left")
    is_missing = checked["reason"].eq(checked["field"].map(missing_reason))
    checked = checked[~(is_missing & checked["unparsed"].eq(True))]
    return typed, pd.concat([type_problems, checked[list(PROBLEM_COLUMNS)]], ignore_index=True)


def _foreign_key_problems(
    child: pd.DataFrame, column: str, parent: pd.DataFrame, parent_name: str, parent_ok: pd.Series
) -> pd.DataFrame:
    key = TABLES[parent_name].key
    values = child[column]
    known = values.isin(parent[key].dropna())
    accepted = values.isin(parent.loc[parent_ok, key])
    return pd.concat(
        [
            problems_frame(
                child.index[values.notna() & ~known],
                column,
                unknown_parent_reason(column, parent_name),
            ),
            problems_frame(
                child.index[known & ~accepted], column, rejected_parent_reason(column, parent_name)
            ),
        ],
        ignore_index=True,
    )


def _time_order_problems(
    typed: dict[str, pd.DataFrame], ok: dict[str, pd.Series], name: str
) -> pd.DataFrame:
    frame = typed[name]
    found = [empty_problems()]
    for table, column, reference, parent in TIME_ORDER:
        if table != name:
            continue
        if parent is None:
            limit = frame[reference]
        else:
            parents = typed[parent][ok[parent]]
            limit = frame[TABLES[parent].key].map(parents.set_index(TABLES[parent].key)[reference])
        early = (frame[column] < limit).to_numpy()  # NaT on either side compares False
        found.append(
            problems_frame(frame.index[early], column, time_order_reason(column, reference, parent))
        )
    return pd.concat(found, ignore_index=True)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    clean = frame.reset_index(drop=True)
    if "amount_minor" in clean.columns:
        clean["amount_minor"] = clean["amount_minor"].astype("int64")
    return clean


def _rejects(raw: pd.DataFrame, name: str, problems: pd.DataFrame) -> pd.DataFrame:
    """Problems of one table as reject lines, with the row's key and raw values as JSON."""
    if problems.empty:
        return pd.DataFrame(columns=list(REJECT_COLUMNS))
    problems = problems.drop_duplicates(["row", "reason"]).sort_values("row", kind="stable")
    rows = pd.Index(problems["row"].unique())
    lines = raw.loc[rows].to_json(
        orient="records", lines=True, date_format="iso", default_handler=str
    )
    raw_json = pd.Series(lines.splitlines(), index=rows)
    key = TABLES[name].key
    ids = raw.loc[rows, key].astype(str).where(raw.loc[rows, key].notna(), "")
    return pd.DataFrame(
        {
            "table": name,
            "row": problems["row"].to_numpy(),
            "id": problems["row"].map(ids).to_numpy(),
            "field": problems["field"].to_numpy(),
            "reason": problems["reason"].to_numpy(),
            "raw": problems["row"].map(raw_json).to_numpy(),
        }
    )


def validate_tables(
    raw: dict[str, pd.DataFrame], settings: ValidateParams
) -> tuple[History, ValidationReport]:
    """Validate raw tables (as read by ``read_raw_tables``); return the clean history and report."""
    check_structure(raw)
    frames = {name: raw[name].reset_index(drop=True) for name in TABLE_NAMES}
    typed: dict[str, pd.DataFrame] = {}
    problems: dict[str, pd.DataFrame] = {}
    ok: dict[str, pd.Series] = {}
    for name in TABLE_NAMES:  # parents first, so a child sees its parents' final verdict
        typed[name], own = _own_problems(frames[name], name)
        found = [own]
        found += [
            _foreign_key_problems(typed[name], column, typed[parent], parent, ok[parent])
            for child, column, parent in FOREIGN_KEYS
            if child == name
        ]
        found.append(_time_order_problems(typed, ok, name))
        problems[name] = pd.concat(found, ignore_index=True)
        ok[name] = pd.Series(
            ~typed[name].index.isin(problems[name]["row"]), index=typed[name].index
        )
    history = History.from_tables({name: _canonical(typed[name][ok[name]]) for name in TABLE_NAMES})
    rejects = pd.concat(
        [_rejects(frames[name], name, problems[name]) for name in TABLE_NAMES], ignore_index=True
    )
    report = ValidationReport(
        rows={name: len(frames[name]) for name in TABLE_NAMES},
        rejects=rejects,
        max_reject_share=settings.max_reject_share,
    )
    return history, report


def default_rejects_path(folder: Path | str) -> Path:
    return Path(folder) / "rejects" / "rejects.csv"


def validate_folder(
    folder: Path | str, settings: ValidateParams, rejects_path: Path | str | None = None
) -> ValidationReport:
    """Validate the history in ``folder`` and write the rejects file (header only if none).

    Returns the report (``report.ok`` is false above the reject-share limit); raises
    ``ContractError`` for a missing folder, table or required column.
    """
    _, report = validate_tables(read_raw_tables(folder), settings)
    report.write_rejects(Path(rejects_path) if rejects_path else default_rejects_path(folder))
    return report
