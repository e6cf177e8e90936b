"""``smartretry simulate --partitions K``: one block of customers per part."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from training.cli.main import app
from training.contract.io import load_history
from training.contract.partitioned import list_parts
from training.contract.raw_tables import read_raw_part
from training.simulator.partitioned import block_sizes
from training.simulator.truth import GroundTruth


def test_block_sizes_add_up():
    assert block_sizes(10, 3) == [4, 3, 3]
    assert sum(block_sizes(1_000_001, 16)) == 1_000_001


def test_simulate_writes_a_valid_partitioned_history(tmp_path):
    out = tmp_path / "history"
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(out), "--invoices", "900", "--partitions", "3",
              "--seed", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "simulated 900 invoices" in result.output and "3 parts" in result.output
    assert list_parts(out) == ["part-00000", "part-00001", "part-00002"]
    history, report = load_history(out)
    assert report.total_rejected == 0 and len(history.invoices) == 900
    for table in history.tables().values():  # ids unique across the parts
        assert not table.iloc[:, 0].duplicated().any()
    seen: set[str] = set()
    for part in list_parts(out):
        raw = read_raw_part(out, part)
        customers = set(raw["customers"]["customer_id"])
        assert not customers & seen
        seen |= customers
        assert raw["invoices"]["customer_id"].isin(customers).all()
        assert raw["attempts"]["invoice_id"].isin(raw["invoices"]["invoice_id"]).all()
        truth = GroundTruth.load(tmp_path / "history-truth" / part)
        assert set(truth.invoices["invoice_id"]) == set(raw["invoices"]["invoice_id"])
    again = tmp_path / "again"
    CliRunner().invoke(
        app, ["simulate", "--out", str(again), "--invoices", "900", "--partitions", "3",
              "--seed", "5"],
    )  # fmt: skip
    pd.testing.assert_frame_equal(
        read_raw_part(out, "part-00002")["attempts"], read_raw_part(again, "part-00002")["attempts"]
    )


def test_more_parts_than_invoices_is_refused(tmp_path):
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path), "--invoices", "2", "--partitions", "3"]
    )
    assert result.exit_code == 2 and "--partitions" in result.output
