"""serving.client against a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_helpers import API_KEY, CONTRACT_REQUEST, make_settings

from serving.app import create_app
from serving.client import SmartRetryClient, SmartRetryError, new_event_id
from training.api.schemas import AttemptEvent, RecommendationRequest


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(make_settings(tmp_path)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def attempt(event_id: str) -> AttemptEvent:
    return AttemptEvent.model_validate(
        {
            "event_id": event_id,
            "type": "attempt",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-22T09:00:00Z",
            "initiated_by": "merchant",
            "outcome": "succeeded",
        }
    )


def test_recommend_and_outcomes_round_trip(base_url: str) -> None:
    with SmartRetryClient(base_url, API_KEY) as client:
        answer = client.recommend(RecommendationRequest.model_validate(CONTRACT_REQUEST))
        assert answer.invoice_id == "in_1029" and answer.decision_id
        event_id = new_event_id()
        first = client.report_outcomes([attempt(event_id)])
        again = client.report_outcomes([attempt(event_id)])  # a resend: stored once
        assert (first.accepted, first.duplicates) == (1, 0)
        assert (again.accepted, again.duplicates) == (0, 1)
        assert client.model().fallback is True


def test_refusals_raise_with_the_error_body(base_url: str) -> None:
    with SmartRetryClient(base_url, "wrong-key") as client:
        with pytest.raises(SmartRetryError) as raised:
            client.model()
    assert raised.value.status == 401 and raised.value.error.code == "invalid_api_key"


def test_outcomes_are_retried_after_5xx_and_429(base_url: str) -> None:
    """The first two calls meet a 502 and a 429 from a failing proxy; the third reaches
    the real server."""
    faults = [httpx.Response(502), httpx.Response(429, headers={"Retry-After": "1"})]
    real = httpx.Client(base_url=base_url)

    def proxy(request: httpx.Request) -> httpx.Response:
        if faults:
            return faults.pop(0)
        forwarded = real.send(
            real.build_request(
                request.method, request.url.path, content=request.content, headers=request.headers
            )
        )
        return httpx.Response(
            forwarded.status_code, content=forwarded.content, headers=forwarded.headers
        )

    waits: list[float] = []
    http = httpx.Client(base_url=base_url, transport=httpx.MockTransport(proxy))
    with SmartRetryClient(base_url, API_KEY, http=http, sleep=waits.append) as client:
        stored = client.report_outcomes([attempt(new_event_id())])
    real.close()
    assert stored.accepted == 1
    assert waits == [0.5, 1.0]


def test_recommendations_are_not_retried_after_a_500(base_url: str) -> None:
    calls: list[str] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500, json={"code": "internal_error", "message": "boom"})

    http = httpx.Client(base_url=base_url, transport=httpx.MockTransport(failing))
    with SmartRetryClient(base_url, API_KEY, http=http, sleep=lambda _: None) as client:
        with pytest.raises(SmartRetryError):
            client.recommend(RecommendationRequest.model_validate(CONTRACT_REQUEST))
    assert calls == ["/v1/recommendations"]  # a repeat could store a second decision


def test_connection_errors_are_retried_then_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    waits: list[float] = []
    with SmartRetryClient(
        f"http://127.0.0.1:{port}", API_KEY, max_retries=2, sleep=waits.append
    ) as client:
        with pytest.raises(httpx.ConnectError):
            client.model()
    assert waits == [0.5, 1.0]


def test_new_event_ids_never_hold_a_card_number() -> None:
    """Plain uuid hex holds a Luhn-valid 13+ digit run about once in a thousand ids, which
    the API refuses as a card number; the client's ids keep every digit run under 13."""
    import re

    from training.api.sensitive import contains_card_number

    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert max(len(run) for i in ids for run in re.findall(r"[0-9]+", i)) <= 12
    assert not any(contains_card_number(i) for i in ids)
    assert contains_card_number("evt_4111111111111111ab")  # the check can fail
