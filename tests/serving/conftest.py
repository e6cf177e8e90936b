"""The real app over HTTP (TestClient) with a real SQLite file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_helpers import flush_decisions, make_settings
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.app import create_app
from serving.settings import Settings
from serving.store.db import make_engine
from serving.store.models import Customer, Decision, Invoice, OutcomeEvent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def row_counts(settings: Settings, client: TestClient) -> Callable[[], dict[str, int]]:
    """Rows per store table, read with a separate engine (what is really on disk) once the
    decisions answered so far are written."""

    def count() -> dict[str, int]:
        flush_decisions(client)
        engine = make_engine(settings.database_url)
        try:
            with engine.connect() as conn:
                return {
                    model.__tablename__: conn.execute(
                        select(func.count()).select_from(model)
                    ).scalar_one()
                    for model in (Decision, Customer, Invoice, OutcomeEvent)
                }
        finally:
            engine.dispose()

    return count
