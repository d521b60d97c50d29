"""Database URLs never show their password: not in logs, not in errors."""

from __future__ import annotations

import subprocess
import sys

from engine.store import db


def test_redact_hides_the_password() -> None:
    shown = db.redact("postgresql+psycopg://mover:s3cretpw@db.internal:5432/jobs")
    assert "s3cretpw" not in shown
    assert shown == "postgresql+psycopg://mover:***@db.internal:5432/jobs"


def test_a_database_that_cannot_be_opened_is_named_without_its_password() -> None:
    """The error a user sees (exit 3) names the database with the password hidden."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "jobs",
            "--db",
            "mysql://u:s3cretpw@127.0.0.1:1/x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3
    assert "mysql://u:***@127.0.0.1:1/x" in run.stderr
    assert "s3cretpw" not in run.stdout + run.stderr
