import pytest

from training.config.params import SimulateParams
from training.simulator.run import SimulationResult, simulate_history


@pytest.fixture(scope="session")
def world() -> SimulationResult:
    """A small simulated history shared by the simulator tests (about a second)."""
    return simulate_history(SimulateParams(invoices=6000, seed=11))
