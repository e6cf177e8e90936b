"""The gain shrinkage on the cluster draws the in-process halves and events
(``training/scale/shrinkage.py``); the factors are compared in ``test_scale_cli.py``."""

from __future__ import annotations

import pandas as pd
import pytest

from training.artifact.gain_shrinkage import NO_SHRINKAGE, customer_halves, validation_events
from training.config.params import GainShrinkageParams, Params, TrainParams
from training.declines.table import load_decline_table
from training.models.split import TimeSplit
from training.pipeline.train_stage import read_history
from training.scale.shrinkage import (
    gain_shrinkage_on_cluster,
    half_parts,
    validation_events_on_cluster,
)
from training.scale.train import validate_on_cluster

SEED = 3


@pytest.fixture(scope="module")
def read_whole(partitioned_dir):
    """The partitioned history as the in-process ``train`` reads it."""
    return read_history(partitioned_dir, Params())


def test_the_halves_hold_the_in_process_halves_customers(client, partitioned_dir, read_whole):
    validated, summaries = validate_on_cluster(client, partitioned_dir, Params())
    expected = customer_halves(read_whole, SEED)
    for k in (0, 1):
        parts = client.gather(half_parts(client, validated, summaries, SEED, k))
        for table in ("customers", "invoices", "attempts", "messages"):
            got = pd.concat([getattr(p.history, table) for p in parts], ignore_index=True)
            want = getattr(expected[k], table).reset_index(drop=True)
            assert len(got) > 0, table
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
    other = customer_halves(read_whole, SEED + 1)[0].customers["customer_id"]
    assert set(other) != set(expected[0].customers["customer_id"])  # the seed draws them


@pytest.mark.parametrize("count", [150, 100_000])
def test_the_events_are_the_in_process_sample(client, partitioned_dir, read_whole, count):
    """The same validation-period events in the same order: a sample of 150, and all of
    them when fewer than asked."""
    split = TimeSplit.from_due_dates(read_whole.invoices["due_at"], TrainParams())
    validated, _ = validate_on_cluster(client, partitioned_dir, Params())
    got = validation_events_on_cluster(client, validated, split, count, SEED)
    want = validation_events(read_whole, split, count, SEED)
    assert 0 < len(want) <= count
    pd.testing.assert_frame_equal(got, want)


def test_no_events_asked_means_not_fitted(client, partitioned_dir):
    params = Params(train=TrainParams(gain_shrinkage=GainShrinkageParams(events=0)))
    validated, summaries = validate_on_cluster(client, partitioned_dir, params)
    split = TimeSplit.from_due_dates(
        pd.concat([s.due_at for s in summaries], ignore_index=True), params.train
    )
    fitted = gain_shrinkage_on_cluster(
        client, validated, summaries, split, pd.DataFrame(), [], params, load_decline_table()
    )
    assert fitted == NO_SHRINKAGE
