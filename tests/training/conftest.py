"""Small simulated histories and fast training settings for the training tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from training.config.params import SimulateParams
from training.contract.history import History
from training.contract.io import write_history
from training.simulator.run import simulate_history

SMALL_INVOICES = 2000


@pytest.fixture(scope="session")
def small_history() -> History:
    """A 2,000-invoice simulated history (about a second to simulate)."""
    return simulate_history(SimulateParams(invoices=SMALL_INVOICES, seed=11)).history


@pytest.fixture(scope="session")
def small_history_dir(small_history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    write_history(small_history, folder)
    return folder


@pytest.fixture(scope="session")
def fast_params(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Write a params.yaml whose ``train.model`` knobs keep fitting fast; keyword
    arguments override model knobs (``fast_params(num_boost_round=1)``)."""
    folder = tmp_path_factory.mktemp("params")

    def write(**model: object) -> Path:
        settings = {
            "num_boost_round": 30,
            "min_data_in_leaf": 20,
            "early_stopping_rounds": 10,
            "num_threads": 1,
            **model,
        }
        name = "-".join(f"{k}{v}" for k, v in sorted(model.items())) or "fast"
        path = folder / f"params-{name}.yaml"
        path.write_text(yaml.safe_dump({"train": {"model": settings}}))
        return path

    return write
