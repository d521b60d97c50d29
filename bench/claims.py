"""Job-database benchmark: claims + results per second on SQLite and PostgreSQL
with 1, 2 and 4 worker processes, and copies per second end to end.

    python bench/claims.py                                   # both modes, both backends
    python bench/claims.py --mode db --tasks 200000 --rounds 3
    python bench/claims.py --mode copy --tasks 20000 --rounds 1

``db`` mode measures the database alone, as the coordinator of many workers:
a job of ``--tasks`` tasks (default 200,000) is created with the repository's
ingest calls, then P processes (``--processes``, default 1,2,4) each run the
loop a ``bulkcopy worker`` runs, without copying anything: claim a batch
(``Repository.claim``, 2 x concurrency = 128 tasks), hold the results, commit
them in groups (``Repository.record``: at 1,000 results or every 0.25 s), look
at the job's status every second, heartbeat every 10 s; until a claim comes
back empty.  Rate = tasks / seconds from the first process's start to the
last one's end.

``copy`` mode measures a real copy: fakes3 (a process) holds ``--tasks``
objects (default 20,000, 1 KiB each), ``python -m engine submit`` loads a
manifest of them, then P ``python -m engine worker --job JOB --no-preflight
-c 64`` processes copy them.  Rate = tasks / seconds from the first worker's
start to the last one's exit.

Every run gets a fresh database (an SQLite file; a PostgreSQL database created
beside ``--pg-url`` and dropped after) and is checked: every task succeeded
exactly once and none is left running; in db mode also no task was claimed by
two processes and the results accepted sum to the tasks; in copy mode fakes3
answered exactly one CopyObject per task and wrote no object twice.  Prints a
table of medians, writes every run to ``--out``; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

if not __package__:  # run as a file (python bench/claims.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import tools
from bench.endpoint import FakeS3Process
from bench.version import compile_engine, engine_changed, engine_version

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
DEFAULT_OUT = REPO / "bench" / "results" / "claims.json"
BACKENDS = ("sqlite", "postgres")
MODES = ("db", "copy")
DEFAULT_TASKS = {"db": 200_000, "copy": 20_000}
SRC, DST, SRC_PREFIX = "src", "dst", "k/"
OBJECT_SIZE = 1024
CLAIMER = "_claimer"  # argv[1] of a db-mode worker process (this file)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mode", choices=(*MODES, "both"), default="both")
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated: sqlite,postgres",
    )
    p.add_argument(
        "--processes", default="1,2,4", help="comma-separated worker process counts"
    )
    p.add_argument(
        "--tasks",
        type=int,
        help="tasks per job (default: 200,000 in db mode, 20,000 in copy mode)",
    )
    p.add_argument("--rounds", type=int, default=3, help="runs of each combination")
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="worker -c; db mode claims 2 x this (at most 1,000) a time, as a "
        "worker does",
    )
    p.add_argument(
        "--pg-url",
        help="a PostgreSQL database to connect to for CREATE/DROP DATABASE "
        "(libpq URL); default: BULKCOPY_TEST_PG, the server at 127.0.0.1:5432 "
        "(database test), or a throwaway cluster (tests/postgres.py)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results")
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep SQLite files, manifests and logs in DIR (default: a temporary "
        "directory, deleted)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed for one run"
    )
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown or not args.backends:
        p.error(f"--backends: unknown {unknown}; known: {', '.join(BACKENDS)}")
    try:
        args.processes = [int(n) for n in args.processes.split(",") if n.strip()]
    except ValueError:
        p.error("--processes: comma-separated integers, e.g. 1,2,4")
    if not args.processes or min(args.processes) < 1:
        p.error("--processes: at least one count, each at least 1")
    if args.rounds < 1 or (args.tasks is not None and args.tasks < 1):
        p.error("--rounds and --tasks must be at least 1")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    args.modes = list(MODES) if args.mode == "both" else [args.mode]
    return args


def tasks_for(args: argparse.Namespace, mode: str) -> int:
    return int(args.tasks or DEFAULT_TASKS[mode])


# -- the databases --------------------------------------------------------------


class Postgres:
    """A PostgreSQL server we may create databases on (``tests/postgres.py``)."""

    def __init__(self, given: str | None) -> None:
        from tests.postgres import PostgresServer, find_or_start

        self.server: PostgresServer = (
            PostgresServer(given) if given else find_or_start()
        )
        self.local = urlsplit(self.server.admin_url).hostname in (
            None,
            "",
            "127.0.0.1",
            "localhost",
            "::1",
        )

    @property
    def admin_url(self) -> str:
        return self.server.admin_url

    def execute(self, sql: str) -> None:
        self.server.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            return list(conn.execute(sql.encode()).fetchall())

    def create(self, template: str | None = None) -> tuple[str, str]:
        """A new database (a copy of ``template``); its name and SQLAlchemy URL."""
        name = f"bulkcopy_claims_{uuid.uuid4().hex[:12]}"
        self.execute(
            f'CREATE DATABASE "{name}"'
            + (f' TEMPLATE "{template}"' if template else "")
        )
        return name, self.server.sqlalchemy_url(name)

    def drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def version(self) -> str:
        return str(self.query("SHOW server_version")[0][0])

    def postmaster_pid(self) -> int | None:
        """The server's main process, when it runs on this host: the parent
        of our backend (read while connected)."""
        if not self.local:
            return None
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            stat = _proc_stat(int(row[0])) if row else None
        if stat is None or stat[1] != "postgres":
            return None  # not on this host after all (a container, a tunnel)
        return stat[0]

    def stop(self) -> None:
        self.server.stop()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, str, float, float] | None:
    """``ppid, comm, own CPU s, reaped children's CPU s`` of ``pid`` (Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is state (field 3): utime is field 14, cstime field 17
    own = (int(fields[11]) + int(fields[12])) / _TICK
    reaped = (int(fields[13]) + int(fields[14])) / _TICK
    return int(fields[1]), comm, own, reaped


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds used so far by a PostgreSQL cluster on this host: the
    postmaster's own and its reaped children's (backends that exited), plus
    each live child's.  A difference of two readings counts every backend,
    also those that started or ended in between."""
    if postmaster is None:
        return None
    main = _proc_stat(postmaster)
    if main is None:
        return None
    total = main[2] + main[3]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _proc_stat(int(entry.name))
            if info is not None and info[0] == postmaster:
                total += info[2]
    return total


@dataclass
class Backend:
    """Where a run's job database lives."""

    name: str
    workdir: Path
    pg: Postgres | None = None
    postmaster: int | None = None
    databases: list[str] = field(default_factory=list)

    @contextmanager
    def fresh(self, tag: str, template: str | None = None) -> Iterator[str]:
        """A new job database (a copy of ``template``, as :meth:`template`
        returned), as a ``--db`` URL; removed after (SQLite: kept in workdir)."""
        if self.pg is None:
            path = self.workdir / f"{tag}.sqlite"
            for stale in self.workdir.glob(f"{tag}.sqlite*"):
                stale.unlink()
            if template is not None:
                shutil.copyfile(template, path)
            yield str(path)
            return
        name, url = self.pg.create(template)
        try:
            yield url
        finally:
            self.pg.drop(name)

    def template(self, tag: str, build: Callable[[str], str]) -> tuple[str, str]:
        """A database built once by ``build(url)``, to copy for each run: a
        path (SQLite) or a database name (PostgreSQL); and what ``build``
        returned."""
        if self.pg is None:
            path = self.workdir / f"{tag}.sqlite"
            for stale in self.workdir.glob(f"{tag}.sqlite*"):
                stale.unlink()
            built = build(str(path))
            with sqlite3.connect(path) as conn:  # everything into the main file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return str(path), built
        name, url = self.pg.create()
        self.databases.append(name)
        return name, build(url)

    def cleanup(self) -> None:
        if self.pg is not None:
            for name in self.databases:
                self.pg.drop(name)
        self.databases.clear()

    def cpu(self) -> float | None:
        return server_cpu(self.postmaster) if self.pg is not None else None


