"""Boosters of several seeds averaged into one (training/models/ensemble.py) and the fit
that uses them (``train.model.ensemble_size``)."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams
from training.models.calibrated import ensemble_params, fit_calibrated
from training.models.ensemble import merged_booster

SETTINGS = {
    "objective": "binary",
    "verbosity": -1,
    "num_leaves": 7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.7,
    "deterministic": True,
    "force_row_wise": True,
}


def _rows(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    x = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "kind": rng.integers(0, 6, n).astype(float),
        }
    )
    logit = x["a"] - 0.5 * x["b"] + np.where(x["kind"] == 2, 0.8, 0.0)
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def test_the_merged_booster_scores_the_mean_of_its_members_log_odds():
    rng = np.random.default_rng(0)
    x, y = _rows(rng, 3000)
    data = lgb.Dataset(x, y, categorical_feature=["kind"])
    members = [
        (lgb.train({**SETTINGS, "seed": s}, data, num_boost_round=30), rounds)
        for s, rounds in ((1, 30), (2, 12), (3, 1))
    ]
    merged = merged_booster(members)
    mean = np.mean([b.predict(x, raw_score=True, num_iteration=r) for b, r in members], axis=0)
    assert merged.num_trees() == 30 + 12 + 1
    np.testing.assert_allclose(merged.predict(x, raw_score=True), mean, rtol=0, atol=1e-12)
    # the members are not alike: the mean is not any one of them
    assert np.abs(mean - members[0][0].predict(x, raw_score=True)).max() > 1e-3


def test_one_member_is_that_booster_cut_at_its_rounds():
    rng = np.random.default_rng(1)
    x, y = _rows(rng, 1500)
    booster = lgb.train({**SETTINGS, "seed": 4}, lgb.Dataset(x, y), num_boost_round=20)
    alone = merged_booster([(booster, 15)])
    assert alone.num_trees() == 15
    np.testing.assert_array_equal(alone.predict(x), booster.predict(x, num_iteration=15))


def test_an_empty_ensemble_is_refused():
    with pytest.raises(ValueError, match="at least one booster"):
        merged_booster([])


def test_the_members_settings_differ_by_seed_only_and_the_first_is_the_single_boosters():
    base = {**SETTINGS, "seed": 7}
    members = ensemble_params(base, ModelParams(seed=7, ensemble_size=3))
    assert members[0] is base
    assert [m["seed"] for m in members] == [7, 8, 9]
    assert all({k: v for k, v in m.items() if k != "seed"} == SETTINGS for m in members)


def _fit(size: int):
    rng = np.random.default_rng(2)
    train, valid, later = _rows(rng, 4000), _rows(rng, 1000), _rows(rng, 3000)
    params = ModelParams(num_boost_round=80, early_stopping_rounds=10, ensemble_size=size)
    model = fit_calibrated(
        "toy",
        train,
        valid,
        ["a", "b", "kind"],
        [],
        params,
        groups=np.arange(len(train[1])).astype(str),
    )
    return model, later


def test_an_ensemble_is_one_calibrated_booster_that_pickles_and_compiles():
    single, later = _fit(1)
    ensemble, _ = _fit(3)
    # three early-stopped members, each with at least one tree, in one booster
    assert ensemble.booster.num_trees() == ensemble.best_iteration
    assert ensemble.best_iteration > single.best_iteration
    p = ensemble.predict(later[0])
    assert ((p > 0) & (p < 1)).all()
    assert not np.allclose(p, single.predict(later[0]))
    # as good as one booster on rows it never saw (the toy world's noise allowing)
    y = later[1]

    def loss(q: np.ndarray) -> float:
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    assert loss(p) <= loss(single.predict(later[0])) + 0.005
    restored = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(restored.predict(later[0]), p)
    if restored.compile_trees():  # the compiled trees score the merged booster alike
        np.testing.assert_allclose(restored.predict(later[0]), p, rtol=0, atol=1e-9)
