"""The active hour's learned cell weights on Dask are the in-process ones, to the bit:
learned once over all parts (``training/scale/active_hour.py``), not per part."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.params import ActiveHourParams, Params
from training.contract.io import load_history
from training.contract.partitioned import list_parts
from training.declines.table import load_decline_table
from training.features.active_hour import learn_cutoff, weights_from_rows
from training.features.history_log import (
    ACTIVITY_WEIGHT,
    CELLS,
    activity_fit_rows,
    learn_activity_cell_weights,
    send_seconds,
)
from training.models.datasets import build_training_data
from training.models.split import TimeSplit
from training.scale.active_hour import cell_weights_on_cluster
from training.scale.parts import INVOICE, training_rows, validate_part
from training.scale.train import validate_on_cluster

MODELS = ("retry", "message", "self_cure")


def _learned() -> Params:
    return Params.model_validate({"train": {"features": {"active_hour": {"weighting": "learned"}}}})


def test_two_step_learning_over_parts_equals_the_one_step_learning(partitioned_dir):
    whole, _ = load_history(partitioned_dir)
    parts = [
        validate_part(str(partitioned_dir), name).history for name in list_parts(partitioned_dir)
    ]
    cutoff = learn_cutoff(np.concatenate([send_seconds(part) for part in parts]))
    rows = pd.concat([activity_fit_rows(part, cutoff) for part in parts], ignore_index=True)
    expected = learn_activity_cell_weights(whole)
    assert np.array_equal(weights_from_rows(rows, CELLS), expected)
    assert len(np.unique(expected)) > 2  # learned, not the equal fallback
    # what each part would learn alone is not the whole history's weights
    assert not all(np.array_equal(learn_activity_cell_weights(p), expected) for p in parts)


def test_learned_training_rows_on_dask_match_the_in_process_stage(client, partitioned_dir):
    params = _learned()
    history, _ = load_history(partitioned_dir)
    table = load_decline_table()
    update = params.retry_rules.update_requests
    settings = params.train.features.active_hour
    local = build_training_data(
        history, table, params.train.window_days, update, active_hour=settings
    )
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)

    validated, summaries = validate_on_cluster(client, partitioned_dir, params)
    weights = cell_weights_on_cluster(client, validated, settings)
    assert weights is not None
    assert np.array_equal(weights, learn_activity_cell_weights(history))
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
            cell_weights=weights,
        )
    )
    log = pd.concat([p.log for p in parts], ignore_index=True)
    log = log.sort_values(["customer_id", "at"], kind="stable").reset_index(drop=True)
    assert ACTIVITY_WEIGHT in log
    pd.testing.assert_frame_equal(log, local.log, check_exact=True)
    for name in MODELS:
        dataset = getattr(local, name)
        expected = dataset.features.reset_index(drop=True).assign(**{INVOICE: dataset.invoice_id})
        got = pd.concat([p.rows[name] for p in parts], ignore_index=True)[list(expected.columns)]
        assert len(got) == len(expected) > 0
        pd.testing.assert_frame_equal(
            got.sort_values(INVOICE, kind="stable").reset_index(drop=True),
            expected.sort_values(INVOICE, kind="stable").reset_index(drop=True),
            check_dtype=False,
        )


def test_equal_weighting_learns_nothing_on_dask(client, partitioned_dir):
    validated, _ = validate_on_cluster(client, partitioned_dir, Params())
    assert cell_weights_on_cluster(client, validated, ActiveHourParams(weighting="equal")) is None
