"""API-key authentication for every ``/v1`` route.

Keys are kept only as ``sha256:<hex>`` digests. The presented key is hashed and compared
with every configured digest using :func:`hmac.compare_digest` (no early exit), so the
answer time does not tell how much of a key was right. The check is a dependency of the
``/v1`` routers, whose handlers read the body themselves, so a request without a valid
key is answered 401 before its body is read or anything is written.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.dependencies import KeyDigestsDep
from serving.settings import hash_key
from training.api.errors import ApiError

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from SMARTRETRY_API_KEYS or SMARTRETRY_API_KEYS_FILE",
)


def key_is_valid(key: str, digests: list[str]) -> bool:
    presented = hash_key(key).encode()
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(presented, digest.encode())
    return matched


async def require_api_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    digests: KeyDigestsDep,
) -> None:
    """The check itself: ``async`` only so FastAPI runs it on the event loop (a plain
    ``def`` dependency costs a hop to the thread pool per request); it never awaits."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(
            401,
            "missing_api_key",
            "send the header 'Authorization: Bearer <api key>'",
            "Authorization",
            challenge,
        )
    if not key_is_valid(credentials.credentials, digests):
        raise ApiError(
            401, "invalid_api_key", "the API key is not valid", "Authorization", challenge
        )


ApiKey = Depends(require_api_key)
