"""Read a JSON request body with a size limit, after authentication has passed."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from training.api.errors import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"request body is larger than {limit} bytes (SMARTRETRY_MAX_BODY_BYTES); "
        "send fewer items per request",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body; 413 above ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise _too_large(limit)
    return bytes(chunks)


def parse_json_object(chunks: bytes) -> dict[str, Any]:
    """``chunks`` as a JSON object; 400 when it is not JSON, 422 when not an object."""
    try:
        body = json.loads(chunks)
    except json.JSONDecodeError as error:
        raise ApiError(
            400, "invalid_json", f"request body is not valid JSON: {error.msg}"
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "request body is not UTF-8 encoded JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_type", "request body must be a JSON object")
    return body


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 above ``limit`` bytes, 400 when it is not JSON."""
    return parse_json_object(await read_body(request, limit))
