"""Moves (``--delete-source`` / ``bulkcopy move``): what became of each source.

tasks: ``delete_state`` — NULL (a copy, or the copy failed: nothing to
delete), ``pending`` (the copy is recorded and verified-to-be, the source
delete is still to do: a resumed run goes straight to it), ``deleted``,
``gone`` (not found for its delete after a delete of ours may have gone out)
or ``kept`` (not deleted; the task's error says why) — and ``deleted_at``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("delete_state", sa.String(12), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("delete_state")
