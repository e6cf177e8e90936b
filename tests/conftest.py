"""Fixtures shared across suites: a small simulated world and a model trained on it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import ModelParams, SimulateParams, TrainParams
from training.config.policy import PolicyConfig
from training.config.retry_limits import RetryLimits
from training.contract.history import History
from training.declines.table import load_decline_table
from training.models.fit import train_models
from training.models.split import TimeSplit
from training.simulator.run import simulate_history
from training.simulator.truth import GroundTruth

FAST_MODEL = ModelParams(num_boost_round=80, learning_rate=0.1, early_stopping_rounds=15)


@dataclass
class SmallWorld:
    history: History
    truth: GroundTruth
    artifact: DecisionArtifact
    split: TimeSplit


@pytest.fixture(scope="session")
def small_world() -> SmallWorld:
    """6,000 simulated invoices and a quickly trained decision artifact (~10 s)."""
    result = simulate_history(SimulateParams(invoices=6000, seed=5, months=12))
    history = result.history
    table, limits = load_decline_table(), RetryLimits()
    trained = train_models(
        history, TrainParams(model=FAST_MODEL), table, limits.update_requests, progress=False
    )
    artifact = DecisionArtifact.with_table(
        trained.models,
        trained.data.log,
        history.customers,
        sorted(history.messages["template"].unique()),
        PolicyConfig(exploration_rate=0.0),
        limits,
        table,
        {"model_version": "smart-retry/test", "name": "smart-retry"},
    )
    return SmallWorld(history, result.truth, artifact, trained.split)
