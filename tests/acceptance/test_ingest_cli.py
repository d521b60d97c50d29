"""The ingest side of the CLI as a user types it: dry runs, filters, reports, retry.

None of these commands needs S3: the endpoint points at a closed port, so any
S3 call would fail the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyarrow import parquet as pq

from engine.domain.codes import INVALID_ROW
from engine.domain.models import Destination, JobStatus, TaskResult, TaskStatus
from engine.domain.spec import CopyOptions, JobSpec
from engine.manifest.sources import Source
from engine.store import Repository
from engine.usecases.report import write_report
from engine.usecases.submit import submit, submit_source
from tests.acceptance.conftest import REPO_ROOT, Cli
from tests.helpers import encode, write_manifest

pytestmark = pytest.mark.acceptance

GiB = 1024**3


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI runner in a fresh working directory, with no reachable S3."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"  # discard port: nothing there
    env.pop("COLUMNS", None)
    work = tmp_path / "work"
    work.mkdir()
    return Cli(work, env)


@pytest.fixture
def repo(cli: Cli) -> Iterator[Repository]:
    """The CLI's default job database, opened in this process."""
    repository = Repository(str(cli.cwd / "bulkcopy.db"))
    try:
        yield repository
    finally:
        repository.close()


def db_jobs(cli: Cli) -> list[str]:
    db = cli.cwd / "bulkcopy.db"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT id FROM jobs ORDER BY created_at")]
    finally:
        con.close()


def db_tasks(cli: Cli, job_id: str) -> list[dict[str, Any]]:
    """The tasks of ``job_id`` read straight from the sqlite file, in order
    (a NULL dst_key is the job's prefix + the source key, as stored)."""
    con = sqlite3.connect(f"file:{cli.cwd / 'bulkcopy.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        (prefix,) = con.execute(
            "SELECT dst_prefix FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        rows = [
            dict(r)
            for r in con.execute(
                "SELECT * FROM tasks WHERE job_id = ? ORDER BY id", (job_id,)
            )
        ]
    finally:
        con.close()
    for r in rows:
        if r["dst_key"] is None:
            r["dst_key"] = prefix + r["src_key"]
    return rows


def plain_csv(tmp_path: Path) -> Path:
    return write_manifest(
        tmp_path / "m.csv",
        [("src", "a", None), ("src", "b c", None), ("src", "a", None)],
    )


def parquet_inventory(tmp_path: Path) -> Path:
    """An S3 Inventory report (Parquet): 3 current objects, one of 6 GiB and one
    in GLACIER, plus an old version and a delete marker that are not copied."""
    root = tmp_path / "inv" / "src" / "daily"
    (root / "data").mkdir(parents=True)
    dated = root / "2026-02-01T01-00Z"
    dated.mkdir()
    table = pa.table(
        {
            "bucket": ["src"] * 5,
            "key": ["small", "big", "cold", "small", "gone"],
            "version_id": ["v2", "v1", "v1", "v1", "m1"],
            "is_latest": [True, True, True, False, True],
            "is_delete_marker": [False, False, False, False, True],
            "size": [10, 6 * GiB, 20, 9, None],
            "storage_class": ["STANDARD", "STANDARD", "GLACIER", "STANDARD", None],
        },
        schema=pa.schema(
            [
                ("bucket", pa.string()),
                ("key", pa.string()),
                ("version_id", pa.string()),
                ("is_latest", pa.bool_()),
                ("is_delete_marker", pa.bool_()),
                ("size", pa.int64()),
                ("storage_class", pa.string()),
            ]
        ),
    )
    data = root / "data" / "part-0.parquet"
    pq.write_table(table, str(data))
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "fileFormat": "Parquet",
        "fileSchema": "message s3.inventory { required binary bucket (UTF8); "
        "required binary key (UTF8); optional binary version_id (UTF8); "
        "optional boolean is_latest; optional boolean is_delete_marker; "
        "optional int64 size; optional binary storage_class (UTF8); }",
        "files": [
            {
                "key": "src/daily/data/part-0.parquet",
                "size": data.stat().st_size,
                "MD5checksum": hashlib.md5(data.read_bytes()).hexdigest(),
            }
        ],
    }
    path = dated / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def finish_tasks(repo: Repository, job_id: str, outcome: dict[str, TaskStatus]) -> None:
    """Claim every pending task and record ``outcome[key]`` for it."""
    claimed = repo.claim(job_id, "w1", limit=1000, lease_until=2e9)
    results = []
    for t in claimed:
        status = outcome[t.src.key]
        failed = status is TaskStatus.FAILED
        results.append(
            TaskResult(
                t.id,
                status,
                attempts=1,
                started_at=10.0,
                finished_at=11.0,
                error_code="NoSuchKey" if failed else None,
                error_message="gone" if failed else None,
                http_status=404 if failed else 200,
            )
        )
    assert repo.record("w1", results) == len(claimed)


