"""The menu estimate refuses histories it cannot speak for: per-decision propensities,
and overlap too thin for an interval."""

from __future__ import annotations

import numpy as np

from training.config.params import SimulateParams
from training.evaluation.ope import LoggedFeedback, default_estimators, summarize
from training.evaluation.ope_eval import per_decision_share, refuse_thin_overlap
from training.simulator.run import simulate_history
from training.simulator.zoo import zoo_world


def test_plan_level_propensities_pass_and_per_decision_ones_are_named(small_world):
    assert per_decision_share(small_world.history) == 0.0
    strict = zoo_world("strict_logging")
    history = simulate_history(SimulateParams(invoices=1500, seed=2), strict.world, strict.policy)
    assert per_decision_share(history.history) > 0.05


def _feedback(n: int, match_share: float, seed: int = 0) -> LoggedFeedback:
    """Units matched with the logged probability of the match (weights average 1)."""
    rng = np.random.default_rng(seed)
    return LoggedFeedback(
        reward=rng.random(n) < 0.5,
        match=rng.random(n) < match_share,
        logging_probability=np.full(n, match_share),
        target_value=np.full(n, 0.5),
        logged_value=np.full(n, 0.5),
    )


def test_thin_overlap_replaces_the_weighted_estimates_by_the_reason():
    thin = _feedback(400, 0.02)  # about 8 matched units
    estimates = refuse_thin_overlap(
        summarize(default_estimators(), thin, n_bootstrap=100, random_state=1), thin
    )
    for name in ("ips", "snips", "dr"):
        assert "value" not in estimates[name]
        assert "effective sample size" in estimates[name]["cannot_estimate"]
    assert "value" in estimates["dm"]  # the model's own estimate, no weights
    wide = _feedback(4000, 0.3)
    kept = refuse_thin_overlap(
        summarize(default_estimators(), wide, n_bootstrap=100, random_state=1), wide
    )
    assert all("value" in kept[name] for name in ("ips", "snips", "dr", "dm"))
