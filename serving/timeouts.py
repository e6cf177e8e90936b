"""A time limit for every ``/v1`` request, body upload included.

A request not answered within ``SMARTRETRY_REQUEST_TIMEOUT_SECONDS`` gets 503
``request_timeout`` with ``Retry-After: 1``. Work already handed to the thread pool cannot
be stopped and may still finish: an outcome batch may then be stored though it was answered
503, which a retry with the same event ids acknowledges as duplicates (safe), and a
decision may be stored that the caller never saw (it asks again and gets a new one).
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as limit:
                await self.app(scope, receive, send_wrapper)
        except TimeoutError:
            if started or not limit.expired():
                raise
            response = JSONResponse(
                {
                    "code": "request_timeout",
                    "message": f"the request was not completed within {self.seconds:g} s "
                    "(SMARTRETRY_REQUEST_TIMEOUT_SECONDS); send it again (outcomes: with the "
                    "same event ids)",
                    "field": None,
                },
                status_code=503,
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