# -- --dry-run --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["submit", "copy"])
def test_dry_run_of_a_csv_prints_counts_and_creates_no_database(
    cli: Cli, tmp_path: Path, command: str
) -> None:
    """`submit/copy --dry-run` reads a CSV and prints what a job would hold; no db."""
    manifest = plain_csv(tmp_path)
    res = cli(command, str(manifest), "--to", "s3://dst/p", "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "nothing written" in out
    assert "rows       3 read, 0 left out by filters, 0 malformed" in out
    assert "objects    3" in out  # duplicates are counted in a dry run
    assert "bytes      unknown" in out
    assert "multipart  0 objects above the threshold, 0 parts" in out
    assert "requests   ~6 S3 requests" in out
    assert not (cli.cwd / "bulkcopy.db").exists()


def test_dry_run_of_an_inventory_prints_bytes_multipart_and_requests(
    cli: Cli, tmp_path: Path
) -> None:
    """An inventory gives sizes: bytes, multipart copies and parts are counted."""
    manifest = parquet_inventory(tmp_path)
    res = cli("submit", str(manifest), "--to", "s3://dst", "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "S3 Inventory report" in out
    assert "objects    3" in out
    assert f"({6 * GiB + 30:,})" in out
    assert "multipart  1 object above the threshold, 48 parts" in out
    assert "archived   1 object in archive tiers" in out
    # HEAD+Copy for two objects; HEAD, Create, 48 parts, Complete, tags for one
    assert "requests   ~56 S3 requests" in out
    assert not (cli.cwd / "bulkcopy.db").exists()


def test_dry_run_adds_no_job_to_an_existing_database(cli: Cli, tmp_path: Path) -> None:
    """With a job database present, a dry run leaves its jobs as they were."""
    manifest = plain_csv(tmp_path)
    sub = cli("submit", str(manifest), "--to", "s3://dst")
    assert sub.returncode == 0, sub.stderr
    before = db_jobs(cli)
    assert before == [sub.stdout.strip()]
    inventory = parquet_inventory(tmp_path)
    for path in (manifest, inventory):
        res = cli("submit", str(path), "--to", "s3://dst", "--dry-run")
        assert res.returncode == 0, res.stderr
    assert db_jobs(cli) == before


def test_dry_run_json_prints_one_object(cli: Cli, tmp_path: Path) -> None:
    """`--dry-run --log-format json`: stdout is one JSON object with every count."""
    manifest = parquet_inventory(tmp_path)
    res = cli(
        "submit",
        str(manifest),
        "--to",
        "s3://dst/p",
        "--dry-run",
        "--log-format",
        "json",
        "--min-size",
        "15",
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["destination"] == "s3://dst/p"
    assert data["source"]["kind"] == "inventory"
    assert data["source"]["filters"] == {"min_size": 15}
    assert {k: data[k] for k in ("rows", "filtered", "objects", "bytes")} == {
        "rows": 3,
        "filtered": 1,
        "objects": 2,
        "bytes": 6 * GiB + 20,
    }
    assert (data["multipart"], data["parts"], data["requests"]) == (1, 48, 54)
    assert data["by_storage_class"] == {"GLACIER": 1, "STANDARD": 1}
    assert not (cli.cwd / "bulkcopy.db").exists()


# -- usage errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--min-size", "1KiB"),
        ("--modified-before", "2026-01-01T00:00:00Z"),
        ("--source-storage-class", "GLACIER"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["submit", "dry-run"])
def test_filter_the_csv_cannot_serve_exits_2_naming_the_option(
    cli: Cli, tmp_path: Path, option: str, value: str, dry_run: bool
) -> None:
    """A size/date/class filter on a plain CSV: exit 2, the option named, no job."""
    manifest = plain_csv(tmp_path)
    args = ["submit", str(manifest), "--to", "s3://dst", option, value]
    res = cli(*args, *(["--dry-run"] if dry_run else []))
    assert res.returncode == 2, res.stderr
    assert f"bulkcopy: error: {option} needs the" in res.stderr
    assert str(manifest) in res.stderr
    assert "Traceback" not in res.stderr
    assert db_jobs(cli) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["MANIFEST", "--delete-markers", "--to", "s3://dst"],
            "--delete-markers needs --all-versions",
            id="delete-markers-alone",
        ),
        pytest.param(
            ["MANIFEST", "--from", "s3://src/p", "--to", "s3://dst"],
            "give either a MANIFEST or --from",
            id="manifest-and-from",
        ),
        pytest.param(
            ["--to", "s3://dst"],
            "give either a MANIFEST or --from",
            id="neither",
        ),
        pytest.param(
            ["MANIFEST", "--all-versions", "--to", "s3://dst"],
            "--all-versions needs an S3 Inventory report or a listing",
            id="all-versions-of-a-csv",
        ),
        pytest.param(
            ["MANIFEST", "--only-status", "failed", "--to", "s3://dst"],
            "--only-status applies to a completion report",
            id="only-status-of-a-csv",
        ),
    ],
)
def test_contradictory_sources_exit_2(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    """Options that cannot go together: exit 2, one message, no traceback, no job."""
    manifest = str(plain_csv(tmp_path))
    argv = [manifest if a == "MANIFEST" else a for a in args]
    res = cli("submit", *argv)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert db_jobs(cli) == []


# -- completion reports and retry ----------------------------------------------------

REPORT_KEYS = ["ok.txt", "gone 1.txt", "a+b/c%d.txt", "unicode/é.txt", "fine"]
REPORT_FAILED = {"gone 1.txt", "a+b/c%d.txt", "unicode/é.txt"}


@pytest.fixture
def report_dir(cli: Cli, repo: Repository, tmp_path: Path) -> tuple[str, Path]:
    """A job over awkward keys (one version pinned) where three copies failed,
    and its completion report written by engine/usecases/report.py."""
    rows: list[tuple[str, str, str | None]] = [
        ("src", k, "v1" if k == "fine" else None) for k in REPORT_KEYS
    ]
    manifest = tmp_path / "old.csv"
    manifest.write_text(
        "bucket,key,version_id\n"
        + "".join(f"{b},{encode(k)},{v or ''}\n" for b, k, v in rows)
    )
    job = submit(repo, str(manifest), Destination("old-dst"), JobSpec())
    outcome = {
        k: TaskStatus.FAILED if k in REPORT_FAILED else TaskStatus.SUCCEEDED
        for k in REPORT_KEYS
    }
    finish_tasks(repo, job.id, outcome)
    return job.id, write_report(repo, job.id, cli.cwd / "reports").directory


def test_report_of_failures_round_trips_into_a_new_job(
    cli: Cli, report_dir: tuple[str, Path]
) -> None:
    """`submit REPORT_DIR --only-status failed` makes a job of exactly the failures."""
    old_id, directory = report_dir
    res = cli(
        "submit", str(directory), "--only-status", "failed", "--to", "s3://dst/again"
    )
    assert res.returncode == 0, res.stderr
    new_id = res.stdout.strip()
    assert new_id != old_id
    got = db_tasks(cli, new_id)
    assert sorted((t["src_bucket"], t["src_key"], t["src_version"]) for t in got) == (
        sorted(("src", k, "") for k in REPORT_FAILED)
    )
    assert sorted(t["dst_key"] for t in got) == sorted(
        f"again/{k}" for k in REPORT_FAILED
    )
    assert {t["status"] for t in got} == {"pending"}


def test_report_without_only_status_takes_every_row(
    cli: Cli, report_dir: tuple[str, Path]
) -> None:
    """A whole report as MANIFEST re-copies every object it lists, versions kept."""
    _, directory = report_dir
    res = cli("submit", str(directory / "manifest.json"), "--to", "s3://dst")
    assert res.returncode == 0, res.stderr
    got = db_tasks(cli, res.stdout.strip())
    assert sorted((t["src_bucket"], t["src_key"], t["src_version"]) for t in got) == (
        sorted(("src", k, "v1" if k == "fine" else "") for k in REPORT_KEYS)
    )


def test_size_filter_on_a_report_exits_2_naming_the_option(
    cli: Cli, report_dir: tuple[str, Path]
) -> None:
    """A completion report gives no sizes: --min-size on it is refused."""
    _, directory = report_dir
    res = cli(
        "submit",
        str(directory),
        "--only-status",
        "failed",
        "--min-size",
        "1",
        "--to",
        "s3://dst",
    )
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "--min-size needs the size" in res.stderr


@pytest.fixture
def retried_job(cli: Cli, repo: Repository, tmp_path: Path) -> str:
    """A finished job with per-object overrides, a malformed manifest row (a
    failed InvalidManifestRow task), failed, skipped and succeeded copies."""
    manifest = tmp_path / "old.csv"
    manifest.write_text(
        "bucket,key,version_id,dst_key,storage_class\n"
        "src,ok.txt,,,\n"
        "src,b+c.txt,,renamed/b%2Bc.txt,\n"
        "src,d.txt,,,STANDARD_IA\n"
        "src,,,,\n"
        "src,plain.txt,,,\n"
        "src,cold.txt,,,\n"
    )
    spec = JobSpec(copy=CopyOptions(stat_source=False, preserve_tags=False))
    job = submit(repo, str(manifest), Destination("dst", "p"), spec, skip_invalid=True)
    assert job.invalid_rows == 1
    finish_tasks(
        repo,
        job.id,
        {
            "ok.txt": TaskStatus.SUCCEEDED,
            "b c.txt": TaskStatus.FAILED,
            "d.txt": TaskStatus.FAILED,
            "plain.txt": TaskStatus.FAILED,
            "cold.txt": TaskStatus.SKIPPED,
        },
    )
    return job.id


def test_retry_makes_a_job_of_the_failed_copies_with_their_overrides(
    cli: Cli, retried_job: str
) -> None:
    """`retry` takes failed copies (not malformed rows), same keys and options."""
    res = cli("retry", retried_job)
    assert res.returncode == 0, res.stderr
    new_id = res.stdout.strip()
    assert new_id
    assert new_id != retried_job
    old = {t["src_key"]: t for t in db_tasks(cli, retried_job)}
    assert old[""]["error_code"] == INVALID_ROW

    got = db_tasks(cli, new_id)
    assert [(t["src_key"], t["dst_key"], t["status"]) for t in got] == [
        ("b c.txt", "renamed/b+c.txt", "pending"),
        ("d.txt", "p/d.txt", "pending"),
        ("plain.txt", "p/plain.txt", "pending"),
    ]
    for t in got:
        assert t["overrides"] == old[t["src_key"]]["overrides"]
        assert t["error_code"] is None
    assert json.loads(got[1]["overrides"]) == {"storage_class": "STANDARD_IA"}

    status = json.loads(cli("status", new_id, "--json").stdout)
    assert status["counts"]["pending"] == 3

    con = sqlite3.connect(f"file:{cli.cwd / 'bulkcopy.db'}?mode=ro", uri=True)
    try:
        specs = dict(con.execute("SELECT id, spec FROM jobs").fetchall())
        buckets = dict(con.execute("SELECT id, dst_bucket FROM jobs").fetchall())
    finally:
        con.close()
    new_spec, old_spec = json.loads(specs[new_id]), json.loads(specs[retried_job])
    assert new_spec["copy"] == old_spec["copy"]
    assert new_spec["copy"]["stat_source"] is False
    assert buckets[new_id] == "dst"


def test_retry_skipped_adds_the_skipped_tasks(cli: Cli, retried_job: str) -> None:
    """`retry --skipped` also takes skipped tasks; `--no-failed` only those."""
    both = cli("retry", retried_job, "--skipped")
    assert both.returncode == 0, both.stderr
    keys = [t["src_key"] for t in db_tasks(cli, both.stdout.strip())]
    assert keys == ["b c.txt", "d.txt", "plain.txt", "cold.txt"]

    only = cli("retry", retried_job, "--skipped", "--no-failed")
    assert only.returncode == 0, only.stderr
    assert [t["src_key"] for t in db_tasks(cli, only.stdout.strip())] == ["cold.txt"]


def test_retry_of_nothing_and_of_an_unknown_job_exit_2(
    cli: Cli, retried_job: str
) -> None:
    """`retry --no-failed` without --skipped, or of an unknown job: exit 2."""
    before = db_jobs(cli)
    res = cli("retry", retried_job, "--no-failed")
    assert res.returncode == 2
    assert "nothing to retry" in res.stderr
    res = cli("retry", "nope")
    assert res.returncode == 2
    assert "no job 'nope'" in res.stderr
    assert "Traceback" not in res.stderr
    assert db_jobs(cli) == before


# -- an interrupted ingest finished by `run` ---------------------------------------


class Stop(Exception):
    pass


def interrupted_ingest(
    repo: Repository, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Submit ``manifest`` in this process, stopped after its first batch of 3."""
    monkeypatch.setattr("engine.manifest.csv.BATCH_ROWS", 3)

    def stop(_rows: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        asyncio.run(
            submit_source(
                repo,
                Source("csv", str(manifest)),
                Destination("dst", "p"),
                JobSpec(),
                on_batch=stop,
            )
        )
    (job,) = repo.list_jobs()
    assert job.status is JobStatus.INGESTING
    return job.id


def test_status_of_an_interrupted_ingest_shows_the_rows_read(
    cli: Cli, repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` of a job whose submit was stopped says it is ingesting."""
    manifest = write_manifest(
        tmp_path / "m.csv", [("src", f"k{i}", None) for i in range(10)]
    )
    job_id = interrupted_ingest(repo, manifest, monkeypatch)
    res = cli("status", job_id, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["status"] == "ingesting"
    assert data["counts"]["pending"] == 3


def test_run_of_an_ingesting_job_whose_manifest_is_gone_exits_2(
    cli: Cli, repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` cannot finish reading a manifest that was removed: exit 2, one line."""
    manifest = write_manifest(
        tmp_path / "m.csv", [("src", f"k{i}", None) for i in range(10)]
    )
    job_id = interrupted_ingest(repo, manifest, monkeypatch)
    manifest.unlink()
    res = cli("run", job_id)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2
    assert f"{manifest}: no such file" in res.stderr