# -- db mode: the job database alone -----------------------------------------------


def build_job(url: str, n: int) -> str:
    """A submitted job of ``n`` pending tasks (``src/k/000000``, ...), made with
    the repository's ingest calls, in batches of 10,000 as a submit does."""
    from engine.domain.records import IngestTotals, key_hash
    from engine.domain.spec import JobSpec
    from engine.store import Repository

    repo = Repository(url)
    try:
        spec = JobSpec().to_dict()
        job = repo.start_ingest(
            manifest="bench/claims.py",
            dst_bucket=DST,
            dst_prefix="claims/",
            spec=spec,
            source={"kind": "csv", "location": "bench/claims.py"},
            identity=None,
        )
        columns = ("job_id", "line", "src_bucket", "src_key", "size", "key_hash")
        for start in range(0, n, 10_000):
            rows = []
            for i in range(start, min(n, start + 10_000)):
                key = f"{SRC_PREFIX}{i:06d}"
                rows.append((job, i + 1, SRC, key, OBJECT_SIZE, key_hash(key)))
            repo.add_tasks(job, [], {"read": start + len(rows)}, rows, columns)
        repo.finish_ingest(
            job,
            spec={**spec, "source_buckets": [SRC]},
            totals=IngestTotals(read=n, inserted=n),
            check_collisions=False,
            order_versions=False,
        )
        return job
    finally:
        repo.close()


