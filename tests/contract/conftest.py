"""A small valid history, built by hand, and helpers to write it in either format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config.params import ValidateParams
from training.contract.history import History
from training.contract.io import read_raw_tables, write_history
from training.contract.validate import ValidationReport, validate_tables


def utc(*stamps: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), utc=True, format="ISO8601")).dt.as_unit("ns")


def make_history() -> History:
    """Two customers, three invoices (card, SEPA, card), their attempts and messages."""
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "country": ["NL", "US"],
            "timezone": ["Europe/Amsterdam", "America/New_York"],
            "signup_at": utc("2021-03-04T05:06:07Z", "2023-11-30T23:59:59.123456789Z"),
            "plan": ["pro", None],
            "sms_opt_in": [True, False],
        }
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": ["i1", "i2", "i3"],
            "customer_id": ["c1", "c1", "c2"],
            "amount_minor": np.array([1999, 4500, 120], dtype=np.int64),
            "currency": ["EUR", "EUR", "USD"],
            "payment_method": ["card", "sepa_debit", "card"],
            "card_brand": ["visa", None, "mastercard"],
            "processor": ["stripe", "sepa", "braintree"],
            "due_at": utc("2024-02-01T09:00:00Z", "2024-03-01T06:00:00Z", "2024-02-15T14:30:00Z"),
        }
    )
    attempts = pd.DataFrame(
        {
            "attempt_id": ["a1", "a2", "a3", "a4", "a5"],
            "invoice_id": ["i1", "i1", "i2", "i3", "i3"],
            "attempted_at": utc(
                "2024-02-01T09:00:00Z",
                "2024-02-04T10:00:00.5Z",
                "2024-03-01T06:00:00Z",
                "2024-02-15T14:30:00Z",
                "2024-02-16T08:00:00Z",
            ),
            "initiated_by": ["merchant", "merchant", "merchant", "merchant", "customer"],
            "outcome": ["failed", "succeeded", "failed", "failed", "succeeded"],
            "decline_code": ["insufficient_funds", None, "AM04", "2001", None],
            "merchant_advice_code": [None, None, None, "01", None],
            "propensity": [np.nan, 0.25, np.nan, np.nan, np.nan],
        }
    )
    messages = pd.DataFrame(
        {
            "message_id": ["m1", "m2"],
            "invoice_id": ["i2", "i3"],
            "sent_at": utc("2024-03-02T08:00:00Z", "2024-02-15T18:00:00Z"),
            "channel": ["email", "sms"],
            "template": ["friendly_reminder", "payment_link"],
            "propensity": [0.5, 1.0],
            "opened_at": utc("2024-03-02T09:00:00Z", None),
            "clicked_at": utc(None, "2024-02-15T18:05:00Z"),
        }
    )
    return History(customers, invoices, attempts, messages)


@pytest.fixture
def history() -> History:
    return make_history()


@pytest.fixture
def raw_tables(tmp_path: Path) -> dict[str, pd.DataFrame]:
    """The valid history as CSV text frames (every value a string), ready to be broken."""
    folder = tmp_path / "valid-csv"
    write_history(make_history(), folder, fmt="csv")
    return {
        name: pd.read_csv(path, dtype=str, keep_default_na=False)
        for name, path in ((p.stem, p) for p in folder.glob("*.csv"))
    }


def write_raw_csv(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def validate_csv(tmp_path: Path) -> Callable[..., tuple[History, ValidationReport]]:
    """Write text tables as CSV files, read them back and validate them (no reject limit)."""

    def run(tables: dict[str, pd.DataFrame], max_reject_share: float = 1.0):
        folder = write_raw_csv(tables, tmp_path / "under-test")
        return validate_tables(
            read_raw_tables(folder), ValidateParams(max_reject_share=max_reject_share)
        )

    return run
