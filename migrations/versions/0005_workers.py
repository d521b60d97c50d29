"""Many workers on one job: what each worker has done, and what it is doing.

workers: ``tasks_done`` / ``bytes_done`` (results it recorded, added in the
same commit as the results) and ``state`` (``copying``, ``paused``,
``waiting`` for other workers' tasks, ``stopped``), so ``bulkcopy status``
can show per-worker throughput and which workers are live.  Job states
``paused`` and ``cancelled`` need no schema change (``jobs.status`` is text).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(
            sa.Column("tasks_done", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("bytes_done", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("state", sa.String(16), nullable=True))
    op.create_index("ix_workers_job_id", "workers", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_workers_job_id", table_name="workers")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("state")
        batch.drop_column("bytes_done")
        batch.drop_column("tasks_done")
