"""Calibration offsets per group (training/models/group_calibration.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams
from training.models.calibrated import fit_calibrated
from training.models.group_calibration import GroupCalibrator


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores right for group 0 and far too low for group 1 (rate 0.30, score 0.10)."""
    group = rng.integers(0, 2, n).astype(float)
    score = np.where(group == 1, 0.10, rng.uniform(0.05, 0.4, n))
    truth = np.where(group == 1, 0.30, score)
    return score, group, (rng.random(n) < truth).astype(int)


def test_each_group_gets_its_observed_rate():
    rng = np.random.default_rng(0)
    score, group, label = _rows(rng, 20000)
    calibrator = GroupCalibrator.fit(score, label, group[:, None], (0,), (2,), strength=1.0)
    p = calibrator.predict(score, group[:, None])
    for g in (0, 1):
        rows = group == g
        assert abs(p[rows].mean() - label[rows].mean()) < 0.01
    assert abs(p[group == 1].mean() - 0.30) < 0.02


def test_unseen_and_missing_groups_keep_the_shared_map():
    rng = np.random.default_rng(1)
    score, group, label = _rows(rng, 20000)
    calibrator = GroupCalibrator.fit(score, label, group[:, None], (0,), (2,), strength=1.0)
    probe = np.full(3, 0.2)
    unseen = calibrator.predict(probe, np.array([[5.0], [np.nan], [5.0]]))
    assert np.allclose(unseen, unseen[0])
    seen = calibrator.predict(probe, np.array([[0.0], [1.0], [0.0]]))
    assert seen[1] > seen[0] + 0.05  # group 1 carries its offset, the others none


def test_a_model_with_calibration_groups_fits_a_rare_template_the_boosting_stopped_short_of():
    rng = np.random.default_rng(2)

    def period(n: int) -> pd.DataFrame:
        template = np.where(rng.random(n) < 0.05, "rare", "common")
        x = rng.normal(size=n)
        logit = x - 2.5 + np.where(template == "rare", 1.5, 0.0)
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        return pd.DataFrame({"x": x, "template": template, "y": y})

    train, valid, later = period(8000), period(20000), period(20000)
    params = ModelParams(
        num_boost_round=3, early_stopping_rounds=1, min_data_in_leaf=1000, calibration_folds=0
    )

    def error_on_rare(groups: tuple[str, ...]) -> float:
        model = fit_calibrated(
            "toy",
            (train[["x", "template"]], train["y"].to_numpy()),
            (valid[["x", "template"]], valid["y"].to_numpy()),
            ["x", "template"],
            ["template"],
            params,
            calibration_groups=groups,
        )
        rare = later[later["template"] == "rare"]
        return abs(float(model.predict(rare[["x", "template"]]).mean()) - rare["y"].mean())

    assert error_on_rare(("template",)) < 0.03
    assert error_on_rare(()) > error_on_rare(("template",)) + 0.03


@pytest.mark.parametrize(
    ("sizes", "counts"),
    [
        ((5,), ()),
        ((5, 7), ()),
        ((4, 6, 3), ()),
        ((4, 3), (False, True)),  # a category and a count, and their pair
        ((5, 15, 3), (False, False, True)),
        ((3, 5), (True, False)),  # a count first: its buckets through an index array
        ((4, 3, 6), (False, True, False)),
    ],
)
def test_gathered_offsets_equal_the_sparse_design_to_the_bit(sizes, counts):
    rng = np.random.default_rng(3)
    n = 4000
    codes = np.column_stack([rng.integers(0, s, n).astype(float) for s in sizes])
    codes[rng.random(codes.shape) < 0.1] = np.nan
    scores = rng.random(n)
    label = (rng.random(n) < scores).astype(int)
    calibrator = GroupCalibrator.fit(
        scores, label, codes, tuple(range(len(sizes))), sizes, strength=1.0, counts=counts
    )
    matrix = codes.copy()
    matrix[rng.random(matrix.shape) < 0.05] = 99  # a category never seen, or a large count
    is_count = np.array(counts or (False,) * len(sizes))
    matrix[(rng.random(matrix.shape) < 0.02) & is_count] = -1.0  # a count's bucket 0
    assert np.array_equal(
        calibrator.predict(scores, matrix), calibrator.predict_sparse(scores, matrix)
    )


