"""Multipart copies: method and part count per task, uploads and their parts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("method", sa.String(16), nullable=True))
        batch.add_column(sa.Column("part_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("upload_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("src_etag", sa.Text(), nullable=True))
        batch.add_column(sa.Column("part_size", sa.BigInteger(), nullable=True))
    op.create_table(
        "parts",
        sa.Column("task_id", Id, nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name="fk_parts_task_id_tasks", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "part_number", name="pk_parts"),
    )


def downgrade() -> None:
    op.drop_table("parts")
    with op.batch_alter_table("tasks") as batch:
        for col in ("part_size", "src_etag", "upload_id", "part_count", "method"):
            batch.drop_column(col)
