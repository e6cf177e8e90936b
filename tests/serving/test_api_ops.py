"""Health, readiness, metrics, the model route, reload and the published OpenAPI schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from api_helpers import AUTH, make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from serving.app import create_app
from serving.openapi import render
from serving.routes import v1
from serving.security import ScopedKey
from training.policy.decisions import Decisions
from training.policy.fallback import FallbackDecider

DOCS_OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


class FileDecider(FallbackDecider):
    """A small real decider loaded from a JSON file: the rules schedule under a model name."""

    def __init__(self, version: str, broken: bool = False) -> None:
        super().__init__()
        self._version = version
        self.broken = broken

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def fallback(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {
            "name": "smart-retry",
            "training_data": {"start": "2024-01-01", "end": "2025-06-30"},
            "evaluation": {"recovery_rate": 0.5},
        }

    def known_customers(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        history = {"cus_hist": {"timezone": "Asia/Kolkata", "sms_opt_in": True, "country": "IN"}}
        return {c: history[c] for c in customer_ids if c in history}

    def decide(self, events: pd.DataFrame, previous_attempts: pd.DataFrame) -> Decisions:
        if self.broken:
            raise RuntimeError("model exploded")
        decisions = super().decide(events, previous_attempts)
        decisions.events["fallback"] = False
        return decisions


def load_file_decider(source: str) -> FileDecider:
    spec = json.loads(Path(source).read_text())  # a missing or corrupt file raises
    return FileDecider(spec["version"], spec.get("broken", False))


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"version": "smart-retry/1"}))
    return path


@pytest.fixture
def model_client(tmp_path: Path, model_file: Path):
    settings = make_settings(tmp_path, model=str(model_file))
    with TestClient(create_app(settings, loader=load_file_decider)) as client:
        yield client


def test_healthz(client):
    assert client.get("/healthz").json() == {
        "status": "ok",
        "store": "ok",
        "decider": "fallback",
        "decisions_pending": 0,
    }


def test_readyz_in_fallback_mode(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "model_loaded": False,
        "fallback": True,
        "model_version": "rules-fallback/1",
        "store_reachable": True,
        "down": [],
        "decisions_pending": 0,
    }


def test_readyz_when_the_store_is_unreachable(client):
    client.app.state.engine = create_engine("postgresql+psycopg://u:p@127.0.0.1:9/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["store_reachable"] is False
    assert response.json()["down"] == ["store"]


def test_metrics_count_requests_fallbacks_and_categories(client):
    post_json(client, "/v1/recommendations", request_body())
    post_json(client, "/v1/recommendations", request_body(decline_code="stolen_card"))
    client.post("/v1/recommendations", json=request_body())  # 401
    text = client.get("/metrics").text
    assert (
        'smartretry_http_requests_total{method="POST",route="/v1/recommendations",status="200"} 2.0'
        in text
    )
    assert (
        'smartretry_http_requests_total{method="POST",route="/v1/recommendations",status="401"} 1.0'
        in text
    )
    assert "smartretry_http_request_duration_seconds_bucket{" in text
    assert "smartretry_fallback_decisions_total 2.0" in text
    assert 'smartretry_decisions_total{category="insufficient_funds",retryable="yes"} 1.0' in text
    assert 'smartretry_decisions_total{category="lost_or_stolen",retryable="no"} 1.0' in text
    assert "smartretry_model_fallback 1.0" in text


def test_two_apps_keep_separate_metrics(tmp_path, client):
    post_json(client, "/v1/recommendations", request_body())
    with TestClient(create_app(make_settings(tmp_path / "other"))) as other:
        assert "smartretry_fallback_decisions_total 0.0" in other.get("/metrics").text


def test_model_route_in_fallback_mode(client):
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["fallback"] is True
    assert info["version"] == "rules-fallback/1"
    assert info["last_reload_error"] == "no model configured"


def test_loaded_model_answers_and_is_described(model_client):
    info = model_client.get("/v1/model", headers=AUTH).json()
    assert (info["version"], info["fallback"]) == ("smart-retry/1", False)
    assert info["training_data"] == {"start": "2024-01-01", "end": "2025-06-30"}
    assert model_client.get("/readyz").json()["model_loaded"] is True
    answer = post_json(model_client, "/v1/recommendations", request_body()).json()
    assert (answer["model_version"], answer["fallback"]) == ("smart-retry/1", False)


def test_reload_swaps_and_a_failed_reload_keeps_the_old_model(model_client, model_file):
    model_file.write_text(json.dumps({"version": "smart-retry/2"}))
    response = model_client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["version"] == "smart-retry/2"

    model_file.write_text("{ corrupt")
    response = model_client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["code"] == "reload_failed"
    info = model_client.get("/v1/model", headers=AUTH).json()
    assert info["version"] == "smart-retry/2"
    assert info["last_reload_error"].startswith("JSONDecodeError")
    answer = post_json(model_client, "/v1/recommendations", request_body()).json()
    assert answer["model_version"] == "smart-retry/2"
    assert (
        'smartretry_model_reloads_total{result="failed"} 1.0' in model_client.get("/metrics").text
    )


def test_model_that_fails_to_load_starts_in_fallback(tmp_path):
    settings = make_settings(tmp_path, model=str(tmp_path / "missing.json"))
    with TestClient(create_app(settings, loader=load_file_decider)) as client:
        ready = client.get("/readyz").json()
        assert (ready["ready"], ready["fallback"]) == (True, True)
        assert (
            "FileNotFoundError" in client.get("/v1/model", headers=AUTH).json()["last_reload_error"]
        )


def test_default_loader_without_a_model_starts_in_fallback(tmp_path):
    settings = make_settings(tmp_path, model=str(tmp_path / "no-such-artifact"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["fallback"] is True


def test_a_model_that_raises_is_answered_by_the_fallback(tmp_path, model_file):
    model_file.write_text(json.dumps({"version": "smart-retry/9", "broken": True}))
    settings = make_settings(tmp_path, model=str(model_file))
    with TestClient(create_app(settings, loader=load_file_decider)) as client:
        answer = post_json(client, "/v1/recommendations", request_body()).json()
        assert (answer["fallback"], answer["model_version"]) == (True, "rules-fallback/1")


def test_reload_can_be_disabled(tmp_path):
    settings = make_settings(tmp_path, allow_reload=False)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/admin/reload", headers=AUTH)
        assert (response.status_code, response.json()["code"]) == (409, "reload_disabled")


def test_switch_interval_is_set_while_serving_and_restored(tmp_path):
    before = sys.getswitchinterval()
    with TestClient(create_app(make_settings(tmp_path, switch_interval_ms=0.5))):
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    assert sys.getswitchinterval() == before


def test_the_key_check_is_one_dependency_without_sub_dependencies():
    """FastAPI solves every dependency of every request on the event loop: the check is
    the bearer scheme itself (documented in the OpenAPI schema), nothing under it."""
    scopes = {}
    for route in v1.routes:
        [check] = [d for d in route.dependant.dependencies if isinstance(d.call, ScopedKey)]
        assert check.dependencies == [], route.path
        scopes[route.path] = check.call.required_scope
    assert scopes["/v1/recommendations"] == "recommend"
    assert scopes["/v1/outcomes"] == "outcomes"


def test_docs_openapi_is_current():
    assert DOCS_OPENAPI.read_text() == render(), (
        "docs/openapi.json is stale: run python -m serving.openapi docs/openapi.json"
    )


def test_periodic_reload_picks_up_a_new_model(tmp_path, model_file):
    import time

    settings = make_settings(tmp_path, model=str(model_file), reload_interval_seconds=0.05)
    with TestClient(create_app(settings, loader=load_file_decider)) as client:
        assert client.get("/v1/model", headers=AUTH).json()["version"] == "smart-retry/1"
        model_file.write_text(json.dumps({"version": "smart-retry/2"}))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if client.get("/v1/model", headers=AUTH).json()["version"] == "smart-retry/2":
                break
            time.sleep(0.05)
        assert client.get("/v1/model", headers=AUTH).json()["version"] == "smart-retry/2"


def test_customers_known_from_the_model_then_from_requests(model_client):
    body = request_body(
        customer_id="cus_hist",
        customer=None,
        previous_attempts=None,
        failed_at="2026-11-20T17:00:00Z",
    )
    answer = post_json(model_client, "/v1/recommendations", body).json()
    # Kolkata from the model's history: 22:30 local is quiet, first message 08:00 IST
    assert answer["messages"][0]["send_at"] == "2026-11-21T02:30:00Z"
    assert any(m["channel"] == "sms" for m in answer["messages"])
    # a later request's customer values are stored and win over the model's
    told = {"timezone": "Europe/Amsterdam", "sms_opt_in": False}
    post_json(model_client, "/v1/recommendations", {**body, "invoice_id": "in_2", "customer": told})
    answer = post_json(model_client, "/v1/recommendations", {**body, "invoice_id": "in_3"}).json()
    assert answer["messages"][0]["send_at"] == "2026-11-20T17:00:00Z"
    assert {m["channel"] for m in answer["messages"]} == {"email"}
