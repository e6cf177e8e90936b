"""Parquet input: typed columns are checked as stored, strings are parsed as in CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.params import ValidateParams
from training.contract.io import load_history, read_raw_tables, write_history
from training.contract.validate import validate_tables


def _validate(history, folder):
    write_history(history, folder, fmt="parquet")
    return validate_tables(read_raw_tables(folder), ValidateParams(max_reject_share=1.0))


def _reasons(report, table):
    mine = report.rejects[report.rejects["table"] == table]
    return set(zip(mine["row"], mine["reason"], strict=True))


def test_float_amounts_must_be_whole(tmp_path, history):
    history.invoices["amount_minor"] = np.array([1999.0, 12.5, np.nan])
    _, report = _validate(history, tmp_path)
    assert _reasons(report, "invoices") == {
        (1, "amount_minor is not an integer"),
        (2, "amount_minor is missing (required)"),
    }


def test_whole_float_amounts_become_int64(tmp_path, history):
    history.invoices["amount_minor"] = np.array([1999.0, 4500.0, 120.0])
    loaded, report = _validate(history, tmp_path)
    assert report.total_rejected == 0
    assert loaded.invoices["amount_minor"].dtype == np.int64


def test_negative_int_amount(tmp_path, history):
    history.invoices.loc[2, "amount_minor"] = -120
    _, report = _validate(history, tmp_path)
    assert _reasons(report, "invoices") == {(2, "amount_minor is not > 0")}


def test_naive_datetimes_are_taken_as_utc(tmp_path, history):
    expected = history.invoices["due_at"].copy()
    history.invoices["due_at"] = expected.dt.tz_localize(None).dt.as_unit("us")
    loaded, report = _validate(history, tmp_path)
    assert report.total_rejected == 0
    pd.testing.assert_series_equal(loaded.invoices["due_at"], expected)


def test_offset_datetimes_are_converted_to_utc(tmp_path, history):
    expected = history.attempts["attempted_at"].copy()
    history.attempts["attempted_at"] = expected.dt.tz_convert("Asia/Kolkata")
    loaded, _ = _validate(history, tmp_path)
    pd.testing.assert_series_equal(loaded.attempts["attempted_at"], expected)


def test_string_timestamps_need_an_offset(tmp_path, history):
    history.customers["signup_at"] = ["2021-03-04T05:06:07Z", "2023-11-30 23:59:59"]
    _, report = _validate(history, tmp_path)
    assert _reasons(report, "customers") == {(1, "signup_at has no UTC offset or Z")}


def test_typed_propensity_out_of_range(tmp_path, history):
    history.attempts["propensity"] = [np.nan, 0.0, np.nan, np.nan, np.nan]
    _, report = _validate(history, tmp_path)
    assert _reasons(report, "attempts") == {(1, "propensity is not in (0, 1]")}


def test_integer_booleans(tmp_path, history):
    history.customers["sms_opt_in"] = [1, 2]
    loaded, report = _validate(history, tmp_path)
    assert _reasons(report, "customers") == {(1, "sms_opt_in is not a boolean (true/false)")}
    assert loaded.customers["sms_opt_in"].tolist() == [True]


def test_integer_ids_are_read_as_strings(tmp_path, history):
    history.customers["customer_id"] = [1, 2]
    history.invoices["customer_id"] = [1, 1, 2]
    loaded, _ = load_history(_folder_with(history, tmp_path))
    assert list(loaded.customers["customer_id"]) == ["1", "2"]
    assert list(loaded.invoices["customer_id"]) == ["1", "1", "2"]


def _folder_with(history, folder):
    write_history(history, folder, fmt="parquet")
    return folder