def test_a_count_column_gets_an_offset_per_bucket_the_last_holding_every_larger_count():
    rng = np.random.default_rng(4)
    n = 30000
    steps = rng.integers(0, 5, n).astype(float)  # events before the row: 0..4
    score = rng.uniform(0.05, 0.3, n)
    # the first event answers far above its score, later ones below it
    truth = np.clip(score + np.where(steps == 0, 0.08, -0.04), 0.01, 0.99)
    label = (rng.random(n) < truth).astype(int)
    calibrator = GroupCalibrator.fit(
        score, label, steps[:, None], (0,), (3,), strength=1.0, counts=(True,)
    )
    p = calibrator.predict(score, steps[:, None])
    for bucket, rows in ((0, steps == 0), (1, steps == 1), (2, steps >= 2)):
        assert abs(p[rows].mean() - label[rows].mean()) < 0.01, bucket
    # a count never seen in fitting falls in the last bucket, not outside the map
    probe = np.full(2, 0.2)
    assert np.allclose(
        calibrator.predict(probe, np.array([[2.0], [9.0]])),
        calibrator.predict(probe, np.array([[2.0], [2.0]])),
    )
    assert np.array_equal(
        calibrator.predict(score, steps[:, None]), calibrator.predict_sparse(score, steps[:, None])
    )


def test_a_model_with_a_dunning_state_group_fits_the_first_event_the_boosting_pulled_down():
    rng = np.random.default_rng(5)

    def period(n: int) -> pd.DataFrame:
        before = rng.integers(0, 3, n).astype(float)
        x = rng.normal(size=n)
        logit = 0.5 * x - 2.4 + np.where(before == 0, 0.9, 0.0)
        truth = 1 / (1 + np.exp(-logit))
        y = (rng.random(n) < truth).astype(int)
        return pd.DataFrame({"x": x, "retries_before": before, "y": y, "truth": truth})

    train, valid, later = period(8000), period(40000), period(5000)
    columns = ["x", "retries_before"]

    def error_on_first(steps: int) -> float:
        params = ModelParams(
            num_boost_round=3,
            early_stopping_rounds=1,
            min_data_in_leaf=1000,
            calibration_folds=0,
            calibration_dunning_steps=steps,
        )
        model = fit_calibrated(
            "toy",
            (train[columns], train["y"].to_numpy()),
            (valid[columns], valid["y"].to_numpy()),
            columns,
            [],
            params,
            calibration_groups=("retries_before",),
        )
        first = later[later["retries_before"] == 0]
        return abs(float(model.predict(first[columns]).mean()) - first["truth"].mean())

    assert error_on_first(3) < 0.012
    assert error_on_first(0) > error_on_first(3) + 0.01


def test_the_offset_tables_are_not_pickled_and_are_rebuilt_after_loading():
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 4, (500, 2)).astype(float)
    scores = rng.random(500)
    label = (rng.random(500) < scores).astype(int)
    calibrator = GroupCalibrator.fit(scores, label, codes, (0, 1), (4, 4), strength=1.0)
    before = calibrator.predict(scores, codes)  # builds the tables
    loaded = pickle.loads(pickle.dumps(calibrator))
    assert "_tables" not in loaded.__dict__
    assert np.array_equal(loaded.predict(scores, codes), before)


def test_a_count_slope_reads_missing_and_infinite_counts_as_the_sparse_design_does():
    """The slope's input (missing as 0, capped at SLOPE_CAP) is computed without
    np.nan_to_num in the gathered map: the same figures for NaN, ±inf, -0.0 and large
    counts."""
    rng = np.random.default_rng(5)
    n = 3000
    codes = rng.integers(0, 4, (n, 1)).astype(float)
    count = rng.integers(0, 6, n).astype(float)
    scores = rng.random(n)
    label = (rng.random(n) < scores * (1 + count) / 6).astype(int)
    calibrator = GroupCalibrator.fit(
        scores, label, codes, (0,), (4,), strength=1.0, slopes=(1,), slope_inputs=count[:, None]
    )
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.5, 3.0, 1e300, -7.0])
    matrix = np.column_stack([codes[: len(special)], special])
    with np.errstate(over="ignore"):  # -inf counts: a probability of 0 or 1 either way
        gathered = calibrator.predict(scores[: len(special)], matrix)
        sparse = calibrator.predict_sparse(scores[: len(special)], matrix)
    assert np.array_equal(gathered, sparse)
