"""The pieces of the cluster fit that stand in for in-process LightGBM behaviour."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training.scale.cluster import local_workers
from training.scale.fit import early_stopping_iteration


@pytest.mark.parametrize("patience", [1, 3, 10])
def test_early_stopping_rule_matches_lightgbm(patience):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] + rng.normal(scale=2.0, size=3000) > 0).astype(int)
    train = lgb.Dataset(x[:2000], y[:2000])
    valid = lgb.Dataset(x[2000:], y[2000:], reference=train)
    params = {
        "objective": "binary",
        "verbosity": -1,
        "learning_rate": 0.3,
        "num_leaves": 31,
        "num_threads": 1,
    }
    evals: dict = {}
    stopped = lgb.train(
        params, train, 200, valid_sets=[valid], valid_names=["valid"],
        callbacks=[lgb.early_stopping(patience, verbose=False), lgb.record_evaluation(evals)],
    )  # fmt: skip
    full: dict = {}
    lgb.train(
        params, train, 200, valid_sets=[valid], valid_names=["valid"],
        callbacks=[lgb.record_evaluation(full)],
    )  # fmt: skip
    curve = np.array(full["valid"]["binary_logloss"])
    assert early_stopping_iteration(curve, patience) == stopped.best_iteration


def test_no_improvement_stop_keeps_the_best_round():
    assert early_stopping_iteration(np.array([3.0, 2.0, 2.5, 2.6, 1.0]), 2) == 2
    assert early_stopping_iteration(np.array([3.0, 2.0, 1.5]), 5) == 3


def test_cluster_specs():
    assert local_workers("local:3") == 3
    assert local_workers("local") >= 1
    assert local_workers("tcp://10.0.0.5:8786") is None
    for bad in ("local:0", "local:x", "localhost:8786x"):
        with pytest.raises(ValueError, match="local, local:N"):
            local_workers(bad)


def test_loss_curve_from_leaves_is_lightgbms_validation_curve():
    import pandas as pd

    from training.scale.fit import _loss_curve, leaf_value_table
    from training.scale.parts import LABEL

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 4))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(int)
    train = lgb.Dataset(x[:2000], y[:2000])
    valid = lgb.Dataset(x[2000:], y[2000:], reference=train)
    evals: dict = {}
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 7},
        train, 40, valid_sets=[valid], valid_names=["valid"],
        callbacks=[lgb.record_evaluation(evals)],
    )  # fmt: skip
    names = ["a", "b", "c", "d"]
    frame = pd.DataFrame(x[2000:], columns=names).assign(**{LABEL: y[2000:]})
    curve = _loss_curve(frame, booster, leaf_value_table(booster), names, {}) / 1000
    np.testing.assert_allclose(curve, evals["valid"]["binary_logloss"], rtol=1e-9)
