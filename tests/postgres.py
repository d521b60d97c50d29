"""A real PostgreSQL server for tests: the one this machine runs, or a
throwaway cluster started from the server binaries in a temp dir.

Where to look, in order:

1. ``BULKCOPY_TEST_PG`` (a libpq URL such as ``postgresql://u@host:5432/db``);
2. a server at 127.0.0.1:5432 with trust auth and a database ``test``;
3. ``initdb`` + ``pg_ctl`` from ``PATH`` or ``/usr/lib/postgresql/*/bin`` on a
   free port (run as the ``postgres`` user when the tests run as root, since
   PostgreSQL refuses to run as root).

If none of these works the fixture fails loudly: the suite never skips the
PostgreSQL tests silently.  Each test gets its own database, dropped after.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.servers import free_port

LOCAL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class PostgresServer:
    """A server we may create databases on (``admin_url`` names one to connect to)."""

    admin_url: str
    # set for a throwaway cluster we started (and stop at the end)
    data_dir: Path | None = None
    pg_ctl: list[str] = field(default_factory=list)

    def url_for(self, name: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def sqlalchemy_url(self, name: str) -> str:
        return "postgresql+psycopg://" + self.url_for(name).split("://", 1)[1]

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database; yields its SQLAlchemy URL."""
        name = f"bulkcopy_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.sqlalchemy_url(name)
        finally:
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_connections(self, url: str) -> int:
        """Kill every backend connected to the database of ``url`` (as a
        server restart or an admin's ``pg_terminate_backend`` would)."""
        name = url.rpartition("/")[2].split("?")[0]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return len(rows)

    def stop(self) -> None:
        if self.data_dir is None:
            return
        subprocess.run(
            [*self.pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _server_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"no PostgreSQL at 127.0.0.1:5432 and no {name} to start one: "
            "install PostgreSQL's server package or set BULKCOPY_TEST_PG"
        )
    return candidates[-1]


def _as_postgres() -> list[str]:
    """Prefix a command so it runs as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def start_cluster() -> PostgresServer:
    """initdb + pg_ctl start a cluster in a temp dir on a free port."""
    initdb, pg_ctl = _server_bin("initdb"), _server_bin("pg_ctl")
    prefix = _as_postgres()
    data = Path(tempfile.mkdtemp(prefix="bulkcopy-pg-"))
    if prefix:
        shutil.chown(data, "postgres")
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "start",
            "-D",
            str(data),
            "-w",
            "-l",
            str(data / "server.log"),
            "-o",
            f"-p {port} -k {data} -h 127.0.0.1 -F",
        ],
        check=True,
        capture_output=True,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while not _reachable(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"throwaway PostgreSQL in {data} did not start")
        time.sleep(0.2)
    return PostgresServer(url, data, [*prefix, pg_ctl])


def find_or_start() -> PostgresServer:
    given = os.environ.get("BULKCOPY_TEST_PG")
    if given:
        if not _reachable(given):
            raise RuntimeError(f"BULKCOPY_TEST_PG={given} is not reachable")
        return PostgresServer(given)
    if os.environ.get("BULKCOPY_TEST_PG_THROWAWAY") != "1" and _reachable(LOCAL):
        return PostgresServer(LOCAL)
    return start_cluster()
