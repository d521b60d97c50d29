"""Many ``bulkcopy worker`` processes on one job, run as users run them.

Every test here drives the real CLI (``python -m engine ...``) in subprocesses
against ``bench/fakes3.py`` (a fast fake S3 endpoint in a process of its own,
counting each CopyObject per destination key) and runs on both job-database
backends through the ``db_url`` fixture: an SQLite file shared by several
processes of one host, and a fresh PostgreSQL database.  The PostgreSQL-only
tests drop the workers' connections (``pg_terminate_backend``) and restart a
throwaway cluster mid-job.

What they hold the engine to:

* several workers on one job claim disjoint tasks: each object is copied
  exactly once, none is lost, each worker does a share;
* a worker killed with ``kill -9`` leaves its tasks to the survivor (at once
  when its pid is known dead on this host; once its lease runs out when its
  host is lost), and the job completes with each object reported once;
* ``pause`` / ``resume`` / ``cancel`` reach every worker: nothing is copied
  while paused, a cancelled job leaves its unstarted tasks pending for
  ``retry --pending``;
* a lost database connection (terminated backends, a server restart) is
  ridden out: the workers reconnect and finish;
* a worker without ``--job`` takes jobs by priority.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.store.db import normalize_url
from tests.postgres import PostgresServer, start_cluster

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKES3 = REPO_ROOT / "bench" / "fakes3.py"
WAIT = 60.0  # seconds any single wait may take before the test fails

# run the CLI as if on another host: the survivor cannot see this worker's
# pid, so only the lease (and the heartbeat's age) tell it the worker is gone
LOST_HOST_WORKER = (
    "import socket\n"
    "socket.gethostname = lambda: 'lost-host'\n"
    "from engine.cli import main\n"
    "main()\n"
)


# -- the fake S3 endpoint, as a process ---------------------------------------


@dataclass
class FakeS3:
    proc: subprocess.Popen[str]
    url: str

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=10) as resp:
            data: dict[str, Any] = json.load(resp)
        return data

    def copy_requests(self) -> int:
        return int(self.stats()["requests"].get("CopyObject", 0))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start_fakes3(tmp_path: Path) -> Iterator[Callable[..., FakeS3]]:
    """Starts ``bench/fakes3.py`` with the given seeds (BUCKET/PREFIX:COUNT:SIZE)
    and a ``dst`` bucket; stops it after the test."""
    started: list[FakeS3] = []

    def start(*seeds: str, latency_ms: float = 5.0) -> FakeS3:
        argv = [
            sys.executable,
            str(FAKES3),
            "--port",
            "0",
            "--count-copies",
            "--latency-ms",
            str(latency_ms),
            "--bucket",
            "dst",
        ]
        for seed in seeds:
            argv += ["--seed", seed]
        log = tmp_path / f"fakes3-{len(started)}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            proc.kill()
            proc.wait(10)
            pytest.fail(f"fakes3 did not start: {line!r} {log.read_text()[-2000:]}")
        server = FakeS3(proc, line.split()[1])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- the CLI, in subprocesses -------------------------------------------------


@dataclass
class Worker:
    """A ``bulkcopy worker`` process; its stderr (JSON log lines) in a file."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = WAIT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.pid} still running after {timeout}s:\n{self}")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def __str__(self) -> str:
        return self.log.read_text()[-3000:]


@dataclass
class Cli:
    """Runs ``python -m engine`` in ``cwd`` with ``--db`` on every command."""

    cwd: Path
    env: dict[str, str]
    db: str
    workers: list[Worker] = field(default_factory=list)

    def __call__(
        self, *args: str, timeout: float = WAIT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args, "--db", self.db],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, timeout: float = WAIT) -> str:
        """Run a command that must exit 0; its stdout."""
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def submit(self, s3: FakeS3, source: str, to: str, *more: str) -> str:
        out = self.ok(
            "submit",
            "--from",
            source,
            "--to",
            to,
            "--endpoint-url",
            s3.url,
            "--addressing-style",
            "path",
            # one CopyObject per object and no HeadObject: less CPU on a
            # small machine, and the copies are what these tests count
            "--no-stat-source",
            *more,
        )
        return out.strip().splitlines()[-1]

    def worker(self, *args: str, lost_host: bool = False) -> Worker:
        log = self.cwd / f"worker-{len(self.workers)}.log"
        launcher = ["-c", LOST_HOST_WORKER] if lost_host else ["-m", "engine"]
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    *launcher,
                    "worker",
                    *args,
                    "--log-format",
                    "json",
                    "--db",
                    self.db,
                ],
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        w = Worker(proc, log)
        self.workers.append(w)
        return w

    def status(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("status", job_id, "--json"))
        return data

    def kill_all(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)


