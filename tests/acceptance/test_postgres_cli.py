"""Every command on a PostgreSQL job database, as a user types them
(``--db postgresql://…`` and ``BULKCOPY_DB``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.acceptance.conftest import Cli
from tests.helpers import seed, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.acceptance


def _libpq(url: str) -> str:
    """``postgresql://…`` as a user writes it (no driver in the scheme)."""
    return "postgresql://" + url.split("://", 1)[1]


def test_every_command_works_on_postgresql(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], pg_url: str
) -> None:
    cli = cli_for(moto)
    db = _libpq(pg_url)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a.txt", "b/c.txt"])
    manifest = write_manifest(
        cli.cwd / "m.csv",
        [(src, "a.txt", None), (src, "b/c.txt", None), (src, "missing", None)],
    )

    dry = cli("submit", str(manifest), "--to", f"s3://{dst}/x/", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    copy = cli("copy", str(manifest), "--to", f"s3://{dst}/x/", "--db", db)
    assert copy.returncode == 1, copy.stderr  # "missing" fails
    (line,) = cli("jobs", "--json", "--db", db).stdout.splitlines()
    job_id = json.loads(line)["job_id"]

    status = cli("status", job_id, "--json", "--db", db)
    counts = json.loads(status.stdout)["counts"]
    assert (counts["succeeded"], counts["failed"]) == (2, 1)
    report = cli("report", job_id, "--out", "reports", "--db", db)
    assert report.returncode == 0, report.stderr
    assert "succeeded  2" in report.stdout
    verify = cli("verify", job_id, "--db", db)
    assert verify.returncode == 0, verify.stderr

    # the same database named by BULKCOPY_DB, with the asyncpg scheme
    env_db = Cli(
        cli.cwd, dict(cli.env, BULKCOPY_DB=pg_url.replace("psycopg", "asyncpg"))
    )
    retry = env_db("retry", job_id)
    assert retry.returncode == 0, retry.stderr
    new_id = retry.stdout.strip()
    seed(moto, src, ["missing"])
    run = env_db("run", new_id, "--no-progress")
    assert run.returncode == 0, run.stderr
    assert (
        json.loads(env_db("status", new_id, "--json").stdout)["counts"]["succeeded"]
        == 1
    )
    listed = moto.client().list_objects_v2(Bucket=dst, Prefix="x/")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["x/a.txt", "x/b/c.txt", "x/missing"]
    assert not (cli.cwd / "bulkcopy.db").exists()  # nothing went to SQLite


def test_two_workers_move_a_job_on_postgresql(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], pg_url: str
) -> None:
    """`bulkcopy run` twice at once on one move job (PostgreSQL): every
    source moved once, reported once, none lost."""
    cli = cli_for(moto)
    db = _libpq(pg_url)
    src, dst = moto.new_bucket(), moto.new_bucket()
    bodies = seed(moto, src, [f"k{i:03d}" for i in range(120)])
    sub = cli(
        "submit",
        "--from",
        f"s3://{src}/",
        "--to",
        f"s3://{dst}/m/",
        "--delete-source",
        "--db",
        db,
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()

    runs = [
        cli.popen("run", job_id, "--db", db, "-c", "4", "--no-progress")
        for _ in range(2)
    ]
    for proc in runs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    assert moto.client().list_objects_v2(Bucket=src).get("KeyCount") == 0
    for key, body in bodies.items():
        got = moto.client().get_object(Bucket=dst, Key=f"m/{key}")["Body"].read()
        assert got == body
    status = json.loads(cli("status", job_id, "--json", "--db", db).stdout)
    assert status["counts"]["succeeded"] == status["sources_deleted"] == 120
    assert status["tasks"] == 120
