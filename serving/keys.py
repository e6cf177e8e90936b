"""Which key is presented: the configured keys (``SMARTRETRY_API_KEYS``, the hashed-key
file; every scope) and the store's keys (``smartretry keys``), cached for a short time.

The store's active keys are read again when the cache is older than
``SMARTRETRY_API_KEY_CACHE_SECONDS`` (5 s by default): a key created or revoked with
``smartretry keys`` is seen by a running server within that time, no restart. When the
store cannot be read, the last keys read stay in use (the API keeps answering through a
store outage) and the failure is logged.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from serving.settings import hash_key
from serving.store.api_keys import SCOPES, key_id_of, list_keys

logger = logging.getLogger(__name__)
ALL_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated key: its id (safe to log) and its scopes."""

    key_id: str
    scopes: frozenset[str]


def configured_key_id(digest: str) -> str:
    """The name of a configured key in logs: ``cfg-`` and 8 hex digits of its digest."""
    return "cfg-" + digest.removeprefix("sha256:")[:8]


class KeyRegistry:
    """Finds the :class:`Principal` of a presented key."""

    def __init__(self, configured: list[str], engine: Engine, cache_seconds: float) -> None:
        self.configured = list(configured)
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._stored: dict[str, tuple[str, frozenset[str]]] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the store's active keys (blocking: call it in a worker thread). One refresh
        at a time: requests arriving meanwhile go on with the keys read last instead of
        queueing behind a store that is slow to answer."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            keys = list_keys(self.engine, include_revoked=False)
            self._stored = {k.key_id: (k.digest, k.scopes) for k in keys}
        except Exception as error:  # the store is down: keep the keys read last
            logger.warning("API keys not re-read from the store: %s", type(error).__name__)
        finally:
            self._read_at = time.monotonic()  # a failure is retried after the cache time
            self._lock.release()

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= self.cache_seconds

    @property
    def count(self) -> int:
        return len(self.configured) + len(self._stored)

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or None. Every configured digest is compared (no early
        exit) with :func:`hmac.compare_digest`, so timing tells nothing about a key."""
        presented = hash_key(key).encode()
        found: str | None = None
        for digest in self.configured:
            if hmac.compare_digest(presented, digest.encode()):
                found = digest
        if found is not None:
            return Principal(configured_key_id(found), ALL_SCOPES)
        key_id = key_id_of(key)
        stored = self._stored.get(key_id) if key_id is not None else None
        if key_id is not None and stored is not None:
            digest, scopes = stored
            if hmac.compare_digest(presented, digest.encode()):
                return Principal(key_id, scopes)
        return None
