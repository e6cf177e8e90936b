"""Webhook events: one row per billing-system event received (replay guard).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(200)),
        sa.Column("detail", sa.JSON()),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "event_id", name="uq_webhook_events_source_id"),
    )
    op.create_index("ix_webhook_events_object_id", "webhook_events", ["object_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_object_id", "webhook_events")
    op.drop_table("webhook_events")
