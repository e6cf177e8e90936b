"""Outcome events of type ``payment_method_updated``: a customer's card or bank details
changed. Such an event names a customer, an invoice or both, so ``invoice_id`` becomes
optional and ``customer_id`` is added (indexed: recommendations look updates up by it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcome_events") as batch:
        batch.alter_column("invoice_id", existing_type=sa.String(200), nullable=True)
        batch.add_column(sa.Column("customer_id", sa.String(200)))
    op.create_index("ix_outcome_events_customer_id", "outcome_events", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_outcome_events_customer_id", "outcome_events")
    op.execute("DELETE FROM outcome_events WHERE invoice_id IS NULL")
    with op.batch_alter_table("outcome_events") as batch:
        batch.drop_column("customer_id")
        batch.alter_column("invoice_id", existing_type=sa.String(200), nullable=False)