def claimer_main(argv: Sequence[str]) -> int:
    """One db-mode worker process: the claim / record loop of
    ``engine.run.worker.Worker`` without the copies.  Says READY once the
    database is open and it is registered, starts at the line GO on stdin,
    prints its figures as one JSON line, leaves at end of stdin."""
    p = argparse.ArgumentParser(prog=f"claims.py {CLAIMER}")
    p.add_argument("--db", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--ids", type=Path, required=True, help="claimed task ids go here")
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args(argv)

    from engine.domain.models import TaskResult, TaskStatus
    from engine.run.peers import pid_alive
    from engine.run.settings import RunSettings
    from engine.store import Repository

    run = RunSettings(concurrency=args.concurrency)
    repo = Repository(args.db)
    host, pid = socket.gethostname(), os.getpid()
    me = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    repo.register_worker(me, args.job, host, pid)
    repo.get_job(args.job)
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return 2

    claimed = array.array("q")
    buffered: list[Any] = []
    spent = {"claim": 0.0, "record": 0.0, "control": 0.0, "heartbeat": 0.0}
    calls = {"claim": 0, "record": 0, "control": 0, "heartbeat": 0}
    accepted = released = 0

    def timed(what: str, fn: Callable[..., Any], *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            spent[what] += time.perf_counter() - t
            calls[what] += 1

    def flush() -> None:
        nonlocal accepted, buffered
        if buffered:
            batch, buffered = buffered, []
            accepted += timed("record", repo.record, me, batch)

    def heartbeat() -> int:
        now = time.time()
        repo.heartbeat(me, now + run.lease_seconds)
        dead = repo.dead_workers(
            args.job, host, pid, pid_alive, now - run.lease_seconds
        )
        return repo.release_orphans(args.job, now, [d for d in dead if d != me])

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.time()
    t0 = last_flush = next_control = time.monotonic()
    next_heartbeat = t0 + run.heartbeat_every
    while True:
        now = time.monotonic()
        if now >= next_control:
            timed("control", repo.job_status, args.job)
            next_control = now + run.control_interval
        if now >= next_heartbeat:
            released += timed("heartbeat", heartbeat)
            next_heartbeat = now + run.heartbeat_every
        lease = time.time() + run.lease_seconds
        got = timed("claim", repo.claim, args.job, me, run.batch, lease)
        if not got:
            break
        claimed.extend(t.id for t in got)
        done = time.time()
        buffered.extend(
            TaskResult(
                task_id=t.id,
                status=TaskStatus.SUCCEEDED,
                attempts=1,
                started_at=done,
                finished_at=done,
                etag='"bench"',
                bytes=t.size,
                method="copy",
            )
            for t in got
        )
        if (
            len(buffered) >= run.flush_max
            or time.monotonic() - last_flush >= run.flush_interval
        ):
            flush()
            last_flush = time.monotonic()
    flush()
    end = time.time()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    with args.ids.open("wb") as fh:
        claimed.tofile(fh)
    result = {
        "worker_id": me,
        "start": start,
        "end": end,
        "claimed": len(claimed),
        "accepted": accepted,
        "released": released,
        "cpu_s": round(
            (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 3
        ),
        "calls": calls,
        "seconds_in": {k: round(v, 3) for k, v in spent.items()},
        "claim_batch": run.batch,
        "flush_max": run.flush_max,
    }
    print(json.dumps(result), flush=True)
    sys.stdin.read()  # the parent has read the server's CPU: leave
    repo.stop_worker(me)
    repo.close()
    return 0


@dataclass
class Child:
    """A process of ours, reaped with ``wait4`` for its own rusage."""

    proc: subprocess.Popen[str]
    log: Path
    returncode: int | None = None
    cpu_s: float = 0.0
    exited_at: float = 0.0

    def reap(self) -> None:
        if self.returncode is not None:
            return
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.exited_at = time.perf_counter()
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s = usage.ru_utime + usage.ru_stime

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])


@contextmanager
def deadline(children: list[Child], seconds: float) -> Iterator[threading.Event]:
    """Kill the children if the block takes longer than ``seconds``."""
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        for c in children:
            with suppress(ProcessLookupError):
                c.proc.kill()

    timer = threading.Timer(seconds, kill)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
        for c in children:  # on an error: none left behind
            if c.returncode is None and c.proc.poll() is None:
                c.proc.kill()
            if c.returncode is None:
                with suppress(ChildProcessError):
                    c.reap()


def _readline(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


@dataclass
class DbRun:
    backend: str
    processes: int
    round: int
    tasks: int
    wall_s: float
    tasks_per_s: float
    cpu_s: list[float]  # each process, while it ran the loop
    process_cpu_s: list[float]  # each process, start to exit (start-up included)
    server_cpu_s: float | None  # PostgreSQL, every process of the cluster
    claims: int
    records: int
    claim_ms: float  # mean time of one claim call
    record_ms: float  # mean time of one record call (about 1,000 results)
    accepted: list[int]
    ok: bool
    problems: list[str]


def db_run(
    backend: Backend, template: str, job: str, procs: int, round_no: int, args: Any
) -> DbRun:
    """P processes claim and record every task of a fresh copy of the job."""
    n = tasks_for(args, "db")
    tag = f"db-{backend.name}-p{procs}-r{round_no}"
    problems: list[str] = []
    with backend.fresh(tag, template) as url:
        children: list[Child] = []
        reports: list[dict[str, Any]] = []
        cpu_before = cpu_after = None
        with deadline(children, args.timeout) as fired:
            for i in range(procs):
                log = backend.workdir / f"{tag}-{i}.log"
                with log.open("w") as err:
                    proc = subprocess.Popen(
                        [
                            sys.executable,
                            str(THIS),
                            CLAIMER,
                            "--db",
                            url,
                            "--job",
                            job,
                            "--ids",
                            str(backend.workdir / f"{tag}-{i}.ids"),
                            "--concurrency",
                            str(args.concurrency),
                        ],
                        cwd=REPO,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                    )
                children.append(Child(proc, log))
            ready = [_readline(c.proc.stdout) == "READY" for c in children]
            if all(ready):
                cpu_before = backend.cpu()
                for c in children:
                    assert c.proc.stdin is not None
                    c.proc.stdin.write("GO\n")
                    c.proc.stdin.flush()
                for c in children:
                    line = _readline(c.proc.stdout)
                    if line.startswith("{"):
                        reports.append(json.loads(line))
                cpu_after = backend.cpu()
            for c in children:
                assert c.proc.stdin is not None
                with suppress(BrokenPipeError):
                    c.proc.stdin.close()
                c.reap()
        if fired.is_set():
            problems.append(f"timed out after {args.timeout:g}s")
        for i, c in enumerate(children):
            if c.returncode != 0:
                problems.append(f"process {i} exited {c.returncode}: {c.tail()}")
        if len(reports) == procs:
            problems += check_db_run(url, job, n, backend.workdir, tag, reports)
    wall = (
        max(r["end"] for r in reports) - min(r["start"] for r in reports)
        if reports
        else 0.0
    )
    claims = sum(r["calls"]["claim"] for r in reports)
    records = sum(r["calls"]["record"] for r in reports)
    return DbRun(
        backend=backend.name,
        processes=procs,
        round=round_no,
        tasks=n,
        wall_s=round(wall, 3),
        tasks_per_s=round(n / wall) if wall and not problems else 0,
        cpu_s=[r["cpu_s"] for r in reports],
        process_cpu_s=[round(c.cpu_s, 3) for c in children],
        server_cpu_s=(
            None
            if cpu_before is None or cpu_after is None
            else round(cpu_after - cpu_before, 2)
        ),
        claims=claims,
        records=records,
        claim_ms=round(
            1000 * sum(r["seconds_in"]["claim"] for r in reports) / max(claims, 1), 2
        ),
        record_ms=round(
            1000 * sum(r["seconds_in"]["record"] for r in reports) / max(records, 1), 2
        ),
        accepted=[r["accepted"] for r in reports],
        ok=not problems,
        problems=problems,
    )


def job_state(url: str, job: str) -> dict[str, Any]:
    """What the job table says of the job's tasks and workers."""
    import sqlalchemy as sa

    from engine.store import Repository
    from engine.store.tables import tasks, workers

    repo = Repository(url)
    try:
        counts = repo.counts(job)
        with repo.engine.connect() as conn:
            rows, attempts, low, high, owned = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(tasks.c.attempts), 0),
                    sa.func.min(tasks.c.attempts),
                    sa.func.max(tasks.c.attempts),
                    sa.func.count(tasks.c.owner),
                ).where(tasks.c.job_id == job)
            ).one()
            done = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(workers.c.tasks_done), 0)).where(
                    workers.c.job_id == job
                )
            ).scalar_one()
    finally:
        repo.close()
    return {
        "by_status": dict(counts.by_status),
        "tasks": int(rows),
        "attempts": int(attempts),
        "min_attempts": low,
        "max_attempts": high,
        "owned": int(owned),
        "workers_tasks_done": int(done),
        "first_started_at": counts.first_started_at,
        "last_finished_at": counts.last_finished_at,
    }


