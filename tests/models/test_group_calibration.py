"""Calibration offsets per group (training/models/group_calibration.py)."""

from __future__ import annotations

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


@pytest.mark.parametrize("sizes", [(5,), (5, 7), (4, 6, 3)])
def test_gathered_offsets_equal_the_sparse_design_to_the_bit(sizes):
    rng = np.random.default_rng(3)
    n = 4000
    codes = np.column_stack([rng.integers(0, s, n).astype(float) for s in sizes])
    codes[rng.random(codes.shape) < 0.1] = np.nan
    scores = rng.random(n)
    label = (rng.random(n) < scores).astype(int)
    calibrator = GroupCalibrator.fit(
        scores, label, codes, tuple(range(len(sizes))), sizes, strength=1.0
    )
    matrix = codes.copy()
    matrix[rng.random(matrix.shape) < 0.05] = 99  # a category the map never saw
    assert np.array_equal(
        calibrator.predict(scores, matrix), calibrator.predict_sparse(scores, matrix)
    )
