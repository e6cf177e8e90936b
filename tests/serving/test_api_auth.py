"""Every /v1 route needs a valid bearer key; without one: 401, nothing read or written."""

from __future__ import annotations

import pytest
from api_helpers import API_KEY, request_body
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import hash_key, read_key_file

V1_ROUTES = [
    ("POST", "/v1/recommendations", request_body()),
    ("POST", "/v1/recommendations/batch", {"items": [request_body()]}),
    (
        "POST",
        "/v1/outcomes",
        {
            "events": [
                {
                    "event_id": "ev_1",
                    "type": "message_opened",
                    "invoice_id": "in_1",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "message_id": "m1",
                }
            ]
        },
    ),
    ("GET", "/v1/model", None),
    ("POST", "/v1/admin/reload", None),
]
BAD_HEADERS = {
    "no header": {},
    "wrong key": {"Authorization": "Bearer not-the-key"},
    "key prefix": {"Authorization": f"Bearer {API_KEY[:-1]}"},
    "basic scheme": {"Authorization": f"Basic {API_KEY}"},
    "empty bearer": {"Authorization": "Bearer "},
}


def test_every_v1_route_is_listed_here(client):
    paths = client.get("/openapi.json").json()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        # webhooks authenticate by the sender's signature, not an API key (test_webhooks)
        if path.startswith("/v1") and not path.startswith("/v1/webhooks/")
        for method in operations
    }
    assert served == {(m, p) for m, p, _ in V1_ROUTES}


@pytest.mark.parametrize(("method", "path", "body"), V1_ROUTES, ids=[r[1] for r in V1_ROUTES])
@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_without_a_valid_key_401_and_nothing_written(
    client, row_counts, method, path, body, headers
):
    before = row_counts()
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] in ("missing_api_key", "invalid_api_key")
    assert response.json()["field"] == "Authorization"
    assert response.headers["www-authenticate"] == "Bearer"
    assert row_counts() == before


def test_body_is_not_read_without_a_key(client):
    # a body far above the size limit and not even JSON: the answer is still 401
    response = client.post("/v1/recommendations", content=b"x" * 5_000_000)
    assert response.status_code == 401


def test_ops_routes_need_no_key(client):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_hashed_key_file(tmp_path, settings):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# billing system\n{hash_key('from-file')}\n\n")
    assert read_key_file(keys) == [hash_key("from-file")]
    file_settings = settings.model_copy(update={"api_keys": [], "api_keys_file": keys})
    with TestClient(create_app(file_settings)) as client:
        ok = client.get("/v1/model", headers={"Authorization": "Bearer from-file"})
        assert ok.status_code == 200
        assert (
            client.get("/v1/model", headers={"Authorization": f"Bearer {API_KEY}"}).status_code
            == 401
        )


def test_malformed_key_file_names_the_line(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{hash_key('a')}\nplain-key\n")
    with pytest.raises(ValueError, match=r"keys.txt:2: expected 'sha256:<64 hex digits>'"):
        read_key_file(keys)


def test_no_keys_configured_or_stored_refuses_to_start(settings):
    app = create_app(settings.model_copy(update={"api_keys": []}))
    with pytest.raises(RuntimeError, match="no API keys configured"), TestClient(app):
        pass


def test_keys_from_the_environment(monkeypatch):
    from serving.settings import Settings

    monkeypatch.setenv("SMARTRETRY_API_KEYS", " k1, k2 ,")
    assert Settings().api_keys == ["k1", "k2"]
