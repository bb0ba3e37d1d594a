"""outbox: partial indexes over pending rows (claims, in-flight checks, wake-ups read a batch, not the backlog)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PARTIAL = {
    "ix_outbox_pending": (["connector", "entity", "created_at", "id"], "status = 'pending'"),
    "ix_outbox_in_flight": (["connector", "entity", "claimed_until"], "status = 'pending' AND claimed_until IS NOT NULL"),
    "ix_outbox_waiting": (["connector", "last_error"], "status = 'pending' AND last_error IS NOT NULL"),
}


def upgrade() -> None:
    for name, (columns, where) in PARTIAL.items():
        op.create_index(name, "outbox", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade() -> None:
    for name in PARTIAL:
        op.drop_index(name, table_name="outbox")
