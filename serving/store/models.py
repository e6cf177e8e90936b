"""Tables of the store. Changing one needs a migration in ``serving/migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = 200


class Base(DeclarativeBase):
    pass


class Decision(Base):
    """One recommendation answered: the request and response as sent, for joins and export."""

    __tablename__ = "decisions"

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(ID), index=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(ID))
    propensity: Mapped[float] = mapped_column(Float)
    # each returned retry's and message's own propensity, in the response's order:
    # {"retries": [...], "messages": [...]}; null for decisions stored before 0005
    row_propensities: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fallback: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Customer(Base):
    """The customer fields requests carried; a later request's non-null values win."""

    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    signup_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sms_opt_in: Mapped[bool | None] = mapped_column(Boolean)
    plan: Mapped[str | None] = mapped_column(String(ID))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invoice(Base):
    """An invoice seen in requests; ``due_at`` is the earliest failed charge seen for it."""

    __tablename__ = "invoices"

    invoice_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(32))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    processor: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutcomeEvent(Base):
    """A reported outcome, stored once per ``event_id`` (the unique constraint is the guard)."""

    __tablename__ = "outcome_events"
    __table_args__ = (UniqueConstraint("event_id", name="uq_outcome_events_event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(ID))
    type: Mapped[str] = mapped_column(String(32))
    # a payment_method_updated event may name only the customer
    invoice_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decision_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    message_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookEvent(Base):
    """A billing system's event received on a webhook, stored once per (source, event_id):
    the guard against replays and duplicates, and the record of card updates and of Lago
    invoices (whose failure event lacks the amount)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_webhook_events_source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(ID))
    event_type: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """An API key made by ``smartretry keys create``: only its SHA-256 digest is kept. The
    ``key_id`` is the non-secret part of the key (``srk_<key_id>_<secret>``), so a key can be
    named in logs and revoked without its secret."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(80))
    scopes: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
