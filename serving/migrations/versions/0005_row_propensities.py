"""Each returned retry's and message's own propensity, stored with its decision (the
response's ``propensity`` is the whole schedule's); ``export-outcomes`` writes them on
the attempts and messages that follow. Null for decisions stored before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("row_propensities", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("row_propensities")
