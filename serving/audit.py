"""Audit log of API-key use: one record per ``/v1`` request on the ``smartretry.audit``
logger with the key id (never the key), method, route template and status.

Requests without a valid key are logged with key ``-``. The route template is logged, not
the raw path, and nothing of the body or the query: they may carry personal data.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

audit_logger = logging.getLogger("smartretry.audit")


def audit_request(scope: Scope, status: int) -> None:
    """The audit record of one answered request (``/v1`` routes with a key only);
    :class:`serving.app.MetricsMiddleware` calls it with the status it already captures."""
    path = scope["path"]
    if not path.startswith("/v1/") or path.startswith("/v1/webhooks/"):  # webhooks: no key
        return
    audit_logger.info(
        "api key %s %s %s -> %d",
        scope.get("state", {}).get("key_id", "-"),
        scope["method"],
        getattr(scope.get("route"), "path", "unmatched"),
        status,
    )
