"""The partitioned layout (``<table>/part-NNNNN``): read whole with the same validation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from training.config.params import SimulateParams, ValidateParams
from training.contract.errors import ContractError
from training.contract.io import load_history, read_raw_tables, write_history, write_partitioned
from training.contract.partitioned import customer_parts, is_partitioned, list_parts
from training.contract.raw_tables import read_raw_part
from training.contract.tables import TABLES
from training.contract.validate import validate_folder
from training.simulator.run import simulate_history

LENIENT = ValidateParams(max_reject_share=1.0)


@pytest.fixture(scope="module")
def history():
    return simulate_history(SimulateParams(invoices=600, seed=4, months=6)).history


def _sorted(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame.sort_values(TABLES[name].key).reset_index(drop=True)


def test_partitioned_history_reads_like_the_flat_one(history, tmp_path):
    write_partitioned(history, tmp_path / "parts", 3)
    write_history(history, tmp_path / "flat")
    assert is_partitioned(tmp_path / "parts") and not is_partitioned(tmp_path / "flat")
    assert list_parts(tmp_path / "parts") == ["part-00000", "part-00001", "part-00002"]
    parts, parts_report = load_history(tmp_path / "parts", LENIENT)
    flat, flat_report = load_history(tmp_path / "flat", LENIENT)
    assert parts_report.rows == flat_report.rows and parts_report.total_rejected == 0
    for name, frame in flat.tables().items():
        pd.testing.assert_frame_equal(_sorted(parts.tables()[name], name), _sorted(frame, name))


def test_each_customer_sits_in_one_part(history, tmp_path):
    write_partitioned(history, tmp_path, 4)
    owner: dict[str, str] = {}
    invoice_part: dict[str, str] = {}
    for part in list_parts(tmp_path):
        raw = read_raw_part(tmp_path, part)
        expected = customer_parts(raw["customers"]["customer_id"], 4)
        assert (expected == int(part[-5:])).all()
        owner.update(dict.fromkeys(raw["customers"]["customer_id"], part))
        assert raw["invoices"]["customer_id"].map(owner).eq(part).all()
        invoice_part.update(dict.fromkeys(raw["invoices"]["invoice_id"], part))
        for child in ("attempts", "messages"):
            assert raw[child]["invoice_id"].map(invoice_part).eq(part).all()
    assert len(owner) == len(history.customers)


def test_rejects_are_numbered_over_the_parts_in_order(history, tmp_path):
    broken = history.invoices.copy()
    bad_ids = broken["invoice_id"].iloc[[5, 300]].tolist()
    broken.loc[broken["invoice_id"].isin(bad_ids), "amount_minor"] = -5
    damaged = type(history)(history.customers, broken, history.attempts, history.messages)
    write_partitioned(damaged, tmp_path / "parts", 3)
    write_history(damaged, tmp_path / "flat")
    report = validate_folder(tmp_path / "parts", LENIENT)
    flat = validate_folder(tmp_path / "flat", LENIENT)
    columns = ["table", "id", "field", "reason"]
    assert sorted(map(tuple, report.rejects[columns].to_numpy())) == sorted(
        map(tuple, flat.rejects[columns].to_numpy())
    )
    assert report.rejected_rows["invoices"] == 2 and report.rejected_rows["attempts"] > 0
    whole = read_raw_tables(tmp_path / "parts")
    for line in report.rejects.itertuples():  # `row` points at the row over the parts
        key = TABLES[line.table].key
        assert whole[line.table].loc[line.row, key] == line.id
        assert json.loads(line.raw)[key] == line.id


def test_a_table_without_the_same_parts_is_a_clear_error(history, tmp_path):
    write_partitioned(history, tmp_path, 2)
    (tmp_path / "messages" / "part-00001.parquet").unlink()
    with pytest.raises(
        ContractError,
        match=r"table 'messages' does not have the same parts .*"
        r"missing part-00001",
    ):
        load_history(tmp_path)
    (tmp_path / "attempts" / "part-00000.parquet").rename(tmp_path / "attempts" / "x.parquet")
    with pytest.raises(ContractError, match="table 'attempts'"):
        list_parts(tmp_path)


def test_a_missing_table_folder_is_named(history, tmp_path):
    write_partitioned(history, tmp_path, 2, fmt="csv")
    for path in (tmp_path / "invoices").iterdir():
        path.unlink()
    (tmp_path / "invoices").rmdir()
    with pytest.raises(ContractError, match="missing table 'invoices'"):
        load_history(tmp_path)
