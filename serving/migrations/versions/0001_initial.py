"""Initial store: decisions, customers, invoices, outcome events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_decisions_invoice_id", "decisions", ["invoice_id"])
    op.create_index("ix_decisions_customer_id", "decisions", ["customer_id"])
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("country", sa.String(2)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("signup_at", TS),
        sa.Column("sms_opt_in", sa.Boolean()),
        sa.Column("plan", sa.String(200)),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_method", sa.String(32), nullable=False),
        sa.Column("card_brand", sa.String(32)),
        sa.Column("processor", sa.String(32), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_invoices_customer_id", "invoices", ["customer_id"])
    op.create_table(
        "outcome_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("decision_id", sa.String(200)),
        sa.Column("message_id", sa.String(200)),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", name="uq_outcome_events_event_id"),
    )
    op.create_index("ix_outcome_events_invoice_id", "outcome_events", ["invoice_id"])
    op.create_index("ix_outcome_events_decision_id", "outcome_events", ["decision_id"])
    op.create_index("ix_outcome_events_message_id", "outcome_events", ["message_id"])


def downgrade() -> None:
    op.drop_table("outcome_events")
    op.drop_table("invoices")
    op.drop_table("customers")
    op.drop_table("decisions")
