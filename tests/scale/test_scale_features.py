"""Validation and training rows on Dask are those of the in-process stage, row for row."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config.params import Params, ValidateParams
from training.contract.io import load_history, write_history, write_partitioned
from training.contract.validate import validate_folder
from training.declines.table import load_decline_table
from training.models.datasets import build_training_data
from training.models.split import TimeSplit
from training.pipeline.train_stage import TrainInputError, read_history
from training.scale.parts import DUE_AT, INVOICE, LABEL, PERIOD, combined_report, training_rows
from training.scale.train import validate_on_cluster

MODELS = ("retry", "message", "self_cure")


def _by_invoice(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by invoice (stable: each invoice's rows keep their order)."""
    return frame.sort_values(INVOICE, kind="stable").reset_index(drop=True)


def test_training_rows_match_the_in_process_stage(client, partitioned_dir):
    # equal event weights here; the learned ones (the default) are learned once over the
    # parts and compared in test_scale_active_hour.py
    params = Params.model_validate({"train": {"features": {"active_hour": {"weighting": "equal"}}}})
    history, _ = load_history(partitioned_dir)
    table = load_decline_table()
    update = params.retry_rules.update_requests
    local = build_training_data(history, table, params.train.window_days, update)
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)

    validated, summaries = validate_on_cluster(client, partitioned_dir, params)
    due = pd.concat([s.due_at for s in summaries], ignore_index=True)
    parts = client.gather(
        client.map(
            training_rows,
            validated,
            params=params.train,
            table=table,
            update=update,
            history_start=due.min(),
            split=split,
        )
    )
    for name in MODELS:
        dataset = getattr(local, name)
        expected = dataset.features.reset_index(drop=True).assign(
            **{
                LABEL: dataset.label,
                DUE_AT: dataset.due_at.reset_index(drop=True),
                INVOICE: dataset.invoice_id,
                PERIOD: split.assign(dataset.due_at),
            }
        )
        got = pd.concat([p.rows[name] for p in parts], ignore_index=True)
        assert len(got) == len(expected) > 0
        pd.testing.assert_frame_equal(_by_invoice(got), _by_invoice(expected), check_dtype=False)
    log = pd.concat([p.log for p in parts], ignore_index=True)
    log = log.sort_values(["customer_id", "at"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(log, local.log)


def test_rejects_on_dask_are_the_in_process_rejects(client, scale_history, tmp_path):
    invoices = scale_history.invoices.copy()
    invoices.loc[[3, 1500, 2999], "amount_minor"] = -1
    customers = scale_history.customers.copy()
    customers.loc[7, "timezone"] = "Mars/Olympus"
    broken = type(scale_history)(
        customers, invoices, scale_history.attempts, scale_history.messages
    )
    write_partitioned(broken, tmp_path, 3)
    lenient = ValidateParams(max_reject_share=1.0)
    expected = validate_folder(tmp_path, lenient)
    _, summaries = validate_on_cluster(client, tmp_path, Params(validate_=lenient))
    report = combined_report(summaries, lenient)
    assert report.rows == expected.rows and report.total_rejected == expected.total_rejected > 3
    order = ["table", "row", "reason"]
    pd.testing.assert_frame_equal(
        report.rejects.sort_values(order).reset_index(drop=True),
        expected.rejects.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )


def test_too_many_rejects_stop_the_run_with_the_in_process_message(client, scale_history, tmp_path):
    invoices = scale_history.invoices.copy()
    invoices.loc[invoices.index[::5], "currency"] = "EURO"  # a fifth of the invoices
    history = type(scale_history)(
        scale_history.customers, invoices, scale_history.attempts, scale_history.messages
    )
    write_partitioned(history, tmp_path / "parts", 2)
    with pytest.raises(TrainInputError) as in_process:
        read_history(tmp_path / "parts", Params())
    with pytest.raises(TrainInputError) as on_dask:
        validate_on_cluster(client, tmp_path / "parts", Params())
    assert str(on_dask.value) == str(in_process.value)
    assert "rows rejected" in str(on_dask.value)


def test_a_flat_history_is_refused_with_the_way_out(client, scale_history, tmp_path):
    write_history(scale_history, tmp_path)
    with pytest.raises(TrainInputError, match="needs the partitioned layout.*--partitions"):
        validate_on_cluster(client, tmp_path, Params())
