"""Settings the cluster fit does not implement are refused before any work starts
(training/scale/fit.py), naming the setting."""

from __future__ import annotations

import pytest

from training.config.params import ModelParams
from training.scale.fit import fit_on_cluster


def test_the_click_rate_prior_fitted_in_process_only_is_refused():
    with pytest.raises(ValueError, match="click_rate_prior"):
        fit_on_cluster(
            None, "retry", [], [], [], ["a"], [], ModelParams(click_rate_prior=["retry"])
        )
