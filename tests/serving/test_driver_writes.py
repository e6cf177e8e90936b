"""Decisions written through the SQLite driver store exactly what SQLAlchemy stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import request_body
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from test_decision_writer import decisions

from serving.store.db import make_engine, migrate
from serving.store.writes import (
    decision_rows,
    record_decisions,
    write_decision_rows,
    write_decision_rows_through_driver,
)
from training.api.schemas import RecommendationRequest

TABLES = ("decisions", "customers", "invoices")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    engines = []
    for name in ("sqlalchemy", "driver"):
        engine = make_engine(f"sqlite:///{tmp_path / name / 'store.sqlite'}")
        migrate(engine)
        engines.append(engine)
    yield engines[0], engines[1]
    for engine in engines:
        engine.dispose()


def table_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of the decision tables as SQLite holds them (texts, numbers, NULLs)."""
    path = engine.url.database
    assert path is not None
    with sqlite3.connect(path) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def test_the_driver_path_stores_the_rows_sqlalchemy_stores(stores):
    through_sqlalchemy, through_driver = stores
    requests, responses = decisions(3, customer="cus_a")
    # a second round: the same customer with fewer fields (nulls must not overwrite), the
    # first invoice again with an earlier failure (due_at keeps the earliest), another brand
    later_body = request_body(
        invoice_id=requests[0].invoice_id,
        customer_id="cus_a",
        customer={"country": "DE"},
        card_brand="mastercard",
        failed_at="2026-11-10T08:00:00Z",
        previous_attempts=[],
    )
    later = RecommendationRequest.model_validate(later_body)
    more_requests, more_responses = decisions(2, customer="cus_b")
    rounds = [
        (requests, responses, datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)),
        (
            [later, *more_requests],
            [decisions(1)[1][0], *more_responses],
            datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC),
        ),
    ]
    for round_requests, round_responses, now in rounds:
        rows = decision_rows(round_requests, round_responses, None, now)
        write_decision_rows(through_sqlalchemy, rows)
        write_decision_rows_through_driver(through_driver, rows)
    expected, got = table_rows(through_sqlalchemy), table_rows(through_driver)
    assert [len(expected[t]) for t in TABLES] == [6, 2, 5]
    assert got == expected
    customer_a = next(r for r in got["customers"] if r[0] == "cus_a")
    assert "NL" not in customer_a and "DE" in customer_a and "Europe/Amsterdam" in customer_a


def test_record_decisions_on_sqlite_goes_through_the_driver(stores, monkeypatch):
    _, engine = stores
    used = []
    monkeypatch.setattr(
        "serving.store.writes.write_decision_rows_through_driver",
        lambda e, rows: used.append(len(rows.decisions)),
    )
    record_decisions(engine, *decisions(2))
    assert used == [2]


def test_a_driver_error_is_raised_as_sqlalchemys_without_the_parameters(tmp_path):
    unmigrated = make_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite'}")
    requests, responses = decisions(1)
    try:
        with pytest.raises(OperationalError, match="no such table") as raised:
            record_decisions(unmigrated, requests, responses)
        assert requests[0].invoice_id not in str(raised.value)  # personal data stays out
        # the connection went back to the pool usable: the next write works once migrated
        migrate(unmigrated)
        record_decisions(unmigrated, requests, responses)
        assert len(table_rows(unmigrated)["decisions"]) == 1
    finally:
        unmigrated.dispose()
