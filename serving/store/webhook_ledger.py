"""The webhook ledger: one row per billing-system event, claimed before it is acted on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.db import read_connection, write_lock
from serving.store.models import WebhookEvent


def claim_event(
    engine: Engine,
    source: str,
    event_id: str,
    event_type: str,
    kind: str,
    object_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Store the event once; False when (source, event_id) is already there (a replay or
    a duplicate delivery)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(WebhookEvent)
        .values(
            source=source,
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            object_id=object_id,
            detail=detail,
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(WebhookEvent.id)
    )
    with write_lock(engine), engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def release_event(engine: Engine, source: str, event_id: str) -> None:
    """Forget a claimed event whose processing failed, so the sender's retry is handled."""
    with write_lock(engine), engine.begin() as conn:
        conn.execute(
            delete(WebhookEvent).where(
                WebhookEvent.source == source, WebhookEvent.event_id == event_id
            )
        )


def latest_detail(engine: Engine, source: str, object_id: str) -> dict[str, Any] | None:
    """The newest stored detail (e.g. a Lago invoice object) for this object id."""
    with read_connection(engine) as conn:
        row = conn.execute(
            select(WebhookEvent.detail)
            .where(
                WebhookEvent.source == source,
                WebhookEvent.object_id == object_id,
                WebhookEvent.detail.is_not(None),
            )
            .order_by(WebhookEvent.id.desc())
            .limit(1)
        ).first()
    return row[0] if row is not None else None
