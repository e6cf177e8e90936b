"""A small typed client for billing code that calls the API directly.

Requests and answers are the API's own pydantic schemas (:mod:`training.api.schemas`).
Retries with exponential backoff (honouring ``Retry-After``) happen only where repeating
is safe: outcomes on 429, 5xx and transport errors, because the service stores an event
once per ``event_id`` (the event id is the idempotency key: keep it when you resend);
recommendations on 429, 503 and connection failures (the request was not decided), since
a repeated recommendation would store a second decision.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from training.api.schemas import (
    BatchResponse,
    ErrorBody,
    ModelInfo,
    OutcomeEvent,
    OutcomesResponse,
    RecommendationRequest,
    RecommendationResponse,
)

Answer = TypeVar("Answer", bound=BaseModel)
NOT_DECIDED = frozenset({429, 503})


class SmartRetryError(Exception):
    """The API refused the request (4xx, or 5xx after the retries): status and error body."""

    def __init__(self, status: int, error: ErrorBody) -> None:
        super().__init__(f"{status} {error.code}: {error.message}")
        self.status = status
        self.error = error


def new_event_id(prefix: str = "evt") -> str:
    """A fresh outcome ``event_id``; store it with the event and reuse it on resend.

    A uuid4 in hex with a ``g`` after every 12 characters: plain hex holds a run of 13
    or more digits about once in 60 ids, and about one in a thousand is a Luhn-valid card
    number that the API refuses (``card_number_refused``); a run here is at most 12."""
    token = uuid.uuid4().hex
    return f"{prefix}_{token[:12]}g{token[12:24]}g{token[24:]}"


class SmartRetryClient:
    """``SmartRetryClient("https://smartretry.internal", api_key)``; ``http`` lets the
    caller pass its own ``httpx.Client`` (proxies, TLS, tests)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep

    def __enter__(self) -> SmartRetryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def recommend(self, request: RecommendationRequest) -> RecommendationResponse:
        """Retry times and messages for one failed charge (``POST /v1/recommendations``)."""
        body = request.model_dump(mode="json", exclude_none=True)
        return self._call("POST", "/v1/recommendations", body, RecommendationResponse, False)

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> BatchResponse:
        items = [r.model_dump(mode="json", exclude_none=True) for r in requests]
        return self._call(
            "POST", "/v1/recommendations/batch", {"items": items}, BatchResponse, False
        )

    def report_outcomes(self, events: Sequence[OutcomeEvent]) -> OutcomesResponse:
        """Store outcome events (``POST /v1/outcomes``); safe to repeat (by ``event_id``)."""
        body = {"events": [e.model_dump(mode="json", exclude_none=True) for e in events]}
        return self._call("POST", "/v1/outcomes", body, OutcomesResponse, True)

    def model(self) -> ModelInfo:
        return self._call("GET", "/v1/model", None, ModelInfo, True)

    def _call(
        self, method: str, path: str, body: Any, answer: type[Answer], idempotent: bool
    ) -> Answer:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=body, headers=self._headers)
            except httpx.TransportError as error:
                sent = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt >= self.max_retries or (sent and not idempotent):
                    raise
                self._wait(attempt, None)
                attempt += 1
                continue
            status = response.status_code
            retryable = status in NOT_DECIDED or (idempotent and status >= 500)
            if retryable and attempt < self.max_retries:
                self._wait(attempt, response.headers.get("retry-after"))
                attempt += 1
                continue
            if status >= 400:
                raise SmartRetryError(status, _error_body(response))
            return answer.model_validate_json(response.content)

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_seconds * 2**attempt
        if retry_after is not None and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        self._sleep(delay)


def _error_body(response: httpx.Response) -> ErrorBody:
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValueError:
        return ErrorBody(code="http_error", message=response.text[:200] or response.reason_phrase)
