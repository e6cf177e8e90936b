"""Out-of-fold scores and the calibration fitted on them (training/models/cross_fit.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.config.params import ModelParams
from training.models.calibrated import fit_calibrated
from training.models.cross_fit import invoice_folds, out_of_fold_scores

MEMORIZE = {
    "objective": "binary",
    "verbosity": -1,
    "seed": 3,
    "num_leaves": 63,
    "min_data_in_leaf": 1,
    "learning_rate": 0.3,
    "deterministic": True,
    "force_row_wise": True,
}


def test_every_row_of_an_invoice_is_in_one_fold_and_every_fold_is_used():
    groups = np.repeat([f"inv_{i}" for i in range(60)], 3)
    fold = invoice_folds(groups, 4, seed=1)
    per_invoice = pd.Series(fold).groupby(groups).nunique()
    assert (per_invoice == 1).all()
    assert set(fold) == {0, 1, 2, 3}


@pytest.mark.parametrize("folds", [0, 1])
def test_fewer_than_two_folds_is_refused(folds):
    with pytest.raises(ValueError, match="at least 2 folds"):
        invoice_folds(np.array(["a", "b"]), folds, seed=1)


def test_a_row_is_never_scored_by_a_booster_that_saw_it():
    # labels are noise: a booster can only "predict" them by memorizing its own rows
    rng = np.random.default_rng(0)
    n = 2000
    x = pd.DataFrame({"key": rng.random(n), "other": rng.random(n)})
    y = rng.integers(0, 2, n)
    groups = np.arange(n).astype(str)
    in_sample = out_of_fold_scores(MEMORIZE, x, y, np.ones(n), [], groups, 3, rounds=200)
    assert not np.isnan(in_sample).any()
    assert roc_auc_score(y, in_sample) < 0.58
    import lightgbm as lgb

    seen = lgb.train(MEMORIZE, lgb.Dataset(x, y), num_boost_round=200).predict(x)
    assert roc_auc_score(y, seen) > 0.9  # the same booster on its own rows memorizes


def _shifted_periods(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(x - 1.0 + shift)))
    return pd.DataFrame({"x": x, "y": (rng.random(n) < p).astype(int)})


def test_calibration_on_out_of_fold_scores_is_not_ruled_by_one_odd_validation_period():
    rng = np.random.default_rng(1)
    train = _shifted_periods(rng, 6000, 0.0)
    valid = _shifted_periods(rng, 800, -0.8)  # a period whose customers paid much less
    later = _shifted_periods(rng, 4000, 0.0)
    groups = np.arange(len(train)).astype(str)

    def mean_prediction(folds: int) -> float:
        params = ModelParams(num_boost_round=60, calibration_folds=folds)
        model = fit_calibrated(
            "toy",
            (train[["x"]], train["y"].to_numpy()),
            (valid[["x"]], valid["y"].to_numpy()),
            ["x"],
            [],
            params,
            groups=groups,
        )
        return float(model.predict(later[["x"]]).mean())

    observed = later["y"].mean()
    valid_only, pooled = mean_prediction(0), mean_prediction(3)
    assert abs(pooled - observed) < 0.02
    assert abs(valid_only - observed) > abs(pooled - observed) + 0.03
