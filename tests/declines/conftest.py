import pytest

from training.declines.rules import RetryRules
from training.declines.table import load_decline_table


@pytest.fixture(scope="session")
def table():
    return load_decline_table()


@pytest.fixture(scope="session")
def rules(table):
    return RetryRules(table=table)
