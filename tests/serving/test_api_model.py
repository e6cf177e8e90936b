"""The API with a real trained model: over HTTP (TestClient), a real SQLite file, the
small simulated world's artifact saved to disk and loaded by ``SMARTRETRY_MODEL``."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from api_helpers import AUTH, check_contract_rules, make_settings, post_json
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.artifact_decider import load_artifact_decider
from training.api.from_history import history_requests
from training.api.sensitive import scan
from training.artifact.decision_artifact import ARTIFACT_FILE
from training.policy.decisions import new_decision_ids

TRAINING_DATA = {"train_period": "2024-01-01 .. 2024-08-13", "rows": 6000}
EVALUATION = {"test_period": "2024-10-22 .. 2024-12-28", "models": {"retry": {"auc": 0.7}}}


def _save(world: Any, folder: Path, version: str) -> Path:
    metadata = {
        "name": "smart-retry",
        "model_version": version,
        "training_data": TRAINING_DATA,
        "evaluation": EVALUATION,
    }
    return dataclasses.replace(world.artifact, metadata=metadata).save(folder)


@pytest.fixture(scope="module")
def artifacts(small_world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    return {v: _save(small_world, root / v, f"smart-retry/{v}") for v in ("7", "8")}


@pytest.fixture(scope="module")
def held_out(small_world: Any) -> list[dict[str, Any]]:
    """Requests for held-out invoices (first failure in the test period)."""
    return history_requests(small_world.history, small_world.split.test_start, limit=40)


@pytest.fixture(scope="module")
def model_client(
    artifacts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("store"), model=str(artifacts["7"]))
    with TestClient(create_app(settings)) as client:
        yield client


def _without_decision_id(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "decision_id"}


def test_model_response_carries_contract_fields_and_probabilities(model_client, held_out):
    for request in held_out[:5]:
        response = post_json(model_client, "/v1/recommendations", request)
        assert response.status_code == 200, response.text
        body = response.json()
        check_contract_rules(request, body)
        assert body["fallback"] is False
        assert body["model_version"] == "smart-retry/7"
        assert 0 <= body["expected_recovery_probability"] <= 1
        assert 0 <= body["baseline_recovery_probability"] <= 1
        assert all(0 <= r["success_probability"] <= 1 for r in body["retries"])
        assert all(0 <= m["response_probability"] <= 1 for m in body["messages"])
        assert "no model loaded: rule-based schedule (fallback)" not in body["reasons"]


def test_readyz_reports_the_loaded_model(model_client):
    body = model_client.get("/readyz").json()
    body.pop("decisions_pending")  # the module's client may still be writing decisions
    assert body == {
        "ready": True,
        "model_loaded": True,
        "fallback": False,
        "model_version": "smart-retry/7",
        "store_reachable": True,
        "down": [],
    }


def test_known_customer_may_leave_customer_out(model_client, held_out, small_world):
    customers = small_world.history.customers.set_index("customer_id")
    request = next(
        r for r in held_out if r["customer"]["timezone"] != "UTC" and r["customer"]["sms_opt_in"]
    )
    # never sent to this app before, so only the model's training history knows it
    omitted = {k: v for k, v in request.items() if k != "customer"}
    omitted["invoice_id"] = request["invoice_id"] + "_omitted"
    explicit = {**request, "invoice_id": omitted["invoice_id"]}
    got = post_json(model_client, "/v1/recommendations", omitted)
    assert got.status_code == 200, got.text
    want = post_json(model_client, "/v1/recommendations", explicit).json()
    assert _without_decision_id(got.json()) == _without_decision_id(want)
    # quiet hours are the known customer's, not the cold-start UTC default
    known = customers.loc[request["customer_id"]]
    check_contract_rules(
        {**omitted, "customer": {"timezone": known["timezone"], "sms_opt_in": True}}, got.json()
    )


def test_artifact_decider_knows_only_training_customers(artifacts, small_world):
    decider = load_artifact_decider(str(artifacts["7"]))
    first = small_world.history.customers.iloc[0]
    found = decider.known_customers([first["customer_id"], "cus_never_seen", first["customer_id"]])
    assert list(found) == [first["customer_id"]]
    assert found[first["customer_id"]]["timezone"] == first["timezone"]
    assert found[first["customer_id"]]["sms_opt_in"] == bool(first["sms_opt_in"])


def test_batch_of_good_and_bad_items(model_client, held_out):
    good = held_out[10:14]
    bad_amount = {**held_out[14], "amount_minor": 0}
    no_brand = {**held_out[15], "payment_method": "card", "card_brand": None}
    items = [good[0], bad_amount, good[1], "not an object", no_brand, good[2], good[3]]
    response = post_json(model_client, "/v1/recommendations/batch", {"items": items})
    assert response.status_code == 200, response.text
    out = response.json()["items"]
    assert len(out) == len(items)
    assert out[1] == {
        "invoice_id": bad_amount["invoice_id"],
        "error": {
            "code": "out_of_range",
            "message": "items[1].amount_minor: Input should be greater than 0",
            "field": "items[1].amount_minor",
        },
    }
    assert out[3]["invoice_id"] is None and out[3]["error"]["code"] == "invalid_type"
    assert out[4]["error"]["code"] == "card_brand_required"
    for position, request in zip((0, 2, 5, 6), good, strict=True):
        check_contract_rules(request, out[position])
        assert out[position]["fallback"] is False
        assert out[position]["model_version"] == "smart-retry/7"


def test_model_route_describes_the_model(model_client, artifacts):
    response = model_client.get("/v1/model", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "smart-retry"
    assert body["version"] == "smart-retry/7"
    assert body["fallback"] is False
    assert body["source"] == str(artifacts["7"])
    assert body["training_data"] == TRAINING_DATA
    assert body["evaluation"] == EVALUATION
    assert body["last_reload_error"] is None


def test_reload_swaps_in_a_new_artifact(artifacts, held_out, tmp_path):
    """The configured folder gets a new champion; a reload serves it; a broken one is refused."""
    champion = tmp_path / "champion"
    shutil.copytree(artifacts["7"], champion)
    settings = make_settings(tmp_path, model=str(champion))
    with TestClient(create_app(settings)) as client:
        first = post_json(client, "/v1/recommendations", held_out[0]).json()
        assert first["model_version"] == "smart-retry/7"

        shutil.copyfile(artifacts["8"] / ARTIFACT_FILE, champion / ARTIFACT_FILE)
        reloaded = post_json(client, "/v1/admin/reload", {})
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["version"] == "smart-retry/8"
        again = post_json(client, "/v1/recommendations", held_out[0]).json()
        assert again["model_version"] == "smart-retry/8" and again["fallback"] is False

        (champion / ARTIFACT_FILE).write_bytes(b"not an artifact")
        failed = post_json(client, "/v1/admin/reload", {})
        assert failed.status_code == 503 and failed.json()["code"] == "reload_failed"
        kept = post_json(client, "/v1/recommendations", held_out[0]).json()
        assert kept["model_version"] == "smart-retry/8" and kept["fallback"] is False

        # another path (what a deployment tool would hand the holder): loaded, then swapped
        assert client.app.state.holder.reload(str(artifacts["7"]))
        info = client.get("/v1/model", headers=AUTH).json()
        assert (info["version"], info["source"]) == ("smart-retry/7", str(artifacts["7"]))
        last = post_json(client, "/v1/recommendations", held_out[0]).json()
        assert last["model_version"] == "smart-retry/7"


def test_concurrent_single_requests_are_decided_together(artifacts, held_out, tmp_path):
    """Single requests arriving together share one decider call (micro-batching), and each
    still gets its own answer, or its own error without a batch prefix."""
    settings = make_settings(tmp_path, model=str(artifacts["7"]), microbatch_wait_ms=500)
    good = held_out[20:26]
    bad = {**held_out[26], "currency": "EURO"}
    bodies = [*good[:3], bad, *good[3:]]
    with TestClient(create_app(settings)) as client:
        batcher = client.app.state.batcher
        calls: list[int] = []
        handle = batcher.handle

        def counting(items: list[Any]) -> list[Any]:
            calls.append(len(items))
            return handle(items)

        batcher.handle = counting
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: post_json(client, "/v1/recommendations", b), bodies))
    assert sum(calls) == len(bodies) and len(calls) < len(bodies), calls
    assert answers[3].status_code == 422
    assert answers[3].json()["field"] == "currency"
    for body, answer in zip(bodies[:3] + bodies[4:], answers[:3] + answers[4:], strict=True):
        assert answer.status_code == 200, answer.text
        check_contract_rules(body, answer.json())
        assert answer.json()["fallback"] is False


def test_decision_ids_can_always_be_echoed_to_outcomes():
    """Hex ids sometimes hold a Luhn-valid 13-19 digit run, which /v1/outcomes refuses as
    a card number (found by benchmarks/bench_api.py); the ids have no digits at all."""
    ids = new_decision_ids(20_000)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"dec_[a-z]{24}", i) for i in ids)
    scan({"events": [{"decision_id": i} for i in ids[:2000]]})  # raises on card data


def test_scoring_threads_reach_the_loaded_model(artifacts, held_out, tmp_path):
    """``SMARTRETRY_SCORING_THREADS`` is what the served model's big scoring calls use."""
    settings = make_settings(tmp_path, model=str(artifacts["7"]), scoring_threads=3)
    with TestClient(create_app(settings)) as client:
        decider = client.app.state.holder.current.decider
        assert decider.decider.scorer.threads == 3
        answered = post_json(client, "/v1/recommendations/batch", {"items": held_out[:60]})
        assert answered.status_code == 200
        assert all("retries" in item for item in answered.json()["items"])
