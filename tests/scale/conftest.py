"""A small partitioned history and an in-process Dask cluster for the Dask-path tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from training.config.params import SimulateParams
from training.contract.history import History
from training.contract.io import write_partitioned
from training.simulator.run import simulate_history

PARTS = 6  # at least 5: see the two-worker test in test_scale_cli.py


@pytest.fixture(scope="session")
def scale_history() -> History:
    """4,000 simulated invoices over a year (about a second to simulate)."""
    return simulate_history(SimulateParams(invoices=4000, seed=21, months=12)).history


@pytest.fixture(scope="session")
def partitioned_dir(scale_history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("partitioned")
    write_partitioned(scale_history, folder, PARTS)
    return folder


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """One worker with two threads in this process: no ports to the outside, no child
    processes, closed when the module's tests are done."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="session")
def exact_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fast boosting without bagging or feature sampling: one Dask worker then boosts on
    the same rows with the same bins as the in-process fit, so the models are equal. The
    count effect and the calendar contrast keep their defaults (both paths fit them)."""
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    model = {
        "num_boost_round": 60,
        "min_data_in_leaf": 20,
        "early_stopping_rounds": 10,
        "num_threads": 1,
        "bagging_fraction": 1.0,
        "bagging_freq": 0,
        "feature_fraction": 1.0,
        # the Dask path calibrates on the validation period (no out-of-fold boosters; the
        # same offsets per group): compare like with like
        "calibration_folds": 0,
        # a template's logged hours bound the search (both paths fit the bands)
        "template_time_support": 24.0,
        "template_time_support_sides": "lower",
        "template_time_support_width_fraction": 0.75,
    }
    # no exploration: the same requests get the same decisions, wherever they are scored
    settings = {
        # the gain shrinkage measured on 200 validation-period events (both paths)
        "train": {"model": model, "gain_shrinkage": {"events": 200}},
        "policy": {"exploration_rate": 0.0},
    }
    path.write_text(yaml.safe_dump(settings))
    return path
