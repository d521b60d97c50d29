"""Run the ``bulkcopy`` CLI as a user types it, in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import S3Server

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    cwd: Path
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine", *args]

    def __call__(
        self, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def db_rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of the job database in the working
        directory (none before it exists or has the table)."""
        db = self.cwd / "bulkcopy.db"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return list(con.execute(sql, params).fetchall())
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def db_count(self, status: str) -> int:
        """Tasks in ``status``."""
        rows = self.db_rows("SELECT count(*) FROM tasks WHERE status = ?", status)
        return int(rows[0][0]) if rows else 0

    def parts_recorded(self) -> int:
        """Parts of multipart copies recorded so far."""
        rows = self.db_rows("SELECT count(*) FROM parts")
        return int(rows[0][0]) if rows else 0

    def only_job(self) -> str:
        """The id of the one job in the database."""
        ((job_id,),) = self.db_rows("SELECT id FROM jobs")
        return str(job_id)


@pytest.fixture
def cli_for(tmp_path: Path) -> Callable[[S3Server], Cli]:
    """A CLI runner in a fresh working directory, pointed at ``server`` by env."""

    def make(server: S3Server) -> Cli:
        env = dict(os.environ)
        env["AWS_ENDPOINT_URL_S3"] = server.endpoint
        env["PYTHONPATH"] = str(REPO_ROOT)
        env.pop("COLUMNS", None)
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        return Cli(work, env)

    return make
