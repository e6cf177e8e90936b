"""The store on a real PostgreSQL server (``SMARTRETRY_TEST_POSTGRES_URL``).

Skipped only when the variable is unset; when it is set and the server cannot be reached
the test fails. Each run works in its own schema, dropped afterwards, so the database it
points at is never wiped.
"""

from __future__ import annotations

import pytest
from api_helpers import flush_decisions, make_settings, post_json, request_body
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.export import export_history

pytestmark = pytest.mark.postgres


def test_recommendations_outcomes_and_export_on_postgres(tmp_path, postgres_url):
    settings = make_settings(tmp_path, database_url=postgres_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["store_reachable"] is True
        first = post_json(client, "/v1/recommendations", request_body()).json()
        batch = post_json(
            client,
            "/v1/recommendations/batch",
            {"items": [request_body(invoice_id=f"in_{i}") for i in range(3)] * 2},
        )
        assert batch.status_code == 200
        event = {
            "event_id": "ev_1",
            "type": "attempt",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-28T05:00:00Z",
            "initiated_by": "merchant",
            "outcome": "succeeded",
            "decision_id": first["decision_id"],
        }
        assert post_json(client, "/v1/outcomes", {"events": [event]}).json() == {
            "accepted": 1,
            "duplicates": 0,
        }
        assert post_json(client, "/v1/outcomes", {"events": [event, event]}).json() == {
            "accepted": 0,
            "duplicates": 2,
        }
        flush_decisions(client)  # decisions are stored just after their answer
        engine = client.app.state.engine
        assert engine.dialect.name == "postgresql"
        history, _ = export_history(engine)
    assert len(history.invoices) == 4
    assert history.attempts["propensity"].notna().sum() == 1
