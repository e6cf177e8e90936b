"""Whole-history errors: missing folder, table or column; extra columns; the reject limit."""

from __future__ import annotations

import pytest

from training.config.params import ValidateParams
from training.contract.errors import ContractError
from training.contract.io import load_history, write_history


def test_missing_folder(tmp_path):
    with pytest.raises(ContractError, match="history folder .*nowhere does not exist"):
        load_history(tmp_path / "nowhere")


def test_missing_table_is_named(tmp_path, history):
    write_history(history, tmp_path, fmt="csv")
    (tmp_path / "messages.csv").unlink()
    with pytest.raises(
        ContractError, match=r"missing table 'messages': expected messages.parquet or messages.csv"
    ):
        load_history(tmp_path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("table", "column"),
    [("customers", "timezone"), ("attempts", "outcome"), ("invoices", "due_at")],
)
def test_missing_required_column_is_named(tmp_path, history, fmt, table, column):
    frame = getattr(history, table)
    setattr(history, table, frame.drop(columns=[column]))
    write_history(history, tmp_path, fmt=fmt)
    with pytest.raises(
        ContractError, match=rf"missing required column\(s\): '{column}' in table '{table}'"
    ):
        load_history(tmp_path)


def test_every_missing_column_is_listed(tmp_path, history):
    history.customers = history.customers.drop(columns=["country"])
    history.messages = history.messages.drop(columns=["template", "channel"])
    write_history(history, tmp_path, fmt="csv")
    with pytest.raises(ContractError) as caught:
        load_history(tmp_path)
    message = str(caught.value)
    for expected in (
        "'country' in table 'customers'",
        "'channel' in table 'messages'",
        "'template' in table 'messages'",
    ):
        assert expected in message


def test_unreadable_file_is_named(tmp_path, history):
    write_history(history, tmp_path, fmt="parquet")
    (tmp_path / "attempts.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ContractError, match="cannot read .*attempts.parquet"):
        load_history(tmp_path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_extra_columns_are_ignored(tmp_path, history, fmt):
    expected = history.invoices.copy()
    history.invoices["internal_note"] = "vip"
    history.customers["crm_score"] = [0.1, 0.9]
    write_history(history, tmp_path, fmt=fmt)
    loaded, report = load_history(tmp_path)
    assert report.total_rejected == 0
    assert "internal_note" not in loaded.invoices.columns
    assert "crm_score" not in loaded.customers.columns
    assert list(loaded.invoices.columns) == list(expected.columns)


def _history_with_one_bad_row(history, folder):
    history.invoices.loc[0, "currency"] = "EURO"  # rejects i1, its attempts a1 and a2
    write_history(history, folder, fmt="csv")
    return folder  # 3 of 12 rows rejected: 25%


def test_reject_share_above_limit_fails(tmp_path, history):
    folder = _history_with_one_bad_row(history, tmp_path)
    with pytest.raises(
        ContractError,
        match=r"3 of 12 rows rejected \(25.00%\), above the limit of 20.00% \(validate.max_reject_share\)",
    ):
        load_history(folder, ValidateParams(max_reject_share=0.2))


def test_reject_share_at_or_below_limit_passes(tmp_path, history):
    folder = _history_with_one_bad_row(history, tmp_path)
    loaded, report = load_history(folder, ValidateParams(max_reject_share=0.25))
    assert report.ok and report.reject_share == pytest.approx(0.25)
    assert report.rejected_rows == {"customers": 0, "invoices": 1, "attempts": 2, "messages": 0}
    assert list(loaded.invoices["invoice_id"]) == ["i2", "i3"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_empty_table_is_valid(tmp_path, history, fmt):
    history.messages = history.messages.iloc[:0]
    write_history(history, tmp_path, fmt=fmt)
    loaded, report = load_history(tmp_path)
    assert report.rows["messages"] == 0 and report.total_rejected == 0
    assert loaded.messages.empty
    assert str(loaded.messages["sent_at"].dtype) == "datetime64[ns, UTC]"


def test_csv_without_header_is_a_contract_error(tmp_path, history):
    write_history(history, tmp_path, fmt="csv")
    (tmp_path / "customers.csv").write_text("")
    with pytest.raises(ContractError, match="cannot read .*customers.csv"):
        load_history(tmp_path)
