"""Migration 0005 (each returned row's own propensity, stored with its decision) on SQLite
and, when ``SMARTRETRY_TEST_POSTGRES_URL`` is set, PostgreSQL: decisions stored before
keep a null, and ``export-outcomes`` writes their decision's propensity instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from api_helpers import flush_decisions, make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from serving.app import create_app
from serving.export import export_history
from serving.store.db import alembic_config, make_engine, migrate
from serving.store.models import Decision


def _events(answer: dict) -> list[dict]:
    decision = answer["decision_id"]
    retries = [
        {
            "event_id": f"r{k}",
            "type": "attempt",
            "invoice_id": answer["invoice_id"],
            "occurred_at": retry["at"],
            "initiated_by": "merchant",
            "outcome": "failed",
            "decline_code": "insufficient_funds",
            "decision_id": decision,
        }
        for k, retry in enumerate(answer["retries"][:2])
    ]
    message = answer["messages"][0]
    sent = {
        "event_id": "m0",
        "type": "message_sent",
        "invoice_id": answer["invoice_id"],
        "occurred_at": message["send_at"],
        "message_id": "m0",
        "channel": message["channel"],
        "template": message["template"],
        "decision_id": decision,
    }
    return [*retries, sent]


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _check(tmp_path: Path, url: str) -> None:
    settings = make_settings(tmp_path, database_url=url)
    with TestClient(create_app(settings)) as client:
        answer = post_json(client, "/v1/recommendations", request_body()).json()
        assert post_json(client, "/v1/outcomes", {"events": _events(answer)}).status_code == 200
        flush_decisions(client)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(Decision.row_propensities)).scalar_one()
        assert stored == {"retries": [1.0] * len(answer["retries"]), "messages": [1.0] * 3}
        # a decision stored before 0005, whose schedule was explored (propensity 0.25)
        _downgrade(engine, "0004")
        with engine.begin() as conn:
            conn.execute(text("UPDATE decisions SET propensity = 0.25"))
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(select(Decision.row_propensities)).scalar_one() is None
        history, _ = export_history(engine)
    finally:
        engine.dispose()
    retried = history.attempts.dropna(subset=["propensity"])
    assert sorted(retried["attempt_id"]) == ["r0", "r1"]
    assert (retried["propensity"] == 0.25).all()
    assert history.messages["propensity"].tolist() == [0.25]


def test_decisions_stored_before_0005_export_their_propensity_on_sqlite(tmp_path):
    _check(tmp_path, f"sqlite:///{tmp_path / 'store.sqlite'}")


@pytest.mark.postgres
def test_decisions_stored_before_0005_export_their_propensity_on_postgres(tmp_path, postgres_url):
    _check(tmp_path, postgres_url)
