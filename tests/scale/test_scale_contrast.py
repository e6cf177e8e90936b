"""The calendar contrast on the cluster reads the in-process rows
(``training/scale/contrast.py``); the fitted slopes are compared in ``test_scale_cli.py``."""

from __future__ import annotations

import pandas as pd
import pytest

from training.artifact.calendar_contrast import NO_CONTRAST
from training.artifact.gain_shrinkage import validation_events
from training.config.params import CalendarContrastParams, Params, TrainParams
from training.declines.table import load_decline_table
from training.models.datasets import history_timeline
from training.models.split import TimeSplit
from training.pipeline.train_stage import read_history
from training.scale.contrast import contrast_on_client, contrast_rows_on_cluster
from training.scale.train import validate_on_cluster


def _params(events: int, shift_days: tuple[int, ...] = (1, 3)) -> Params:
    contrast = CalendarContrastParams(events=events, shift_days=shift_days)
    return Params(train=TrainParams(calendar_contrast=contrast))


@pytest.mark.parametrize("events", [120, 100_000])
def test_the_contrast_reads_the_in_process_events_and_rows(client, partitioned_dir, events):
    """The same validation-period events (a sample, and all of them), and their logged
    attempts and messages, labels included, row for row as the whole history's."""
    params = _params(events)
    whole = read_history(partitioned_dir, params)
    split = TimeSplit.from_due_dates(whole.invoices["due_at"], params.train)
    validated, _ = validate_on_cluster(client, partitioned_dir, params)
    rows = contrast_rows_on_cluster(client, validated, split, params)
    assert rows is not None
    want = validation_events(whole, split, events, params.train.model.seed)
    assert 0 < len(want) <= events
    pd.testing.assert_frame_equal(rows.events, want)
    assert len(rows.history.invoices) == want["invoice_id"].nunique()

    def timeline(history):
        line = history_timeline(history)
        return line[line["key"].isin(set(want["event_id"]))].reset_index(drop=True)

    got, expected = timeline(rows.history), timeline(whole)
    assert len(expected) > len(want) and expected["label"].sum() > 0
    pd.testing.assert_frame_equal(got, expected)


def test_no_events_or_shifts_asked_means_not_fitted(client, partitioned_dir):
    for params in (_params(0), _params(100, ())):
        validated, summaries = validate_on_cluster(client, partitioned_dir, params)
        split = TimeSplit.from_due_dates(
            pd.concat([s.due_at for s in summaries], ignore_index=True), params.train
        )
        rows = contrast_rows_on_cluster(client, validated, split, params)
        assert rows is None
        models = None  # never read without rows
        assert (
            contrast_on_client(rows, models, pd.DataFrame(), params, load_decline_table())  # type: ignore[arg-type]
            == NO_CONTRAST
        )
