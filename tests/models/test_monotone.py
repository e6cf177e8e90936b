"""The monotone-constraint option (``train.model.monotone_increasing``): the in-process and
the cluster booster get the same constraints, and a constrained input never lowers the
estimate as it rises, even where the training rows' noise dips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams
from training.models.calibrated import fit_calibrated, monotone_constraints
from training.models.fit import MODEL_FEATURES, check_monotone_inputs
from training.scale.fit import booster_options


def _noisy_rising(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """P(label) rises with ``rate`` except for a dip in one band (noise a free tree fits)."""
    rate = rng.random(n)
    other = rng.random(n)
    p = 0.05 + 0.3 * rate - 0.15 * ((rate > 0.45) & (rate < 0.55))
    return pd.DataFrame({"rate": rate, "other": other, "y": (rng.random(n) < p).astype(int)})


def _fit(monotone: list[str]):
    rng = np.random.default_rng(5)
    train, valid = _noisy_rising(rng, 8000), _noisy_rising(rng, 2000)
    params = ModelParams(
        num_boost_round=80, min_data_in_leaf=20, calibration_folds=0, monotone_increasing=monotone
    )
    return fit_calibrated(
        "toy",
        (train[["rate", "other"]], train["y"].to_numpy()),
        (valid[["rate", "other"]], valid["y"].to_numpy()),
        ["rate", "other"],
        [],
        params,
    )


def test_a_constrained_input_never_lowers_the_estimate():
    grid = pd.DataFrame({"rate": np.linspace(0, 1, 201), "other": 0.5})
    free = _fit([]).predict(grid)
    constrained = _fit(["rate"]).predict(grid)
    assert np.diff(free).min() < -1e-3  # the free trees follow the dip
    assert np.diff(constrained).min() >= -1e-12


def test_both_paths_get_one_constraint_per_input_in_feature_order():
    params = ModelParams(monotone_increasing=["hour_click_rate"])
    features = list(MODEL_FEATURES["message"])
    expected = [int(name == "hour_click_rate") for name in features]
    assert monotone_constraints(features, params) == expected
    assert booster_options(params, features)["monotone_constraints"] == expected
    assert sum(monotone_constraints(list(MODEL_FEATURES["retry"]), params)) == 0
    # no constrained input: no option at all (an all-zero list moves LightGBM's trees)
    assert "monotone_constraints" not in booster_options(params, list(MODEL_FEATURES["retry"]))


def test_an_input_no_model_has_is_refused_by_name():
    check_monotone_inputs(ModelParams(monotone_increasing=["hour_click_rate"]))
    with pytest.raises(ValueError, match="hour_clik_rate"):
        check_monotone_inputs(ModelParams(monotone_increasing=["hour_clik_rate"]))