def make_cli(tmp_path: Path, db: str) -> Cli:
    """A CLI runner in ``tmp_path/work`` on job database ``db``, with dummy
    credentials (fakes3 checks no signature)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        AWS_ACCESS_KEY_ID="test-access-key",
        AWS_SECRET_ACCESS_KEY="test-secret-key",
        AWS_DEFAULT_REGION="us-east-1",
    )
    env.pop("COLUMNS", None)
    return Cli(work, env, db)


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Iterator[Cli]:
    runner = make_cli(tmp_path, db_url)
    try:
        yield runner
    finally:
        runner.kill_all()


# -- the job table, read (and aged) directly ----------------------------------


class JobDb:
    """Plain SQL on the job database the workers share."""

    def __init__(self, url: str) -> None:
        full = normalize_url(url)
        args = {"timeout": 30} if full.startswith("sqlite") else {}
        # a fresh connection per call: PostgreSQL tests kill connections
        self.engine = sa.create_engine(
            full, poolclass=sa.pool.NullPool, connect_args=args
        )

    def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def execute(self, sql: str, **params: Any) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(sa.text(sql), params).rowcount or 0)

    def counts(self, job_id: str) -> Counter[str]:
        return Counter(
            {
                status: int(n)
                for status, n in self.rows(
                    "SELECT status, count(*) FROM tasks WHERE job_id = :j "
                    "GROUP BY status",
                    j=job_id,
                )
            }
        )

    def keys(self, job_id: str, status: str) -> list[str]:
        return sorted(
            r[0]
            for r in self.rows(
                "SELECT src_key FROM tasks WHERE job_id = :j AND status = :s",
                j=job_id,
                s=status,
            )
        )

    def worker_ids(self, job_id: str, pid: int) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT id FROM workers WHERE job_id = :j AND pid = :p",
                j=job_id,
                p=pid,
            )
        ]

    def worker_count(self, job_id: str) -> int:
        return len(self.rows("SELECT id FROM workers WHERE job_id = :j", j=job_id))

    def worker_states(self, job_id: str) -> list[str]:
        return sorted(
            r[0]
            for r in self.rows("SELECT state FROM workers WHERE job_id = :j", j=job_id)
        )

    def held_by(self, owner: str) -> list[str]:
        return sorted(
            r[0]
            for r in self.rows(
                "SELECT src_key FROM tasks WHERE owner = :o AND status = 'running'",
                o=owner,
            )
        )


@pytest.fixture
def jobdb(db_url: str) -> Iterator[JobDb]:
    found = JobDb(db_url)
    yield found
    found.engine.dispose()


def wait_for(
    what: str,
    cond: Callable[[], bool],
    timeout: float = WAIT,
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll ``cond`` until true; fail after ``timeout`` (showing ``seen()``)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            found = f"; found {seen()!r}" if seen is not None else ""
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}{found}")
        time.sleep(0.1)


def assert_copied_once(s3: FakeS3, n: int) -> None:
    stats = s3.stats()
    assert stats["copies"]["repeated"] == {}
    assert stats["copies"]["objects"] == n
    assert stats["requests"].get("CopyObject") == n


# -- many workers on one job --------------------------------------------------


def test_four_workers_share_one_job(
    cli: Cli, jobdb: JobDb, start_fakes3: Callable[..., FakeS3]
) -> None:
    """Four processes on one job: each object copied exactly once (no task
    claimed by two workers at once), none lost, every worker did a share."""
    n = 2000
    # slow enough (8 in flight at 20 ms: 400 copies/s a worker) that the
    # first worker cannot finish before the last one has started
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=20)
    job = cli.submit(s3, "s3://src/k/", "s3://dst/")

    workers = [cli.worker("--job", job, "--concurrency", "8") for _ in range(4)]
    for w in workers:
        assert w.wait() == 0, w

    assert jobdb.counts(job) == {"succeeded": n}
    assert_copied_once(s3, n)
    status = cli.status(job)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == n
    assert sorted(w["pid"] for w in status["workers"]) == sorted(w.pid for w in workers)
    done = [w["tasks_done"] for w in status["workers"]]
    assert sum(done) == n
    assert all(d > 0 for d in done), done
    assert not any(w["live"] for w in status["workers"])


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("same", id="same-host"),
        pytest.param("lost", id="lost-host"),
    ],
)
def test_killed_worker_tasks_are_taken_back(
    cli: Cli,
    jobdb: JobDb,
    start_fakes3: Callable[..., FakeS3],
    tmp_path: Path,
    host: str,
) -> None:
    """``kill -9`` of one of two workers mid-job: the survivor takes the dead
    worker's tasks back and completes the job, each object reported once.

    same-host: the survivor sees the dead pid and takes the tasks back as
    soon as it runs out of tasks to claim.  lost-host: the dead worker ran as
    another host, so the survivor must wait while its lease is valid; the
    test then ages the lease and the heartbeat (as 30 s of silence would)
    instead of sleeping."""
    n = 2000
    # 8 in flight at 20 ms: about 400 copies/s a worker, so the job is
    # still going when the victim is killed
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=20)
    job = cli.submit(s3, "s3://src/k/", "s3://dst/")
    slow = ("--lease", "30", "--concurrency", "8")
    victim = cli.worker("--job", job, *slow, lost_host=host == "lost")
    survivor = cli.worker("--job", job, *slow)

    def victim_busy() -> bool:
        ids = jobdb.worker_ids(job, victim.pid)
        return (
            bool(ids)
            and bool(jobdb.held_by(ids[0]))
            and jobdb.counts(job)["succeeded"] >= 100
        )

    wait_for("the victim to hold tasks mid-job", victim_busy)
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert victim.wait() == -signal.SIGKILL
    (dead,) = jobdb.worker_ids(job, victim.pid)
    held = jobdb.held_by(dead)
    assert held, "the victim held no task when killed"
    assert jobdb.counts(job)["pending"] > 0, "the job ended before the kill"

    if host == "lost":
        # the survivor copies every other task, then waits: the dead
        # worker's lease is still valid and its pid means nothing here
        wait_for(
            "the survivor to run out of tasks to claim",
            lambda: (
                jobdb.counts(job) == {"succeeded": n - len(held), "running": len(held)}
            ),
        )
        time.sleep(1.5)
        assert jobdb.held_by(dead) == held
        assert survivor.proc.poll() is None
        states = {w["id"]: w for w in cli.status(job)["workers"]}
        assert states[dead]["live"] is True
        assert states[dead]["host"] == "lost-host"
        assert [w["state"] for i, w in states.items() if i != dead] == ["waiting"]
        # 30 s pass: the lease runs out and the heartbeat goes stale
        aged = jobdb.execute(
            "UPDATE tasks SET lease_until = 0 WHERE owner = :o", o=dead
        )
        assert aged == len(held)
        jobdb.execute(
            "UPDATE workers SET heartbeat_at = heartbeat_at - 3600 WHERE id = :o",
            o=dead,
        )

    assert survivor.wait() == 0, survivor
    if host == "same":
        # taken back for the dead pid, not after the 30 s lease
        assert time.monotonic() - killed_at < 25
    assert jobdb.counts(job) == {"succeeded": n}

    # each object copied; only those the victim held may have been copied twice
    # (a copy it made but had not recorded when killed)
    stats = s3.stats()
    assert stats["copies"]["objects"] == n
    assert set(stats["copies"]["repeated"]) <= {f"dst/{k}" for k in held}
    assert all(times == 2 for times in stats["copies"]["repeated"].values())

    # the report lists each key exactly once
    out = tmp_path / "reports"
    cli.ok("report", job, "--out", str(out))
    report = out / f"job-{job}"
    with (report / "results" / "succeeded.csv").open(newline="") as f:
        csv_keys = Counter(row[1] for row in csv.reader(f))
    assert (report / "results" / "failed.csv").read_text().strip() == ""
    lines = (report / "results.jsonl").read_text().splitlines()
    jsonl_keys = Counter(json.loads(line)["source"]["key"] for line in lines)
    expected = Counter(f"k/{i:06d}" for i in range(n))
    assert csv_keys == expected
    assert jsonl_keys == expected
    assert {json.loads(line)["status"] for line in lines} == {"succeeded"}

    status = cli.status(job)
    assert status["status"] == "complete"
    by_id = {w["id"]: w for w in status["workers"]}
    assert by_id[dead]["live"] is False
    assert by_id[dead]["state"] == "stopped"


# -- pause, resume, cancel ----------------------------------------------------


def _two_workers_midway(cli: Cli, jobdb: JobDb, s3: FakeS3) -> tuple[str, list[Worker]]:
    """A job under way with two workers, 200 tasks done, most still to do.

    Six copies in flight per worker at 20 ms each: at most 600 objects/s
    whatever the machine, so the job lasts long enough for a `pause` or
    `cancel` (a process that takes a second or two to start on a busy
    machine) to land mid-job."""
    job = cli.submit(s3, "s3://src/k/", "s3://dst/")
    workers = [cli.worker("--job", job, "--concurrency", "6") for _ in range(2)]
    wait_for(
        "both workers to copy",
        lambda: jobdb.worker_count(job) == 2 and jobdb.counts(job)["succeeded"] >= 200,
    )
    assert jobdb.counts(job)["pending"] > 0, "the job ended too soon"
    return job, workers


def test_pause_then_resume_from_the_cli(
    cli: Cli, jobdb: JobDb, start_fakes3: Callable[..., FakeS3]
) -> None:
    """``pause --wait``: no copy in flight, none started, workers paused;
    ``resume`` returns at once and the same workers finish the job."""
    n = 3000
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=20)
    job, workers = _two_workers_midway(cli, jobdb, s3)

    paused = cli("pause", job, "--wait", "30")
    assert paused.returncode == 0, paused.stderr
    assert "no copy of the job is in flight" in paused.stdout
    assert f"bulkcopy resume {job}" in paused.stdout

    wait_for(
        "both workers to say paused",
        lambda: jobdb.worker_states(job) == ["paused", "paused"],
        timeout=10,
        seen=lambda: (jobdb.worker_states(job), jobdb.counts(job)),
    )
    before = s3.copy_requests()
    time.sleep(2)
    assert s3.copy_requests() == before, "copies started while paused"
    counts = jobdb.counts(job)
    assert counts["running"] == 0
    assert counts["pending"] > 0
    assert counts["succeeded"] == before
    status = cli.status(job)
    assert status["status"] == "paused"
    assert [w["state"] for w in status["workers"] if w["live"]] == ["paused"] * 2
    assert all(w.proc.poll() is None for w in workers)

    t0 = time.monotonic()
    resumed = cli("resume", job)
    assert resumed.returncode == 0, resumed.stderr
    assert "live worker(s) carry on" in resumed.stdout
    assert time.monotonic() - t0 < 15

    for w in workers:
        assert w.wait() == 0, w
    assert jobdb.counts(job) == {"succeeded": n}
    assert_copied_once(s3, n)
    assert cli.status(job)["status"] == "complete"
    for w in workers:
        names = [e["event"] for e in w.events()]
        assert "job_paused" in names
        assert "job_resumed" in names


def test_cancel_from_the_cli_then_retry_pending(
    cli: Cli, jobdb: JobDb, start_fakes3: Callable[..., FakeS3]
) -> None:
    """``cancel --wait``: workers leave (exit 1), tasks never started stay
    pending, ``run`` refuses the job and points at ``retry``, and ``retry
    --pending`` makes a job of exactly those tasks."""
    n = 3000
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=20)
    job, workers = _two_workers_midway(cli, jobdb, s3)

    cancelled = cli("cancel", job, "--wait", "30")
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"bulkcopy retry {job} --pending" in cancelled.stdout
    for w in workers:
        assert w.wait() == 1, w
        assert "job_cancelled" in [e["event"] for e in w.events()]

    status = cli.status(job)
    assert status["status"] == "cancelled"
    counts = status["counts"]
    assert counts["running"] == 0
    assert counts["failed"] == counts["skipped"] == 0
    assert counts["pending"] > 0
    assert counts["succeeded"] + counts["pending"] == n
    # every copy made was recorded: none in flight was lost, none repeated
    stats = s3.stats()
    assert stats["copies"]["repeated"] == {}
    assert stats["copies"]["objects"] == counts["succeeded"]

    rerun = cli("run", job)
    assert rerun.returncode == 2, (rerun.stdout, rerun.stderr)
    assert "retry" in rerun.stderr

    pending = jobdb.keys(job, "pending")
    new_job = cli.ok("retry", job, "--pending").strip().splitlines()[-1]
    assert new_job != job
    assert jobdb.keys(new_job, "pending") == pending
    assert jobdb.counts(new_job) == {"pending": len(pending)}
    assert set(pending).isdisjoint(jobdb.keys(job, "succeeded"))
    assert cli.status(new_job)["status"] == "submitted"


# -- the database connection goes away ---------------------------------------


def _reconnect_events(workers: list[Worker]) -> list[dict[str, Any]]:
    return [
        e for w in workers for e in w.events() if e["event"] == "database_reconnecting"
    ]


def test_workers_ride_out_terminated_connections(
    tmp_path: Path,
    pg_url: str,
    postgres: PostgresServer,
    start_fakes3: Callable[..., FakeS3],
) -> None:
    """PostgreSQL kills every connection of the job's database three times
    mid-job: the workers reconnect, finish, and copy each object once.

    (Four copies in flight per worker at 10 ms: at most 800 objects/s, so the
    job outlasts the connection kills, here and in the restart test.)"""
    n = 3000
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=10)
    runner, jobdb = make_cli(tmp_path, pg_url), JobDb(pg_url)
    try:
        job = runner.submit(s3, "s3://src/k/", "s3://dst/")
        workers = [runner.worker("--job", job, "--concurrency", "4") for _ in range(2)]
        wait_for(
            "both workers to copy",
            lambda: (
                jobdb.worker_count(job) == 2 and jobdb.counts(job)["succeeded"] >= 100
            ),
        )
        killed = 0
        for _ in range(3):
            killed += postgres.terminate_connections(pg_url)
            time.sleep(0.5)
        assert killed > 0
        assert jobdb.counts(job)["pending"] > 0, "the job ended too soon"
        # an idle pooled connection that was killed is replaced silently
        # (pool_pre_ping); only a call in flight fails, is retried and logs
        # database_reconnecting.  Keep killing until one did (or the job ends).
        deadline = time.monotonic() + 15
        while (
            not _reconnect_events(workers)
            and any(w.proc.poll() is None for w in workers)
            and time.monotonic() < deadline
        ):
            killed += postgres.terminate_connections(pg_url)
            time.sleep(0.05)

        for w in workers:
            assert w.wait() == 0, w
        assert jobdb.counts(job) == {"succeeded": n}
        assert_copied_once(s3, n)
        assert _reconnect_events(workers), "no database_reconnecting logged"
    finally:
        runner.kill_all()
        jobdb.engine.dispose()


def test_workers_ride_out_a_server_restart(
    tmp_path: Path, start_fakes3: Callable[..., FakeS3]
) -> None:
    """A throwaway PostgreSQL cluster is restarted mid-job (``pg_ctl stop -m
    fast``, 1.5 s down, ``pg_ctl start``): the workers' calls fail, are
    retried until the server is back, and the job finishes, each object
    copied once."""
    n = 3000
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=10)
    server = start_cluster()
    assert server.data_dir is not None
    try:
        with server.database() as url:
            runner, jobdb = make_cli(tmp_path, url), JobDb(url)
            try:
                job = runner.submit(s3, "s3://src/k/", "s3://dst/")
                workers = [
                    runner.worker("--job", job, "--concurrency", "4") for _ in range(2)
                ]
                wait_for(
                    "both workers to copy",
                    lambda: (
                        jobdb.worker_count(job) == 2
                        and jobdb.counts(job)["succeeded"] >= 100
                    ),
                )
                _pg_ctl(server, "stop", "-m", "fast")
                # down long enough that calls fail (a quick restart may fall
                # between two calls and be healed by pool_pre_ping unseen)
                time.sleep(1.5)
                # the options start_cluster() gave (plain `start` does not
                # reuse them, unlike `restart`)
                port = sa.make_url(server.admin_url).port
                options = f"-p {port} -k {server.data_dir} -h 127.0.0.1 -F"
                _pg_ctl(server, "start", "-o", options)
                assert jobdb.counts(job)["pending"] > 0, "the job ended too soon"

                for w in workers:
                    assert w.wait() == 0, w
                assert jobdb.counts(job) == {"succeeded": n}
                assert_copied_once(s3, n)
                assert _reconnect_events(workers), "no database_reconnecting logged"
            finally:
                runner.kill_all()
                jobdb.engine.dispose()
    finally:
        server.stop()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    assert server.data_dir is not None
    subprocess.run(
        [
            *server.pg_ctl,
            *args[:1],
            "-D",
            str(server.data_dir),
            "-w",
            "-l",
            str(server.data_dir / "server.log"),
            *args[1:],
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=WAIT,
    )


# -- a worker without --job ---------------------------------------------------


def test_worker_takes_the_higher_priority_job_first(
    cli: Cli, jobdb: JobDb, start_fakes3: Callable[..., FakeS3]
) -> None:
    """``bulkcopy worker`` (no --job) with two jobs: the one of higher
    ``--priority`` first though submitted last, then the other, then it
    leaves with exit 0."""
    s3 = start_fakes3("src/a/:300:1KiB", "src/b/:300:1KiB", latency_ms=5)
    low = cli.submit(s3, "s3://src/a/", "s3://dst/a/", "--priority", "1")
    high = cli.submit(s3, "s3://src/b/", "s3://dst/b/", "--priority", "5")

    worker = cli.worker()
    assert worker.wait() == 0, worker

    started = [e["job_id"] for e in worker.events() if e["event"] == "run_started"]
    assert started == [high, low]
    assert jobdb.counts(high) == {"succeeded": 300}
    assert jobdb.counts(low) == {"succeeded": 300}
    ((high_last,),) = jobdb.rows(
        "SELECT max(finished_at) FROM tasks WHERE job_id = :j", j=high
    )
    ((low_first,),) = jobdb.rows(
        "SELECT min(started_at) FROM tasks WHERE job_id = :j", j=low
    )
    assert high_last <= low_first
    assert cli.status(high)["status"] == "complete"
    assert cli.status(low)["status"] == "complete"
    assert_copied_once(s3, 600)


def test_a_worker_serves_prometheus_metrics_and_writes_a_textfile(
    cli: Cli, start_fakes3: Callable[..., FakeS3], tmp_path: Path
) -> None:
    """``--metrics-port``: while a worker copies, its /metrics counts the
    tasks done so far; ``--metrics-textfile`` holds every copy at its end."""
    from tests.servers import free_port

    n = 200
    # 4 in flight at 50 ms: about 80 copies/s, so the job lasts a while
    s3 = start_fakes3(f"src/k/:{n}:1KiB", latency_ms=50)
    port, textfile = free_port(), tmp_path / "bulkcopy.prom"
    job = cli.submit(s3, "s3://src/k/", "s3://dst/")
    worker = cli.worker(
        "--job",
        job,
        "--concurrency",
        "4",
        "--metrics-port",
        str(port),
        "--metrics-textfile",
        str(textfile),
    )
    succeeded = re.compile(
        rf'^bulkcopy_tasks_total{{job="{job}",status="succeeded"}} (\d+)\.0$', re.M
    )

    def copied_so_far() -> int:
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as r:
                found = succeeded.search(r.read().decode())
        except OSError:
            return -1
        return int(found.group(1)) if found else -1

    wait_for("the worker's /metrics to count copies", lambda: copied_so_far() > 0)
    midway = copied_so_far()
    assert 0 < midway < n, midway
    assert worker.wait() == 0
    text = textfile.read_text()
    found = succeeded.search(text)
    assert found is not None, text
    assert int(found.group(1)) == n
    assert f'bulkcopy_job_tasks{{job="{job}",status="succeeded"}} {n}.0' in text
    # every request counted by operation and outcome, with its latency
    copies = (
        f'bulkcopy_requests_total{{job="{job}",operation="CopyObject",outcome="ok"}}'
    )
    assert f"{copies} {n}.0" in text, text
    latency = "bulkcopy_request_duration_seconds_count"
    assert f'{latency}{{job="{job}",operation="CopyObject"}} {n}.0' in text
