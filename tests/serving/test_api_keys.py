"""Keys made with `smartretry keys`: hashed in the store, scoped, seen by a running server
without restart; the audit log of key use; per-key rate limits."""

from __future__ import annotations

import logging

import pytest
from api_helpers import API_KEY, AUTH, make_settings, post_json, request_body
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from serving.app import create_app
from serving.keys import configured_key_id
from serving.rate_limit import TokenBuckets, retry_after_header
from serving.settings import hash_key
from serving.store.api_keys import key_id_of, parse_scopes
from training.cli.main import app as cli

OUTCOMES = {
    "events": [
        {
            "event_id": "ev_1",
            "type": "message_opened",
            "invoice_id": "in_1",
            "occurred_at": "2026-11-20T10:00:00Z",
            "message_id": "m1",
        }
    ]
}


def keys_cli(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["keys", *args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def live(tmp_path):
    """A running app that re-reads the store's keys on every request (cache 0 s)."""
    settings = make_settings(tmp_path, api_key_cache_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield settings, client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_created_key_works_for_its_scopes_only_and_revocation_needs_no_restart(live):
    settings, client = live
    key = keys_cli(settings.database_url, "create", "--scopes", "outcomes", "--name", "billing")
    key = key.strip()
    key_id = key_id_of(key)
    assert key_id is not None

    assert post_json(client, "/v1/outcomes", OUTCOMES, bearer(key)).status_code == 200
    refused = post_json(client, "/v1/recommendations", request_body(), bearer(key))
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert "'recommend'" in refused.json()["message"] and key_id in refused.json()["message"]
    assert client.post("/v1/admin/reload", headers=bearer(key)).status_code == 403
    assert client.get("/v1/model", headers=bearer(key)).status_code == 200  # any key

    listed = keys_cli(settings.database_url, "list")
    assert key_id in listed and "billing" in listed and "outcomes" in listed
    assert key.split("_", 2)[2] not in listed  # never the secret

    assert keys_cli(settings.database_url, "revoke", key_id).strip() == f"revoked {key_id}"
    after = post_json(client, "/v1/outcomes", OUTCOMES, bearer(key))
    assert after.status_code == 401 and after.json()["code"] == "invalid_api_key"


def test_the_store_keeps_only_the_digest(live, tmp_path):
    settings, _ = live
    key = keys_cli(settings.database_url, "create", "--scopes", "recommend").strip()
    secret = key.split("_", 2)[2]
    store = (tmp_path / "store").glob("smartretry.sqlite*")
    raw = b"".join(path.read_bytes() for path in store)
    assert secret.encode() not in raw and key.encode() not in raw
    assert hash_key(key).encode() in raw


def test_a_wrong_secret_with_a_real_key_id_is_refused(live):
    settings, client = live
    key = keys_cli(settings.database_url, "create", "--scopes", "recommend").strip()
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (
        post_json(client, "/v1/recommendations", request_body(), bearer(forged)).status_code == 401
    )


def test_unknown_scope_and_revoking_an_unknown_key_are_refused(live):
    settings, _ = live
    result = CliRunner().invoke(
        cli,
        ["keys", "create", "--scopes", "recommend,export", "--database-url", settings.database_url],
    )
    assert result.exit_code != 0 and "unknown scope 'export'" in result.output
    result = CliRunner().invoke(
        cli, ["keys", "revoke", "deadbeef", "--database-url", settings.database_url]
    )
    assert result.exit_code == 1 and "no active key with id deadbeef" in result.output
    with pytest.raises(ValueError, match="at least one scope"):
        parse_scopes(" , ")


def test_configured_keys_have_every_scope(client):
    assert post_json(client, "/v1/recommendations", request_body()).status_code == 200
    assert post_json(client, "/v1/outcomes", OUTCOMES).status_code == 200
    # past the scope check: no model is configured here, so the reload itself fails
    assert client.post("/v1/admin/reload", headers=AUTH).json()["code"] == "reload_failed"


def test_a_server_with_only_stored_keys_starts(tmp_path):
    settings = make_settings(tmp_path, api_keys=[])
    key = keys_cli(settings.database_url, "create", "--scopes", "recommend").strip()
    with TestClient(create_app(settings)) as client:
        assert (
            post_json(client, "/v1/recommendations", request_body(), bearer(key)).status_code == 200
        )


def test_audit_log_names_the_key_route_and_status_never_the_secret(live, caplog):
    settings, client = live
    key = keys_cli(settings.database_url, "create", "--scopes", "outcomes").strip()
    with caplog.at_level(logging.INFO, logger="smartretry.audit"):
        post_json(client, "/v1/outcomes", OUTCOMES, bearer(key))
        post_json(client, "/v1/recommendations", request_body(), bearer(key))
        post_json(client, "/v1/recommendations", request_body(), bearer("nope"))
        post_json(client, "/v1/recommendations", request_body())
    lines = [r.getMessage() for r in caplog.records if r.name == "smartretry.audit"]
    key_id = key_id_of(key)
    assert lines == [
        f"api key {key_id} POST /v1/outcomes -> 200",
        f"api key {key_id} POST /v1/recommendations -> 403",
        "api key - POST /v1/recommendations -> 401",
        f"api key {configured_key_id(hash_key(API_KEY))} POST /v1/recommendations -> 200",
    ]
    everything = caplog.text
    assert key not in everything and API_KEY not in everything


def test_rate_limit_answers_429_with_retry_after_per_key(tmp_path):
    settings = make_settings(
        tmp_path, rate_limit_per_second=0.5, rate_limit_burst=2, api_key_cache_seconds=0
    )
    with TestClient(create_app(settings)) as client:
        statuses = [client.get("/v1/model", headers=AUTH).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = client.get("/v1/model", headers=AUTH)
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert limited.headers["Retry-After"] == "2"  # a token every 2 s
        other = create_key_in(settings)
        assert client.get("/v1/model", headers=bearer(other)).status_code == 200  # own bucket


def create_key_in(settings) -> str:
    return keys_cli(settings.database_url, "create", "--scopes", "recommend").strip()


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.1)
    assert buckets.take("b") == 0  # another key
    now[0] = 0.25  # 2.5 tokens back
    assert [buckets.take("a") for _ in range(2)] == [0, 0]
    assert buckets.take("a") > 0
    assert retry_after_header(0.1) == "1" and retry_after_header(2.01) == "3"
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)


def test_stored_keys_keep_working_while_the_store_is_unreachable(tmp_path):
    settings = make_settings(tmp_path, api_key_cache_seconds=0)
    key = create_key_in(settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/model", headers=bearer(key)).status_code == 200
        (tmp_path / "store").rename(tmp_path / "store-away")
        client.app.state.engine.dispose()
        assert client.get("/v1/model", headers=bearer(key)).status_code == 200  # keys read last
        (tmp_path / "store-away").rename(tmp_path / "store")
