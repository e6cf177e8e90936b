"""API-key authentication, scopes and per-key rate limits for every ``/v1`` route.

The check is a dependency of each ``/v1`` route, whose handlers read the body themselves,
so a request without a valid key (401), without the route's scope (403) or over its key's
rate (429) is answered before its body is read or anything is written. The key id (never
the key) is put on ``request.state.key_id`` for the audit log (:mod:`serving.audit`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from serving.keys import KeyRegistry, Principal
from serving.rate_limit import TokenBuckets, retry_after_header
from training.api.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The presented key's principal; 401 without a valid key, 429 over its rate."""
    registry: KeyRegistry = request.app.state.keys
    if credentials is None:
        raise ApiError(
            401,
            "missing_api_key",
            "send the header 'Authorization: Bearer <api key>'",
            "Authorization",
            _CHALLENGE,
        )
    if registry.stale:
        await run_in_threadpool(registry.refresh)
    principal = registry.authenticate(credentials.credentials)
    if principal is None:
        raise ApiError(
            401, "invalid_api_key", "the API key is not valid", "Authorization", _CHALLENGE
        )
    request.state.key_id = principal.key_id
    limiter: TokenBuckets | None = request.app.state.rate_limiter
    if limiter is not None:
        wait = limiter.take(principal.key_id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"API key {principal.key_id} is over its rate limit "
                f"({limiter.rate:g} requests/s, bursts of {limiter.burst}); "
                "retry after the Retry-After seconds",
                "Authorization",
                {"Retry-After": retry_after_header(wait)},
            )
    return principal


class ScopedKey(HTTPBearer):
    """The bearer scheme (which documents the key in the OpenAPI schema) that also checks the
    key: a valid key (any key when ``scope`` is None) with ``scope``, else 403. One
    dependency, not a check over the scheme: FastAPI solves each dependency of each request
    on the event loop (the solving was 29 % of the loop's CPU per request, h107)."""

    def __init__(self, scope: str | None) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="ApiKey",
            description="An API key: from `smartretry keys create`, SMARTRETRY_API_KEYS or "
            "SMARTRETRY_API_KEYS_FILE",
        )
        self.required_scope = scope

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        principal = await authenticate(request, credentials)
        scope = self.required_scope
        if scope is not None and scope not in principal.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"API key {principal.key_id} lacks the scope '{scope}' this route needs "
                f"(it has: {', '.join(sorted(principal.scopes))})",
                "Authorization",
            )
        return principal


def require_scope(scope: str | None) -> Any:
    """A dependency: a valid key (any key when ``scope`` is None) with ``scope``, else 403."""
    return Depends(ScopedKey(scope))


AnyKey = require_scope(None)
RecommendScope = require_scope("recommend")
OutcomesScope = require_scope("outcomes")
AdminScope = require_scope("admin")