def check_job(state: dict[str, Any], n: int) -> list[str]:
    """Every one of ``n`` tasks succeeded, once, and none is held."""
    problems = []
    if state["by_status"] != {"succeeded": n}:
        problems.append(f"expected {n} succeeded tasks, found {state['by_status']}")
    if state["attempts"] != n or state["max_attempts"] != 1:
        problems.append(
            f"expected one attempt per task, found {state['attempts']} attempts "
            f"(max {state['max_attempts']} on one task)"
        )
    if state["owned"]:
        problems.append(f"{state['owned']} tasks still have an owner")
    if state["workers_tasks_done"] != n:
        problems.append(
            f"the workers' tasks_done sum to {state['workers_tasks_done']}, not {n}"
        )
    return problems


def check_db_run(
    url: str, job: str, n: int, workdir: Path, tag: str, reports: list[dict[str, Any]]
) -> list[str]:
    """The job is done right, no task was claimed twice, and the results the
    processes were told were accepted are the tasks."""
    problems = check_job(job_state(url, job), n)
    ids = array.array("q")
    for i in range(len(reports)):
        path = workdir / f"{tag}-{i}.ids"
        ids.frombytes(path.read_bytes())
        path.unlink()
    distinct = len(set(ids))
    if distinct != len(ids):
        problems.append(f"{len(ids) - distinct} tasks were claimed more than once")
    if len(ids) != n or distinct != n:
        problems.append(f"{len(ids)} claims of {distinct} distinct tasks, not {n}")
    accepted = sum(r["accepted"] for r in reports)
    if accepted != n:
        problems.append(f"record() accepted {accepted} results, not {n}")
    return problems


