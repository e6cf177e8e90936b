"""Audit log of API-key use: one record per ``/v1`` request on the ``smartretry.audit``
logger with the key id (never the key), method, route template and status.

Requests without a valid key are logged with key ``-``. The route template is logged, not
the raw path, and nothing of the body or the query: they may carry personal data.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

audit_logger = logging.getLogger("smartretry.audit")


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not scope["path"].startswith("/v1/webhooks/"):  # signed by senders, no key
                route = scope.get("route")
                audit_logger.info(
                    "api key %s %s %s -> %d",
                    scope.get("state", {}).get("key_id", "-"),
                    scope["method"],
                    getattr(route, "path", "unmatched"),
                    status,
                )
