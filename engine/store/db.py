"""Open the job database: URL handling, SQLite pragmas, schema migration on open."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.domain.errors import DatabaseError, SchemaTooNew

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_DB = "bulkcopy.db"
# the newest migration (migrations/versions): a database already there is
# opened without loading Alembic (a tenth of a second at every start);
# tests/unit/test_migrations.py fails when a new migration leaves this behind
HEAD_REVISION = "0007"


def normalize_url(url: str | None) -> str:
    """Turn ``--db`` / ``BULKCOPY_DB`` into an SQLAlchemy URL.

    A plain path means an SQLite file; ``None`` means ``bulkcopy.db`` in the
    working directory.
    """
    url = url or os.environ.get("BULKCOPY_DB") or DEFAULT_DB
    if "://" not in url:
        return f"sqlite:///{url}"
    scheme, rest = url.split("://", 1)
    if scheme in (
        "postgresql",
        "postgres",
        "postgresql+asyncpg",
        "postgresql+psycopg2",
    ):
        # psycopg 3 is the driver we ship (the repository is synchronous: an
        # asyncpg or psycopg2 URL names the same server and database)
        return "postgresql+psycopg://" + rest
    return url


def redact(url: str) -> str:
    """The URL with its password hidden, fit for logs and messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA threads=2")  # sorts (merging duplicate rows) on two cores
    cur.close()


def migrations_dir() -> Path:
    import migrations

    return Path(migrations.__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def create(url: str | None = None) -> Engine:
    """Create the engine for ``url`` and bring its schema to this version's head."""
    full = normalize_url(url)
    options: dict[str, Any] = {}
    if not full.startswith("sqlite"):
        # a server restart leaves dead connections in the pool: test each one
        # before use (the repository retries the call that found one dead)
        options = {"pool_pre_ping": True, "pool_size": 4, "max_overflow": 4}
    try:
        engine = sa.create_engine(full, future=True, **options)
    except Exception as exc:
        raise DatabaseError(f"cannot use database {redact(full)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def _revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None``: no schema yet)."""
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar()
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise DatabaseError(
            f"cannot open database {redact(str(engine.url))}: {detail}"
        ) from exc


def upgrade(engine: Engine) -> None:
    """Migrate to head; refuse a schema written by a newer bulkcopy."""
    current = _revision(engine)
    if current == HEAD_REVISION:
        return
    if current is None and engine.dialect.name == "sqlite" and _empty(engine):
        _create_at_head(engine)
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    cfg = alembic_config(engine)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    if current == head:
        return
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError:
            raise SchemaTooNew(
                f"database {redact(str(engine.url))} has schema revision "
                f"{current!r}, newer than this bulkcopy knows (head {head!r}); "
                "upgrade bulkcopy to use it"
            ) from None
    try:
        command.upgrade(cfg, "head")
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"cannot migrate database: {exc}") from exc


def _empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not sa.inspect(conn).get_table_names()


def _create_at_head(engine: Engine) -> None:
    """A new SQLite file: the models' schema created at once and stamped at
    head, as the migrations would build it (tests/unit/test_repo.py compares
    the two) without loading Alembic and running seven migrations (half a
    second of every `bulkcopy copy` into a new database).  One transaction
    that waits for any other writer; a second process creating the same
    file at the same time finds everything there and adds nothing."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    from engine.store.tables import metadata

    dialect = engine.dialect
    ordered = metadata.sorted_tables
    ddl = [
        str(CreateTable(t, if_not_exists=True).compile(dialect=dialect))
        for t in ordered
    ]
    ddl += [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
        for t in ordered
        for index in sorted(t.indexes, key=lambda i: str(i.name))
    ]
    ddl += [
        "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) "
        "NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        f"INSERT INTO alembic_version (version_num) SELECT '{HEAD_REVISION}' "
        "WHERE NOT EXISTS (SELECT 1 FROM alembic_version)",
    ]
    raw = engine.raw_connection()
    try:
        script = ";\n".join(["BEGIN IMMEDIATE", *ddl, "COMMIT"])
        raw.driver_connection.executescript(script)  # type: ignore[union-attr]
    except Exception as exc:
        raise DatabaseError(
            f"cannot create database {redact(str(engine.url))}: {exc}"
        ) from exc
    finally:
        raw.close()