def schedule(
    args: argparse.Namespace, backends: list[Backend]
) -> Iterator[tuple[int, int, Backend]]:
    """``(round, processes, backend)`` of every run, in order: each process
    count on every backend in turn, so runs compared sit side by side in time
    (the load of a shared machine drifts); both orders rotate each round."""
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(args.processes)
        turn = (round_no - 1) % len(backends)
        for procs in args.processes[shift:] + args.processes[:shift]:
            for backend in backends[turn:] + backends[:turn]:
                yield round_no, procs, backend


def _server(seconds: float | None) -> str:
    return "" if seconds is None else f", server {seconds:.1f} s"


def run_db_mode(
    args: argparse.Namespace, backends: list[Backend], runs: list[DbRun]
) -> None:
    n = tasks_for(args, "db")
    made: dict[str, tuple[str, str]] = {}
    for backend in backends:
        started = time.perf_counter()
        made[backend.name] = backend.template(
            f"db-{backend.name}-template", lambda url: build_job(url, n)
        )
        say(
            f"db {backend.name}: a job of {n:,} tasks made in "
            f"{time.perf_counter() - started:.1f}s"
        )
    for round_no, procs, backend in schedule(args, backends):
        template, job = made[backend.name]
        run = db_run(backend, template, job, procs, round_no, args)
        runs.append(run)
        say(
            f"round {round_no} db {backend.name} x{procs}: "
            f"{run.wall_s:.2f}s, {run.tasks_per_s:,} tasks/s, claim "
            f"{run.claim_ms:.1f} ms, record {run.record_ms:.1f} ms, "
            f"CPU {'+'.join(f'{c:.1f}' for c in run.cpu_s)} s"
            + _server(run.server_cpu_s)
            + ("" if run.ok else f", FAILED: {'; '.join(run.problems)}")
        )


