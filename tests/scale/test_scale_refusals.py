"""Settings the cluster fit does not implement are refused before any work starts
(training/scale/fit.py), naming the setting."""

from __future__ import annotations

import pytest

from training.config.params import ModelParams
from training.scale.fit import fit_on_cluster


@pytest.mark.parametrize(
    ("params", "named"),
    [
        (ModelParams(ensemble_size=2), "ensemble_size"),
        (ModelParams(click_rate_prior=["retry"]), "click_rate_prior"),
    ],
)
def test_a_setting_fitted_in_process_only_is_refused(params, named):
    with pytest.raises(ValueError, match=named):
        fit_on_cluster(None, "retry", [], [], [], ["a"], [], params)
