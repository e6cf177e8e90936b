"""What a worker does with one part of a partitioned history: validate it, then build
its training rows with the in-process functions (``validate_tables``,
``build_training_data``). A part holds whole customers (``training/contract/partitioned.py``),
so its customer-history features are those of the whole history once the part is given
the whole history's start (``history_start``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import TrainParams, ValidateParams
from training.config.retry_limits import UpdateRequests
from training.contract.history import History
from training.contract.raw_tables import read_raw_part
from training.contract.report import REJECT_COLUMNS, ValidationReport
from training.contract.tables import TABLE_NAMES
from training.contract.validate import validate_tables
from training.declines.table import DeclineTable
from training.models.datasets import build_training_data
from training.models.split import TimeSplit
from training.tracking.mlflow_runs import data_fingerprint

# columns a part's training rows carry besides the features
LABEL, DUE_AT, INVOICE, PERIOD = "_label", "_due_at", "_invoice_id", "_period"
ROW_COLUMNS = (LABEL, DUE_AT, INVOICE, PERIOD)
MODEL_NAMES = ("retry", "message", "self_cure")


@dataclass
class ValidatedPart:
    """One part's clean history and what validation found (``rejects``: rows numbered
    within the part)."""

    name: str
    history: History
    rows: dict[str, int]
    rejects: pd.DataFrame


@dataclass
class PartSummary:
    """What the client needs of a validated part: counts, rejects, due dates, customers."""

    name: str
    rows: dict[str, int]
    rejects: pd.DataFrame
    due_at: pd.Series
    customers: pd.DataFrame
    templates: set[str]
    valid_rows: dict[str, int]
    sha256: str


def validate_part(folder: str, part: str) -> ValidatedPart:
    """Read and validate one part; the reject-share limit is applied to all parts at once."""
    history, report = validate_tables(
        read_raw_part(Path(folder), part), ValidateParams(max_reject_share=1.0)
    )
    return ValidatedPart(part, history, report.rows, report.rejects)


def summarize(part: ValidatedPart) -> PartSummary:
    history = part.history
    return PartSummary(
        name=part.name,
        rows=part.rows,
        rejects=part.rejects,
        due_at=history.invoices["due_at"],
        customers=history.customers,
        templates=set(history.messages["template"].dropna().unique()),
        valid_rows={name: len(frame) for name, frame in history.tables().items()},
        sha256=data_fingerprint(history)["sha256"],
    )


def combined_report(summaries: list[PartSummary], settings: ValidateParams) -> ValidationReport:
    """The report of the whole history: rows summed, each part's reject rows renumbered
    over the parts concatenated in order (as ``read_raw_tables`` numbers them)."""
    offsets = dict.fromkeys(TABLE_NAMES, 0)
    rejects = []
    for summary in summaries:
        found = summary.rejects
        if len(found):
            found = found.assign(row=found["row"] + found["table"].map(offsets).astype(int))
            rejects.append(found)
        for name in TABLE_NAMES:
            offsets[name] += summary.rows[name]
    frame = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(columns=list(REJECT_COLUMNS))
    )
    return ValidationReport(rows=offsets, rejects=frame, max_reject_share=settings.max_reject_share)


def combined_fingerprint(summaries: list[PartSummary]) -> dict:
    """sha256 over the parts' own fingerprints (``data_fingerprint``) in part order, and
    the row counts; not the same digest as the history read whole."""
    digest = hashlib.sha256()
    rows = dict.fromkeys(TABLE_NAMES, 0)
    for summary in summaries:
        digest.update(f"{summary.name}:{summary.sha256}\n".encode())
        for name in TABLE_NAMES:
            rows[name] += summary.valid_rows[name]
    return {"sha256": digest.hexdigest(), "rows": rows}


@dataclass
class PartRows:
    """One part's training rows per model (features and :data:`ROW_COLUMNS`), its
    customer event log and a few failure events (the model's input example)."""

    rows: dict[str, pd.DataFrame]
    log: pd.DataFrame
    example_events: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)


def training_rows(
    part: ValidatedPart,
    params: TrainParams,
    table: DeclineTable,
    update: UpdateRequests,
    history_start: pd.Timestamp,
    split: TimeSplit,
    cell_weights: np.ndarray | None = None,
) -> PartRows:
    """The part's training rows, built by :func:`build_training_data` (one code path).
    ``cell_weights``: the active hour's cell weights learned over all parts
    (``training/scale/active_hour.py``; None: equal weighting, or learned from the part)."""
    data = build_training_data(
        part.history,
        table,
        params.window_days,
        update,
        history_start,
        active_hour=params.features.active_hour,
        cell_weights=cell_weights,
    )
    rows = {}
    for name in MODEL_NAMES:
        dataset = getattr(data, name)
        frame = dataset.features.reset_index(drop=True)
        rows[name] = frame.assign(
            **{
                LABEL: np.asarray(dataset.label, dtype=int),
                DUE_AT: dataset.due_at.reset_index(drop=True),
                INVOICE: np.asarray(dataset.invoice_id, dtype=object),
                PERIOD: split.assign(dataset.due_at),
            }
        )
    events = data.events
    test = events[events["failed_at"] >= split.test_start]
    example = (test if len(test) else events).head(2)
    return PartRows(rows, data.log, example)


def model_rows(part: PartRows, name: str, period: str | None = None) -> pd.DataFrame:
    """One model's rows of a part, of one period (``train``, ``valid``, ``test``) or all."""
    frame = part.rows[name]
    if period is None:
        return frame
    return frame[frame[PERIOD].to_numpy() == period].reset_index(drop=True)