# -- copy mode: bulkcopy worker processes against fakes3 ---------------------------


@dataclass
class CopyRun:
    backend: str
    processes: int
    round: int
    tasks: int
    wall_s: float  # first worker started - last worker exited
    copies_per_s: float
    active_s: float | None  # first task started - last task finished (job table)
    active_copies_per_s: float | None
    client_cpu_s: float  # the workers together, start-up included
    process_cpu_s: list[float]
    fakes3_cpu_s: float
    server_cpu_s: float | None
    copy_objects: int
    requests: dict[str, int]
    repeated: int  # destination keys written more than once
    ok: bool
    problems: list[str]

    @classmethod
    def failed(
        cls, backend: str, processes: int, round_no: int, tasks: int, problem: str
    ) -> CopyRun:
        """A run that never started its workers."""
        return cls(
            backend=backend,
            processes=processes,
            round=round_no,
            tasks=tasks,
            wall_s=0.0,
            copies_per_s=0,
            active_s=None,
            active_copies_per_s=None,
            client_cpu_s=0.0,
            process_cpu_s=[],
            fakes3_cpu_s=0.0,
            server_cpu_s=None,
            copy_objects=0,
            requests={},
            repeated=0,
            ok=False,
            problems=[problem],
        )


def copy_run(
    backend: Backend,
    server: FakeS3Process,
    manifest: Path,
    procs: int,
    round_no: int,
    args: Any,
    env: dict[str, str],
) -> CopyRun:
    n = tasks_for(args, "copy")
    tag = f"copy-{backend.name}-p{procs}-r{round_no}"
    problems: list[str] = []
    with backend.fresh(tag) as url:
        s3 = ["--endpoint-url", server.url, "--addressing-style", "path"]
        bulkcopy = [sys.executable, "-m", "engine"]
        submit = subprocess.run(
            [
                *bulkcopy,
                "submit",
                str(manifest),
                "--to",
                f"s3://{DST}/{tag}/",
                "--db",
                url,
                "-q",
                *s3,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
        if submit.returncode != 0:
            tail = " | ".join(submit.stderr.strip().splitlines()[-3:])
            return CopyRun.failed(
                backend.name,
                procs,
                round_no,
                n,
                f"submit exited {submit.returncode}: {tail}",
            )
        job = submit.stdout.strip().splitlines()[-1]
        server.reset_stats()
        children: list[Child] = []
        cpu_before = backend.cpu()
        started = time.perf_counter()
        with deadline(children, args.timeout) as fired:
            for i in range(procs):
                log = backend.workdir / f"{tag}-{i}.log"
                with log.open("w") as err:
                    proc = subprocess.Popen(
                        [
                            *bulkcopy,
                            "worker",
                            "--db",
                            url,
                            "--job",
                            job,
                            "--no-preflight",
                            "-c",
                            str(args.concurrency),
                            "--no-progress",
                            "-q",
                            *s3,
                        ],
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=err,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                children.append(Child(proc, log))
            for c in children:
                c.reap()
        wall = max(c.exited_at for c in children) - started
        cpu_after = backend.cpu()
        stats = server.stats()
        if fired.is_set():
            problems.append(f"timed out after {args.timeout:g}s")
        for i, c in enumerate(children):
            if c.returncode != 0:
                problems.append(f"worker {i} exited {c.returncode}: {c.tail()}")
        state = job_state(url, job)
        problems += check_job(state, n)
    copies = stats["requests"].get("CopyObject", 0)
    repeated = stats["copies"]["repeated"]
    if copies != n:
        problems.append(f"fakes3 answered {copies} CopyObject requests, not {n}")
    if stats["copies"]["objects"] != n:
        problems.append(f"fakes3 wrote {stats['copies']['objects']} objects, not {n}")
    if repeated:
        first = next(iter(repeated.items()))
        problems.append(f"{len(repeated)} objects copied more than once, e.g. {first}")
    if stats["errors"]:
        problems.append(f"fakes3 answered errors: {stats['errors']}")
    first, last = state["first_started_at"], state["last_finished_at"]
    active = (last - first) if first is not None and last is not None else None
    cpu = sum(c.cpu_s for c in children)
    return CopyRun(
        backend=backend.name,
        processes=procs,
        round=round_no,
        tasks=n,
        wall_s=round(wall, 3),
        copies_per_s=round(n / wall) if not problems else 0,
        active_s=None if active is None else round(active, 3),
        active_copies_per_s=(round(n / active) if active and not problems else None),
        client_cpu_s=round(cpu, 2),
        process_cpu_s=[round(c.cpu_s, 2) for c in children],
        fakes3_cpu_s=round(stats["cpu_seconds"], 2),
        server_cpu_s=(
            None
            if cpu_before is None or cpu_after is None
            else round(cpu_after - cpu_before, 2)
        ),
        copy_objects=copies,
        requests=stats["requests"],
        repeated=len(repeated),
        ok=not problems,
        problems=problems,
    )


def run_copy_mode(
    args: argparse.Namespace,
    backends: list[Backend],
    runs: list[CopyRun],
    workdir: Path,
) -> None:
    n = tasks_for(args, "copy")
    env = tools.environment(workdir)
    manifest = workdir / "copy-manifest.csv"
    with manifest.open("w") as fh:
        for i in range(n):
            fh.write(f"{SRC},{SRC_PREFIX}{i:06d}\n")
    fakes3 = [
        "--count-copies",
        "--bucket",
        DST,
        "--seed",
        f"{SRC}/{SRC_PREFIX}:{n}:{OBJECT_SIZE}",
    ]
    with FakeS3Process(fakes3, log=workdir / "fakes3.log") as server:
        for round_no, procs, backend in schedule(args, backends):
            run = copy_run(backend, server, manifest, procs, round_no, args, env)
            runs.append(run)
            say(
                f"round {round_no} copy {backend.name} x{procs}: "
                f"{run.wall_s:.2f}s, {run.copies_per_s:,} copies/s "
                f"({run.active_copies_per_s or 0:,} while copying), client "
                f"CPU {run.client_cpu_s:.1f} s, fakes3 {run.fakes3_cpu_s:.1f} s"
                + _server(run.server_cpu_s)
                + ("" if run.ok else f", FAILED: {'; '.join(run.problems)}")
            )


# -- summary -------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _median(values: Sequence[float | None], digits: int = 2) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), digits) if known else None


def _combinations(runs: Sequence[DbRun | CopyRun]) -> list[tuple[str, int]]:
    """The ``(backend, processes)`` measured, by backend then process count."""
    backends = list(dict.fromkeys(r.backend for r in runs))
    found = {(r.backend, r.processes) for r in runs}
    return sorted(found, key=lambda c: (backends.index(c[0]), c[1]))


def _summaries(
    runs: Sequence[Any], fields: Callable[[list[Any], list[Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per (backend, processes): the fields every mode has, then
    ``fields(runs, good_runs)``, then the problems and every run."""
    out = []
    for backend, procs in _combinations(runs):
        mine = [r for r in runs if (r.backend, r.processes) == (backend, procs)]
        good = [r for r in mine if r.ok]
        walls = [r.wall_s for r in good]
        out.append(
            {
                "backend": backend,
                "processes": procs,
                "tasks": mine[0].tasks,
                "rounds": len(mine),
                "rounds_ok": len(good),
                "checks_ok": len(good) == len(mine),
                "wall_s_median": _median(walls, 3),
                "wall_s_min": min(walls, default=None),
                "wall_s_max": max(walls, default=None),
                **fields(mine, good),
                "problems": sorted({p for r in mine for p in r.problems}),
                "runs": [asdict(r) for r in mine],
            }
        )
    return out


def summarize_db(runs: list[DbRun]) -> list[dict[str, Any]]:
    def fields(_mine: list[DbRun], good: list[DbRun]) -> dict[str, Any]:
        return {
            "tasks_per_s_median": _median([r.tasks_per_s for r in good], 0),
            "cpu_s_per_process_median": _median(
                [statistics.mean(r.cpu_s) for r in good if r.cpu_s]
            ),
            "cpu_s_total_median": _median([sum(r.cpu_s) for r in good]),
            "server_cpu_s_median": _median([r.server_cpu_s for r in good]),
            "claim_ms_median": _median([r.claim_ms for r in good]),
            "record_ms_median": _median([r.record_ms for r in good]),
        }

    return _summaries(runs, fields)


def summarize_copy(runs: list[CopyRun]) -> list[dict[str, Any]]:
    def fields(mine: list[CopyRun], good: list[CopyRun]) -> dict[str, Any]:
        return {
            "copies_per_s_median": _median([r.copies_per_s for r in good], 0),
            "active_copies_per_s_median": _median(
                [r.active_copies_per_s for r in good], 0
            ),
            "client_cpu_s_median": _median([r.client_cpu_s for r in good]),
            "fakes3_cpu_s_median": _median([r.fakes3_cpu_s for r in good]),
            "server_cpu_s_median": _median([r.server_cpu_s for r in good]),
            "copy_objects": sorted({r.copy_objects for r in mine}),
            "repeated": max((r.repeated for r in mine), default=0),
        }

    return _summaries(runs, fields)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of the summary ``rows``."""

    def cell(row: dict[str, Any], key: str) -> str:
        if key == "spread":
            if row["wall_s_min"] is None:
                return "-"
            return f"{row['wall_s_min']:.2f}-{row['wall_s_max']:.2f}"
        if key == "checks_ok":
            ok = "yes" if row["checks_ok"] else "NO"
            return (
                ok if row["checks_ok"] else f"{ok} ({row['rounds_ok']}/{row['rounds']})"
            )
        return _fmt(row[key])

    head = [name for name, _ in columns]
    body = [[cell(r, key) for _, key in columns] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=True)]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in body)])


DB_COLUMNS = (
    ("backend", "backend"),
    ("procs", "processes"),
    ("tasks", "tasks"),
    ("wall s", "wall_s_median"),
    ("min-max s", "spread"),
    ("claims+results/s", "tasks_per_s_median"),
    ("CPU s/proc", "cpu_s_per_process_median"),
    ("PG server CPU s", "server_cpu_s_median"),
    ("claim ms", "claim_ms_median"),
    ("record ms", "record_ms_median"),
    ("checks ok", "checks_ok"),
)
COPY_COLUMNS = (
    ("backend", "backend"),
    ("procs", "processes"),
    ("tasks", "tasks"),
    ("wall s", "wall_s_median"),
    ("min-max s", "spread"),
    ("copies/s", "copies_per_s_median"),
    ("copies/s copying", "active_copies_per_s_median"),
    ("client CPU s", "client_cpu_s_median"),
    ("fakes3 CPU s", "fakes3_cpu_s_median"),
    ("PG server CPU s", "server_cpu_s_median"),
    ("checks ok", "checks_ok"),
)


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pg = Postgres(args.pg_url) if "postgres" in args.backends else None
    backends = []
    try:
        for name in args.backends:
            backend = Backend(name, workdir)
            if name == "postgres":
                assert pg is not None
                backend.pg, backend.postmaster = pg, pg.postmaster_pid()
            backends.append(backend)
        db_runs: list[DbRun] = []
        copy_runs: list[CopyRun] = []
        load_before = os.getloadavg()
        compile_engine()
        version = engine_version()
        if "db" in args.modes:
            run_db_mode(args, backends, db_runs)
        if "copy" in args.modes:
            run_copy_mode(args, backends, copy_runs, workdir)
        load_after = os.getloadavg()
        version = engine_changed(version)
        host: dict[str, Any] = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        }
        if pg is not None:
            host["postgres"] = pg.version()
            host["postgres_local"] = pg.local
    finally:
        for backend in backends:
            backend.cleanup()
        if pg is not None:
            pg.stop()
    return {
        "benchmark": "job database: claims + results per second, and copies per second",
        "command": " ".join(["python", "bench/claims.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "engine": version,
        "host": host,
        "settings": {
            "modes": args.modes,
            "backends": args.backends,
            "processes": args.processes,
            "tasks": {m: tasks_for(args, m) for m in args.modes},
            "rounds": args.rounds,
            "concurrency": args.concurrency,
        },
        "db": summarize_db(db_runs),
        "copy": summarize_copy(copy_runs),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [CLAIMER]:
        return claimer_main(argv[1:])
    args = parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_bench(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
            result = run_bench(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s, h = result["settings"], result["host"]
    print(
        f"engine {result['engine']}, {h['cpus']} CPUs, SQLite {h['sqlite']}"
        + (f", PostgreSQL {h['postgres']}" if "postgres" in h else "")
        + f", {s['rounds']} round(s), worker concurrency {s['concurrency']}"
    )
    if result["db"]:
        print(f"\ndb mode: {s['tasks']['db']:,} tasks claimed and recorded")
        print(table(result["db"], DB_COLUMNS))
    if result["copy"]:
        print(f"\ncopy mode: {s['tasks']['copy']:,} objects copied through fakes3")
        print(table(result["copy"], COPY_COLUMNS))
    print(f"\n(medians over rounds; every run in {args.out})")
    ok = all(r["checks_ok"] for r in result["db"] + result["copy"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
