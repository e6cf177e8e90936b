"""The interaction-constraint option (``train.model.additive_groups``): both booster paths
get the same allowed sets, and no tree branch of a constrained model splits on inputs of
two groups, where the free trees do."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams
from training.models.calibrated import fit_calibrated, interaction_constraints
from training.models.compiled import CACHE_ENV, compile_booster
from training.models.fit import MODEL_FEATURES, check_monotone_inputs
from training.scale.fit import booster_options

COLUMNS = ["wait", "rank", "other"]


def _rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Success rises with the wait and falls with the rank, more steeply at later ranks
    (an interaction free trees fit), and depends on a third input."""
    wait, rank, other = rng.random(n) * 10, rng.integers(0, 4, n), rng.random(n)
    logit = -2.5 + 0.15 * wait - 0.4 * rank - 0.1 * wait * (rank > 1) + 0.8 * other
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"wait": wait, "rank": rank.astype(float), "other": other, "y": y})


def _fit(groups: list[list[str]]) -> lgb.Booster:
    rng = np.random.default_rng(3)
    train, valid = _rows(rng, 8000), _rows(rng, 2000)
    params = ModelParams(
        num_boost_round=60,
        min_data_in_leaf=20,
        calibration_folds=0,
        monotone_increasing=[],
        additive_groups=groups,
    )
    model = fit_calibrated(
        "toy",
        (train[COLUMNS], train["y"].to_numpy()),
        (valid[COLUMNS], valid["y"].to_numpy()),
        COLUMNS,
        [],
        params,
    )
    return model.booster


def _branches(node: dict, path: frozenset[str] = frozenset()) -> list[frozenset[str]]:
    """The inputs split on along every root-to-leaf path of one tree."""
    if "split_feature" not in node:
        return [path]
    here = path | {COLUMNS[node["split_feature"]]}
    return _branches(node["left_child"], here) + _branches(node["right_child"], here)


def _mixed_branches(booster: lgb.Booster) -> int:
    trees = booster.dump_model()["tree_info"]
    return sum({"wait", "rank"} <= b for t in trees for b in _branches(t["tree_structure"]))


def test_no_branch_splits_on_two_groups():
    assert _mixed_branches(_fit([])) > 0  # the free trees do
    constrained = _fit([["wait"], ["rank"]])
    assert _mixed_branches(constrained) == 0
    used = {
        f
        for t in constrained.dump_model()["tree_info"]
        for b in _branches(t["tree_structure"])
        for f in b
    }
    assert used == set(COLUMNS)  # the free input still meets both groups' inputs


def test_both_paths_get_the_allowed_sets_in_feature_order():
    groups = [["hours_since_failure", "hours_since_last_message"], ["retries_before"]]
    params = ModelParams(additive_groups=groups)
    features = list(MODEL_FEATURES["retry"])
    sets = interaction_constraints(features, params)
    assert len(sets) == 2
    position = {f: i for i, f in enumerate(features)}
    free = set(range(len(features))) - {position[f] for g in groups for f in g}
    assert set(sets[0]) == free | {
        position["hours_since_failure"],
        position["hours_since_last_message"],
    }
    assert set(sets[1]) == free | {position["retries_before"]}
    assert booster_options(params, features)["interaction_constraints"] == sets
    # one group present in a model: nothing to keep apart, no option at all
    lone = ModelParams(additive_groups=[["hours_since_failure"], ["hour_click_rate"]])
    assert interaction_constraints(features, lone) == []
    assert "interaction_constraints" not in booster_options(lone, features)
    assert "interaction_constraints" not in booster_options(ModelParams(), features)


def test_a_group_input_no_model_has_is_refused_by_name():
    check_monotone_inputs(
        ModelParams(additive_groups=[["retries_before"], ["hours_since_failure"]])
    )
    with pytest.raises(ValueError, match="retries_befor"):
        check_monotone_inputs(ModelParams(additive_groups=[["retries_befor"]]))


def test_a_constrained_booster_compiles_to_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "compiled"))
    booster = _fit([["wait"], ["rank"]])
    matrix = _rows(np.random.default_rng(9), 300)[COLUMNS].to_numpy(dtype=float)
    compiled = compile_booster(booster, booster.current_iteration())
    assert compiled is not None
    expected = booster.predict(matrix)
    np.testing.assert_allclose(compiled.predict(matrix), expected, rtol=0, atol=1e-12)
