"""The store unreachable for a while (SQLite: its folder gone; PostgreSQL: the network path
cut): recommendations are still answered and their decisions written once the store is
back; outcomes get 503 with Retry-After and nothing is stored until the retry;
/readyz and /healthz name the store as the part that is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from serving.app import create_app
from serving.settings import Settings
from serving.store.db import make_engine
from serving.store.decision_writer import RETRY_DELAYS_SECONDS
from serving.store.models import Decision, OutcomeEvent

pytestmark = pytest.mark.slow  # each waits out an outage of 3 s


def event(i: int) -> dict[str, Any]:
    return {
        "event_id": f"ev_{i}",
        "type": "message_opened",
        "invoice_id": "in_1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "message_id": f"m{i}",
    }


class SqliteOutage:
    """The store's folder renamed away: no connection can open the file."""

    def __init__(self, tmp_path: Path, **changes: Any) -> None:
        self.folder = tmp_path / "store"
        self.away = tmp_path / "store-away"
        self.settings = make_settings(tmp_path, **changes)

    def cut(self, client: TestClient) -> None:
        self.folder.rename(self.away)
        client.app.state.engine.dispose()  # open connections would keep the old file

    def restore(self, client: TestClient) -> None:
        self.away.rename(self.folder)


class PostgresOutage:
    """The store reached through a proxy that is cut (listener and connections closed)."""

    def __init__(self, tmp_path: Path, url: str, **changes: Any) -> None:
        parsed = make_url(url)
        self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        self.proxy.restore()
        proxied = parsed.set(host="127.0.0.1", port=self.proxy.port)
        self.direct_url = url
        self.settings = make_settings(
            tmp_path, database_url=proxied.render_as_string(hide_password=False), **changes
        )

    def cut(self, client: TestClient) -> None:
        self.proxy.cut()

    def restore(self, client: TestClient) -> None:
        self.proxy.restore()


def counts(url: str) -> tuple[set[str], int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            decisions = set(conn.execute(select(Decision.decision_id)).scalars())
            events = conn.execute(select(func.count()).select_from(OutcomeEvent)).scalar_one()
        return decisions, events
    finally:
        engine.dispose()


def run_outage(outage: SqliteOutage | PostgresOutage, store_url: str) -> None:
    settings: Settings = outage.settings
    with TestClient(create_app(settings)) as client:
        answered = [post_json(client, "/v1/recommendations", request_body()).json()]
        assert post_json(client, "/v1/outcomes", {"events": [event(0)]}).status_code == 200

        outage.cut(client)
        for i in range(3):
            response = post_json(client, "/v1/recommendations", request_body(invoice_id=f"in_{i}"))
            assert response.status_code == 200, response.text
            answered.append(response.json())
        refused = post_json(client, "/v1/outcomes", {"events": [event(1), event(2)]})
        assert refused.status_code == 503
        assert refused.json()["code"] == "store_unavailable"
        assert refused.headers["Retry-After"] == str(settings.outcomes_retry_after_seconds)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["store"] and ready.json()["store_reachable"] is False
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["store"] == "unreachable"
        assert client.app.state.decision_writer.pending >= 3  # held, to be written later
        # an outage longer than a refused batch's retries (RETRY_DELAYS_SECONDS: 2.6 s)
        time.sleep(sum(RETRY_DELAYS_SECONDS) + 0.5)
        assert client.app.state.decision_writer.pending >= 3

        outage.restore(client)
        assert client.app.state.decision_writer.flush(timeout=60), "decisions still held"
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").json()["store"] == "ok"
        decisions, events = counts(store_url)
        assert events == 1  # nothing of the refused request was stored
        retried = post_json(client, "/v1/outcomes", {"events": [event(1), event(2)]})
        assert retried.json() == {"accepted": 2, "duplicates": 0}
    decisions, events = counts(store_url)
    assert decisions == {r["decision_id"] for r in answered}
    assert events == 3


@pytest.mark.parametrize("write_behind", [True, False], ids=["write-behind", "write-through"])
def test_sqlite_store_outage(tmp_path, write_behind):
    outage = SqliteOutage(tmp_path, decision_write_behind=write_behind)
    run_outage(outage, outage.settings.database_url)


@pytest.mark.postgres
def test_postgres_store_outage(tmp_path, postgres_url):
    outage = PostgresOutage(tmp_path, postgres_url)
    try:
        assert outage.settings.write_behind() is False  # PostgreSQL: write-through
        run_outage(outage, postgres_url)
    finally:
        outage.proxy.cut()
