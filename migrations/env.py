"""Alembic environment: runs on the engine bulkcopy hands over, batch mode on SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from engine.store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic upgrade head` from the command line
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from engine.store.db import normalize_url

        url = normalize_url(None)
    engine = create_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
