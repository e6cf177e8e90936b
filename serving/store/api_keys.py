"""API keys in the store: made, listed and revoked by ``smartretry keys``, read by the server.

A key is ``srk_<key id>_<secret>``: the key id (8 hex digits) names the key in logs and
in ``keys list``/``keys revoke``; the secret is 32 random bytes (:func:`secrets.token_urlsafe`).
Only the SHA-256 digest of the whole key is stored: for a random 256-bit token a plain
SHA-256 is the standard choice (a slow password hash protects guessable secrets, and there
is nothing to guess here), and it lets the server check a key with one hash.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from serving.settings import hash_key
from serving.store.db import read_connection, write_lock
from serving.store.models import ApiKey

SCOPES = ("recommend", "outcomes", "admin")
"""``recommend``: /v1/recommendations (and batch); ``outcomes``: /v1/outcomes; ``admin``:
/v1/admin/* (reload). Every valid key may read /v1/model."""
KEY_PREFIX = "srk_"


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    digest: str
    scopes: frozenset[str]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def parse_scopes(value: str | Iterable[str]) -> frozenset[str]:
    """Scopes from ``"recommend,outcomes"`` or a list; ValueError naming an unknown one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = frozenset(s.strip() for s in items if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"at least one scope is required ({', '.join(SCOPES)})")
    return scopes


def key_id_of(key: str) -> str | None:
    """The key id of a ``srk_<id>_<secret>`` key, None for any other form."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
    return key_id if key_id and secret else None


def create_key(
    engine: Engine, scopes: frozenset[str], name: str | None = None
) -> tuple[str, StoredKey]:
    """A new key: returns the key itself (shown once, never stored) and its stored row."""
    for _ in range(5):  # a clash of 32-bit ids is rare; try a fresh one
        key_id = secrets.token_hex(4)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = StoredKey(key_id, hash_key(key), frozenset(scopes), name, datetime.now(UTC), None)
        try:
            with write_lock(engine), engine.begin() as conn:
                conn.execute(
                    insert(ApiKey).values(
                        key_id=row.key_id,
                        digest=row.digest,
                        scopes=",".join(sorted(row.scopes)),
                        name=name,
                        created_at=row.created_at,
                        revoked_at=None,
                    )
                )
        except IntegrityError:
            continue
        return key, row
    raise RuntimeError("could not find a free key id")


def list_keys(engine: Engine, *, include_revoked: bool = True) -> list[StoredKey]:
    query = select(ApiKey.__table__).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with read_connection(engine) as conn:
        return [
            StoredKey(
                row["key_id"],
                row["digest"],
                frozenset(row["scopes"].split(",")),
                row["name"],
                row["created_at"],
                row["revoked_at"],
            )
            for row in conn.execute(query).mappings()
        ]


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke a key by id; False when no active key has that id."""
    with write_lock(engine), engine.begin() as conn:
        result = conn.execute(
            update(ApiKey)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)
