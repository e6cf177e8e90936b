"""The API contract's documented defaults for what a recommendation request leaves out.

``constraints`` missing (or a field of it): at most 4 retries and 3 messages within 14
days, on email and SMS. ``customer`` missing, and not known to the service: the
cold-start customer (UTC, no SMS without consent, country and signup unknown). The
training features use the same constraint defaults for invoices of a history.
"""

from __future__ import annotations

from typing import Any

DEFAULT_CONSTRAINTS: dict[str, Any] = {
    "max_retries": 4,
    "window_days": 14,
    "max_messages": 3,
    "channels": ("email", "sms"),
}
COLD_START_CUSTOMER: dict[str, Any] = {
    "country": None,
    "timezone": "UTC",
    "signup_at": None,
    "sms_opt_in": False,
    "plan": None,
}
