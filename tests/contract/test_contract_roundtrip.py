"""write_history -> load_history gives back the same history, in canonical dtypes."""

from __future__ import annotations

import pandas as pd
import pytest

from training.contract.history import History
from training.contract.io import find_table_file, load_history, write_history
from training.contract.tables import TABLES


def assert_canonical(history: History) -> None:
    for name, frame in history.tables().items():
        assert list(frame.columns) == list(TABLES[name].column_names)
        for column in TABLES[name].columns:
            dtype = frame[column.name].dtype
            expected = {
                "timestamp": "datetime64[ns, UTC]",
                "int": "int64",
                "float": "float64",
                "bool": "bool",
            }.get(column.kind, "object")
            assert str(dtype) == expected, (name, column.name, dtype)
            if expected == "object":
                values = frame[column.name].dropna()
                assert values.map(type).eq(str).all(), (name, column.name)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_is_exact(tmp_path, history, fmt):
    paths = write_history(history, tmp_path / "h", fmt=fmt)
    assert {p.suffix for p in paths.values()} == {f".{fmt}"}
    loaded, report = load_history(tmp_path / "h")
    assert report.ok and report.total_rejected == 0
    assert report.rows == {name: len(frame) for name, frame in history.tables().items()}
    assert_canonical(loaded)
    for name, frame in history.tables().items():
        pd.testing.assert_frame_equal(loaded.tables()[name], frame, check_exact=True)


def test_csv_timestamps_are_iso_utc_with_z(tmp_path, history):
    write_history(history, tmp_path, fmt="csv")
    text = (tmp_path / "customers.csv").read_text()
    assert "2021-03-04T05:06:07.000000000Z" in text  # one unit per column, exact for all rows
    assert "2023-11-30T23:59:59.123456789Z" in text
    assert "2024-02-01T09:00:00Z" in (tmp_path / "invoices.csv").read_text()


def test_writing_one_format_removes_the_other(tmp_path, history):
    write_history(history, tmp_path, fmt="parquet")
    write_history(history, tmp_path, fmt="csv")
    assert not list(tmp_path.glob("*.parquet"))
    assert find_table_file(tmp_path, "customers").suffix == ".csv"


def test_parquet_preferred_when_both_present(tmp_path, history):
    write_history(history, tmp_path, fmt="csv")
    history.customers.to_parquet(tmp_path / "customers.parquet", index=False)
    assert find_table_file(tmp_path, "customers").name == "customers.parquet"


def test_unknown_format_is_refused(tmp_path, history):
    with pytest.raises(ValueError, match="format must be one of parquet, csv"):
        write_history(history, tmp_path, fmt="xlsx")
