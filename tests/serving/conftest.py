"""The real app over HTTP (TestClient) with a real SQLite file per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from api_helpers import flush_decisions, make_settings
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from serving.app import create_app
from serving.settings import Settings
from serving.store.db import make_engine, normalize_url
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


POSTGRES_URL = os.environ.get("SMARTRETRY_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards; the test
    is skipped when SMARTRETRY_TEST_POSTGRES_URL is unset and fails when it is set and the
    server cannot be reached."""
    if not POSTGRES_URL:
        pytest.skip("SMARTRETRY_TEST_POSTGRES_URL is not set")
    schema = f"smartretry_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:  # fails (not skips) when the server is unreachable
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield normalize_url(POSTGRES_URL) + separator + "options=" + quote(f"-csearch_path={schema}")
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
