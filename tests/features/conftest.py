import pytest

from training.config.params import SimulateParams
from training.declines.table import load_decline_table
from training.simulator.run import simulate_history


@pytest.fixture(scope="session")
def history():
    return simulate_history(SimulateParams(invoices=3000, seed=21, months=12)).history


@pytest.fixture(scope="session")
def table():
    return load_decline_table()
