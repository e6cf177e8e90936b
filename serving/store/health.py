"""Whether the store answers, as last seen by the requests and the decision writer.

A request that finds the store unreachable marks it down for ``cooldown`` seconds; in that
time the routes do not wait for it again (recommendations skip the customer lookup and
queue their decisions, outcomes answer 503 at once). A successful write or ping marks it up.
"""

from __future__ import annotations

import time

from sqlalchemy.exc import InterfaceError, OperationalError

UNREACHABLE_ERRORS = (OperationalError, InterfaceError)
"""Driver errors that mean the store cannot be reached (connection refused or lost, file
cannot be opened, locked past the busy timeout), not that it refused the data."""


class StoreHealth:
    def __init__(self, cooldown: float = 2.0) -> None:
        self.cooldown = cooldown
        self._down_at: float | None = None
        self.last_error: str | None = None

    def failed(self, error: BaseException) -> None:
        self._down_at = time.monotonic()
        self.last_error = type(error).__name__

    def succeeded(self) -> None:
        self._down_at = None
        self.last_error = None

    @property
    def down(self) -> bool:
        """The store failed within the last ``cooldown`` seconds (and nothing worked since)."""
        return self._down_at is not None and time.monotonic() - self._down_at < self.cooldown

    @property
    def reachable_as_last_seen(self) -> bool:
        """False from a failure until the next success (for /healthz, which never waits)."""
        return self._down_at is None
