"""Streamed-copy benchmark: objects read from one S3 endpoint and written to
another, by bulkcopy's ``--transfer stream`` and by ``rclone copy`` between
two remotes, side by side.

    python bench/stream.py            # 5,000 x 64 KiB and 2 x 1 GiB, 3 rounds
    python bench/stream.py --small-objects 200 --large-objects 1 \\
        --large-size 64MiB --rounds 1 # a smoke run

Two fakes3 processes, a source and a destination, each on a free port, both
with ``--content-etags`` (the ETag of a seeded object is the MD5 of the zeros
its GetObject serves, as both tools check what they read); with two or more
CPUs the endpoints are pinned (``taskset``) away from the tool under test, as
in ``small.py``.  Two workloads: many small objects (``s3://src/small/``) and
a few large ones (``s3://src/large/``, seeded as multipart objects).  Each
tool copies a workload with the source listed by the tool itself (bulkcopy
``copy --from``, ``rclone copy A:src/PREFIX B:dst/...``): a GetObject from the
source for each object or part, a PutObject or UploadPart to the destination.

Rows: ``bulkcopy`` and ``rclone`` with the same settings (``--concurrency``
objects in flight, ``--part-size``, ``--part-concurrency`` parts in flight,
``--multipart-threshold``), and ``bulkcopy-defaults`` and ``rclone-defaults``
as a user runs them.  Each round runs every tool once per workload (the
order rotates from round to round), under ``bench/measure.py``: wall time,
user + system CPU and peak RSS (``wait4``) of the tool's process.  A run is
checked: exit status 0 (bulkcopy exits non-zero when a task failed), every
object at the destination with its size, every byte received by the
destination endpoint, no server-side copy, no error answered but a 404.
Prints a Markdown table per workload with medians and the ratio of each
bulkcopy row to the rclone row with the same settings; writes every run to
``--json``; exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a file (python bench/stream.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench import tools
from bench.endpoint import FakeS3Process
from bench.small import (
    BenchError,
    delete_keys,
    find_binaries,
    measured,
    pinned,
    s3_client,
    say,
    versions,
)
from bench.summary import markdown, medians, requests_text, spread, workdir_for
from bench.units import format_size, parse_size
from bench.version import compile_engine, engine_version, provenance

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "stream.json"
SRC, DST = "src", "dst"  # the buckets: on the source endpoint, on the destination
MIB, GIB = 1024**2, 1024**3
TOOLS = ("bulkcopy", "rclone", "bulkcopy-defaults", "rclone-defaults")
# each bulkcopy row is compared with the rclone row of the same settings
BASELINE = {"bulkcopy": "rclone", "bulkcopy-defaults": "rclone-defaults"}
WORKLOADS = ("small", "large")
REMOTES = ("A", "B")  # rclone's remotes: A the source, B the destination
# errors a run may see: a HEAD of a destination not written yet (rclone's
# look at the destination root before it copies)
EXPECTED_ERRORS = frozenset({"NoSuchKey"})


@dataclass(frozen=True, slots=True)
class Workload:
    """``count`` objects of ``size`` bytes, ``src/PREFIX000000`` ..."""

    name: str
    count: int
    size: int
    # the large objects are seeded as multipart uploads of this part size
    # (their ETag ends in -N, as an SDK's upload of a large file); None: one part
    source_part_size: int | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    @property
    def total(self) -> int:
        return self.count * self.size

    def object_keys(self) -> list[str]:
        return [f"{self.prefix}{i:06d}" for i in range(self.count)]

    def seed(self) -> list[dict[str, Any]]:
        """``POST /__seed`` specs for the source endpoint."""
        if self.source_part_size is None:
            return [
                {
                    "bucket": SRC,
                    "prefix": self.prefix,
                    "count": self.count,
                    "size": self.size,
                }
            ]
        return [
            {
                "bucket": SRC,
                "key": key,
                "size": self.size,
                "part_size": self.source_part_size,
            }
            for key in self.object_keys()
        ]

    def describe(self) -> str:
        return (
            f"{self.count:,} objects of {format_size(self.size)} "
            f"({format_size(self.total)})"
        )


def _size(p: argparse.ArgumentParser, flag: str, text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        p.error(f"{flag}: {exc}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--small-objects", type=int, default=5000, help="objects, small workload"
    )
    p.add_argument("--small-size", default="64KiB", help="object size, small workload")
    p.add_argument(
        "--large-objects", type=int, default=2, help="objects, large workload"
    )
    p.add_argument("--large-size", default="1GiB", help="object size, large workload")
    p.add_argument(
        "--source-part-size",
        default="8MiB",
        help="the large sources are multipart objects of this part size (their "
        "ETag ends in -N); 0: single-part objects, whose ETag is the MD5 of the "
        "whole (fakes3 hashes it once: about 2 s a GiB)",
    )
    p.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, from {', '.join(WORKLOADS)}",
    )
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool")
    p.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated, from {', '.join(TOOLS)}",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="objects in flight: bulkcopy --concurrency, rclone --transfers and "
        "--checkers (rows bulkcopy and rclone)",
    )
    p.add_argument(
        "--part-size",
        default="16MiB",
        help="bulkcopy --part-size, rclone --s3-chunk-size (rows bulkcopy and rclone)",
    )
    p.add_argument(
        "--part-concurrency",
        type=int,
        default=16,
        help="parts in flight: bulkcopy --part-concurrency (across objects), "
        "rclone --s3-upload-concurrency and --multi-thread-streams (per object)",
    )
    p.add_argument(
        "--multipart-threshold",
        default="16MiB",
        help="bulkcopy --multipart-threshold, rclone --multi-thread-cutoff and "
        "--s3-upload-cutoff (rows bulkcopy and rclone)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="fakes3: added to every request, on both endpoints",
    )
    p.add_argument(
        "--checksums",
        action="store_true",
        help="fakes3 --checksums on both endpoints: objects have a FULL_OBJECT "
        "CRC64NVME, as every object on AWS since 2025 (bulkcopy then checks "
        "with it and leaves out the MD5; rclone does not read it)",
    )
    p.add_argument(
        "--bulkcopy-args",
        default="",
        metavar="ARGS",
        help="more options for every bulkcopy run (space-separated)",
    )
    p.add_argument(
        "--rclone-args",
        default="",
        metavar="ARGS",
        help="more options for every rclone run, e.g. '--s3-no-head' (space-separated)",
    )
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pin the tool to one CPU and the endpoints to others with taskset "
        "(default: on with 2 or more CPUs)",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write results here")
    p.add_argument(
        "--engine-root",
        type=Path,
        default=REPO,
        help="the bulkcopy checkout whose `python -m engine` is measured",
    )
    p.add_argument(
        "--bulkcopy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for bulkcopy (repeatable); the bench "
        "otherwise drops BULKCOPY_* and AWS_* variables",
    )
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep logs and job databases in DIR (default: deleted)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed for one run"
    )
    args = p.parse_args(argv)
    for name, known in (("tools", TOOLS), ("workloads", WORKLOADS)):
        chosen = [t for t in dict.fromkeys(getattr(args, name).split(",")) if t]
        chosen = [t.strip() for t in chosen]
        unknown = sorted(set(chosen) - set(known))
        if unknown or not chosen:
            p.error(f"--{name}: unknown {unknown}; known: {', '.join(known)}")
        setattr(args, name, [t for t in known if t in chosen])
    args.engine_root = args.engine_root.resolve()
    if not (args.engine_root / "engine" / "__main__.py").is_file():
        p.error(f"--engine-root: no engine/__main__.py in {args.engine_root}")
    try:
        args.bulkcopy_env = dict(kv.split("=", 1) for kv in args.bulkcopy_env)
    except ValueError:
        p.error("--bulkcopy-env takes NAME=VALUE")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if min(args.concurrency, args.part_concurrency) < 1:
        p.error("--concurrency and --part-concurrency must be at least 1")
    args.part_size = _size(p, "--part-size", args.part_size)
    args.multipart_threshold = _size(
        p, "--multipart-threshold", args.multipart_threshold
    )
    if args.part_size < 5 * MIB or args.multipart_threshold < 5 * MIB:
        p.error("--part-size and --multipart-threshold must be at least 5MiB")
    source_part = _size(p, "--source-part-size", args.source_part_size)
    if source_part and source_part < 5 * MIB:
        p.error("--source-part-size must be 0 or at least 5MiB")
    workloads = {
        "small": Workload(
            "small", args.small_objects, _size(p, "--small-size", args.small_size)
        ),
        "large": Workload(
            "large",
            args.large_objects,
            _size(p, "--large-size", args.large_size),
            source_part or None,
        ),
    }
    args.workloads = [workloads[w] for w in args.workloads]
    if any(w.count < 1 or w.count > 1_000_000 for w in args.workloads):
        p.error("--small-objects and --large-objects: between 1 and 1,000,000")
    if any(w.size < 1 for w in args.workloads):
        p.error("--small-size and --large-size must be at least 1 byte")
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin is None:
        args.pin = len(cpus) >= 2 and shutil.which("taskset") is not None
    if args.pin:
        if len(cpus) < 2:
            p.error("--pin needs 2 or more CPUs")
        if shutil.which("taskset") is None:
            p.error("--pin needs taskset (util-linux)")
        # the tool on the first CPU; the endpoints on the second, the
        # destination on a third where there is one
        args.client_cpu, args.src_cpu = cpus[0], cpus[1]
        args.dst_cpu = cpus[2] if len(cpus) > 2 else cpus[1]
    else:
        args.client_cpu = args.src_cpu = args.dst_cpu = None
    return args


# -- the endpoints ----------------------------------------------------------------


def start_endpoint(
    name: str, args: argparse.Namespace, cpu: int | None, workdir: Path
) -> FakeS3Process:
    extra = ["--bucket", DST] if name == "destination" else ["--bucket", SRC]
    return FakeS3Process(
        [
            "--content-etags",
            "--latency-ms",
            str(args.latency_ms),
            *(["--checksums"] if args.checksums else []),
            *extra,
        ],
        log=workdir / f"fakes3-{name}.log",
        prefix=pinned(cpu),
    ).start()


def listed(client: Any, prefix: str) -> dict[str, int]:
    """Key -> size under ``prefix`` in the destination bucket."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=DST, Prefix=prefix
    ):
        found.update((o["Key"], int(o["Size"])) for o in page.get("Contents", []))
    return found


# -- the tools --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bench:
    """What every run shares."""

    args: argparse.Namespace
    source: FakeS3Process
    destination: FakeS3Process
    rclone: str | None
    client: Any  # boto3 on the destination: checks and clean-up
    workdir: Path
    env: dict[str, str]
    bulkcopy_env: dict[str, str]


def rclone_size(n: int) -> str:
    return f"{n // MIB}Mi" if n % MIB == 0 else f"{n}B"


def bulkcopy_size(n: int) -> str:
    return f"{n // MIB}MiB" if n % MIB == 0 else str(n)


def bulkcopy_argv(
    ctx: Bench, tool: str, wl: Workload, run_prefix: str, db: Path
) -> list[str]:
    """``bulkcopy copy --from`` the source prefix, streamed to the destination."""
    a = ctx.args
    tuned = (
        [
            "--concurrency",
            str(a.concurrency),
            "--part-size",
            bulkcopy_size(a.part_size),
            "--part-concurrency",
            str(a.part_concurrency),
            "--multipart-threshold",
            bulkcopy_size(a.multipart_threshold),
        ]
        if tool == "bulkcopy"
        else []
    )
    return [
        sys.executable,
        "-m",
        "engine",
        "copy",
        "--from",
        f"s3://{SRC}/{wl.prefix}",
        "--to",
        f"s3://{DST}/{run_prefix}",
        "--db",
        str(db),
        "--endpoint-url",
        ctx.destination.url,
        "--addressing-style",
        "path",
        "--source-endpoint-url",
        ctx.source.url,
        "--source-addressing-style",
        "path",
        "--transfer",
        "stream",
        *tuned,
        "--no-progress",
        "-q",
        *a.bulkcopy_args.split(),
    ]


def rclone_env(source_url: str, destination_url: str) -> dict[str, str]:
    """rclone's two remotes, A on the source endpoint and B on the
    destination's, from environment variables only (no config file)."""
    env = {"RCLONE_CONFIG": os.devnull}
    for remote, url in zip(REMOTES, (source_url, destination_url), strict=True):
        name = f"RCLONE_CONFIG_{remote}_"
        env.update(
            {
                name + "TYPE": "s3",
                name + "PROVIDER": "Other",
                name + "ENDPOINT": url,
                name + "ACCESS_KEY_ID": "test",
                name + "SECRET_ACCESS_KEY": "test",
                name + "REGION": "us-east-1",
                name + "FORCE_PATH_STYLE": "true",
                # provider Other defaults to ListObjects v1; bulkcopy lists with v2
                name + "LIST_VERSION": "2",
            }
        )
    return env


def rclone_argv(ctx: Bench, tool: str, wl: Workload, run_prefix: str) -> list[str]:
    """``rclone copy A:src/PREFIX B:dst/RUN/PREFIX``: rclone reads from one
    remote and writes to the other (no --server-side-across-configs)."""
    a = ctx.args
    assert ctx.rclone is not None
    c, k = str(a.concurrency), str(a.part_concurrency)
    tuned = (
        [
            "--transfers",
            c,
            "--checkers",
            c,
            "--s3-chunk-size",
            rclone_size(a.part_size),
            "--s3-upload-concurrency",
            k,
            "--multi-thread-streams",
            k,
            "--multi-thread-cutoff",
            rclone_size(a.multipart_threshold),
            "--s3-upload-cutoff",
            rclone_size(a.multipart_threshold),
            "--s3-no-check-bucket",
            "--no-check-dest",
        ]
        if tool == "rclone"
        else []
    )
    src = f"{REMOTES[0]}:{SRC}/{wl.prefix.rstrip('/')}"
    dst = f"{REMOTES[1]}:{DST}/{run_prefix}{wl.prefix.rstrip('/')}"
    return [
        ctx.rclone,
        "copy",
        src,
        dst,
        *tuned,
        "--stats",
        "0",
        *a.rclone_args.split(),
    ]


def command(
    ctx: Bench, tool: str, wl: Workload, run_prefix: str, db: Path
) -> tuple[list[str], dict[str, str], Path]:
    """The timed command copying ``wl`` to ``dst/RUN/``, its environment and
    its working directory."""
    if tool.startswith("bulkcopy"):
        argv = bulkcopy_argv(ctx, tool, wl, run_prefix, db)
        return argv, dict(ctx.bulkcopy_env), ctx.args.engine_root
    env = {**ctx.env, **rclone_env(ctx.source.url, ctx.destination.url)}
    return rclone_argv(ctx, tool, wl, run_prefix), env, REPO


def settings_text(args: argparse.Namespace, tool: str) -> str:
    """What a row's settings are, in a few words."""
    if tool.endswith("-defaults"):
        return "defaults"
    part, threshold = format_size(args.part_size), format_size(args.multipart_threshold)
    k = args.part_concurrency
    if tool == "bulkcopy":
        return f"c {args.concurrency}, {part} parts, {k} in flight, above {threshold}"
    return (
        f"{args.concurrency} transfers, {part} parts, {k} in flight per object, "
        f"above {threshold}"
    )


def template(argv: list[str], ctx: Bench, run_prefix: str, db: Path) -> str:
    """A command line with the run's URLs and paths as placeholders."""
    swaps = {
        ctx.source.url: "SRC_URL",
        ctx.destination.url: "DST_URL",
        str(db): "RUN.db",
        sys.executable: "python",
    }
    words = [swaps.get(w, w).replace(run_prefix, "RUN/") for w in argv]
    if ctx.rclone is not None and words and words[0] == ctx.rclone:
        words[0] = "rclone"
    return " ".join(words)


# -- one run ----------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One copy of a workload by one tool, as measured."""

    workload: str
    tool: str
    round: int
    objects: int
    bytes: int
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    objects_per_s: float = 0.0
    mib_per_s: float = 0.0
    cpu_s_per_gib: float = 0.0
    peak_rss_mb: float = 0.0
    tree_peak_rss_mb: float | None = None
    source_cpu_s: float = 0.0
    destination_cpu_s: float = 0.0
    source_requests: dict[str, int] = field(default_factory=dict)
    destination_requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    gets_in_flight: int = 0  # the most GetObject the source served at once
    # the most PutObject + UploadPart at the destination (counted once a body
    # has arrived: 1 without latency)
    puts_in_flight: int = 0
    bytes_received: int = 0  # by the destination endpoint, bodies of every request
    destination_objects: int = 0
    load_before: list[float] = field(default_factory=list)
    command: list[str] = field(default_factory=list)


def one_run(ctx: Bench, wl: Workload, tool: str, round_no: int) -> Run:
    """Copy ``wl`` with ``tool`` once, timed; then check the copy."""
    run_prefix = f"{tool}-r{round_no}/"
    run = Run(wl.name, tool, round_no, wl.count, wl.total)
    log = ctx.workdir / f"{wl.name}-{tool}-r{round_no}.log"
    db = ctx.workdir / f"{wl.name}-{tool}-r{round_no}.db"
    argv, env, cwd = command(ctx, tool, wl, run_prefix, db)
    run.command = argv
    run.load_before = [round(x, 2) for x in os.getloadavg()]
    ctx.source.reset_stats()
    ctx.destination.reset_stats()
    m = measured(argv, env, cwd, ctx.args.client_cpu, log, ctx.args.timeout)
    src, dst = ctx.source.stats(), ctx.destination.stats()
    run.wall_s = round(m["wall_s"], 3)
    run.cpu_s = round(m["cpu_s"], 3)
    run.objects_per_s = round(wl.count / m["wall_s"], 1)
    run.mib_per_s = round(wl.total / MIB / m["wall_s"], 1)
    run.cpu_s_per_gib = round(m["cpu_s"] / (wl.total / GIB), 3)
    run.peak_rss_mb = round(m["peak_rss"] / 1e6, 1)
    if m.get("tree_peak_rss"):
        run.tree_peak_rss_mb = round(m["tree_peak_rss"] / 1e6, 1)
    run.source_cpu_s = round(src["cpu_seconds"], 3)
    run.destination_cpu_s = round(dst["cpu_seconds"], 3)
    run.source_requests = src["requests"]
    run.destination_requests = dst["requests"]
    errors = {
        f"{side} {code}": n
        for side, stats in (("source", src), ("destination", dst))
        for code, n in stats["errors"].items()
    }
    run.errors = errors
    run.gets_in_flight = src["max_in_flight"].get("GetObject", 0)
    run.puts_in_flight = max(
        dst["max_in_flight"].get("PutObject", 0),
        dst["max_in_flight"].get("UploadPart", 0),
    )
    run.bytes_received = dst["bytes_received"]
    if m["timed_out"]:
        run.problems.append(f"timed out after {ctx.args.timeout:g} s")
    elif m["returncode"] != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        run.problems.append(f"exited {m['returncode']}: {tail}")
    server_side = sum(
        stats["requests"].get(op, 0)
        for stats in (src, dst)
        for op in ("CopyObject", "UploadPartCopy")
    )
    if server_side:
        run.problems.append(f"{server_side} server-side copies (not a stream)")
    if run.bytes_received < wl.total:
        run.problems.append(
            f"the destination received {run.bytes_received:,} bytes, not {wl.total:,}"
        )
    unexpected = {
        k: n for k, n in errors.items() if k.split(" ", 1)[1] not in EXPECTED_ERRORS
    }
    if unexpected:
        run.problems.append(f"the endpoints answered errors: {unexpected}")
    found = listed(ctx.client, run_prefix)
    run.destination_objects = len(found)
    expected = {f"{run_prefix}{k}": wl.size for k in wl.object_keys()}
    if found != expected:
        missing = len(expected.keys() - found.keys())
        extra = len(found.keys() - expected.keys())
        wrong = sum(1 for k, n in found.items() if k in expected and n != wl.size)
        run.problems.append(
            f"destination holds {len(found)} objects ({missing} missing, {extra} "
            f"unexpected, {wrong} of the wrong size)"
        )
    delete_keys(ctx.client, list(found))  # keep the destination's store small
    run.ok = not run.problems
    return run


# -- summary ----------------------------------------------------------------------


def summarize(runs: list[Run]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per workload, per tool: medians over the checked runs, and each
    bulkcopy row's ratios to the rclone row of the same settings."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in dict.fromkeys(r.workload for r in runs):
        rows: dict[str, dict[str, Any]] = {}
        for tool in dict.fromkeys(r.tool for r in runs if r.workload == wl):
            mine = [r for r in runs if r.workload == wl and r.tool == tool]
            good = [r for r in mine if r.ok]
            row: dict[str, Any] = {
                "rounds": len(mine),
                "runs_ok": len(good),
                "checks_ok": len(good) == len(mine),
                "source_requests": requests_text([r.source_requests for r in mine]),
                "destination_requests": requests_text(
                    [r.destination_requests for r in mine]
                ),
                "gets_in_flight": spread([r.gets_in_flight for r in mine]),
                "puts_in_flight": spread([r.puts_in_flight for r in mine]),
                "problems": [p for r in mine for p in r.problems],
            }
            if good:
                row.update(
                    medians(
                        good,
                        {
                            "objects_per_s": 1,
                            "mib_per_s": 1,
                            "wall_s": 3,
                            "cpu_s": 3,
                            "cpu_s_per_gib": 3,
                            "peak_rss_mb": 1,
                            "source_cpu_s": 2,
                            "destination_cpu_s": 2,
                        },
                        ranged=("objects_per_s", "mib_per_s"),
                    )
                )
            rows[tool] = row
        for tool, row in rows.items():
            base = rows.get(BASELINE.get(tool, ""), {})
            both = "mib_per_s_median" in row and "mib_per_s_median" in base
            row["compared_with"] = BASELINE.get(tool) if both else None
            row["rate_x_rclone"] = (
                round(row["mib_per_s_median"] / base["mib_per_s_median"], 2)
                if both
                else None
            )
            row["cpu_x_rclone"] = (
                round(row["cpu_s_per_gib_median"] / base["cpu_s_per_gib_median"], 2)
                if both and base["cpu_s_per_gib_median"]
                else None
            )
        out[wl] = rows
    return out


COLUMNS = (
    "tool",
    "settings",
    "objects/s",
    "MiB/s",
    "min-max",
    "x rclone",
    "CPU s/GiB",
    "CPU x rclone",
    "peak RSS MB",
    "wall s",
    "src/dst CPU s",
    "GETs in flight",
    "source requests",
    "destination requests",
    "checks ok",
)


def _rate(value: float) -> str:
    """A rate: whole numbers from 100 up, one decimal below."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _row(tool: str, s: dict[str, Any], settings: str, rate: str) -> list[str]:
    def num(key: str, fmt: str) -> str:
        value = s.get(key)
        return "-" if value is None else fmt.format(value)

    low, high = s.get(f"{rate}_min"), s.get(f"{rate}_max")
    spread = "-"
    if low is not None and high is not None and s["rounds"] > 1:
        spread = (
            _rate(low) if _rate(low) == _rate(high) else f"{_rate(low)}-{_rate(high)}"
        )
    servers = (
        f"{s['source_cpu_s_median']:.2f}/{s['destination_cpu_s_median']:.2f}"
        if "source_cpu_s_median" in s
        else "-"
    )
    return [
        tool,
        settings,
        _rate(s["objects_per_s_median"]) if "objects_per_s_median" in s else "-",
        _rate(s["mib_per_s_median"]) if "mib_per_s_median" in s else "-",
        spread,
        num("rate_x_rclone", "{:.2f}"),
        num("cpu_s_per_gib_median", "{:.2f}"),
        num("cpu_x_rclone", "{:.2f}"),
        num("peak_rss_mb_median", "{:.0f}"),
        num("wall_s_median", "{:.2f}"),
        servers,
        s["gets_in_flight"],
        s["source_requests"] or "-",
        s["destination_requests"] or "-",
        "yes" if s["checks_ok"] else f"NO ({s['runs_ok']}/{s['rounds']})",
    ]


def table(rows: dict[str, dict[str, Any]], args: argparse.Namespace, wl: str) -> str:
    """A Markdown table of one workload, one row per tool; ``min-max`` is of
    objects/s for the small workload and of MiB/s for the large one."""
    rate = "objects_per_s" if wl == "small" else "mib_per_s"
    body = [_row(t, s, settings_text(args, t), rate) for t, s in rows.items()]
    head = list(COLUMNS)
    head[4] = "min-max " + ("objects/s" if wl == "small" else "MiB/s")
    return markdown(head, body)


# -- the benchmark ----------------------------------------------------------------


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    wants_rclone = any(t.startswith("rclone") for t in args.tools)
    bins = find_binaries(["rclone"] if wants_rclone else [], tools.PEERS_VENV)
    env = tools.environment(workdir)
    bc_env = {**env, "PYTHONPATH": str(args.engine_root), **args.bulkcopy_env}
    wanted = [
        t for t in ("bulkcopy", "rclone") if any(x.startswith(t) for x in args.tools)
    ]
    found_versions = versions(wanted, bins, bc_env, args.engine_root)
    load_start = [round(x, 2) for x in os.getloadavg()]
    compile_engine(args.engine_root)
    engine_before = engine_version(args.engine_root)
    runs: list[Run] = []
    commands: dict[str, dict[str, str]] = {}
    with contextlib.ExitStack() as stack:
        source = start_endpoint("source", args, args.src_cpu, workdir)
        stack.callback(source.stop)
        destination = start_endpoint("destination", args, args.dst_cpu, workdir)
        stack.callback(destination.stop)
        for wl in args.workloads:
            say(f"seeding {wl.describe()} into the source at {source.url}")
            source.seed(*wl.seed())
        ctx = Bench(
            args,
            source,
            destination,
            bins.rclone,
            s3_client(destination.url),
            workdir,
            env,
            bc_env,
        )
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(args.tools)
            for wl in args.workloads:
                for tool in args.tools[shift:] + args.tools[:shift]:
                    run = one_run(ctx, wl, tool, round_no)
                    runs.append(run)
                    commands.setdefault(wl.name, {})[tool] = template(
                        run.command,
                        ctx,
                        f"{tool}-r{round_no}/",
                        workdir / f"{wl.name}-{tool}-r{round_no}.db",
                    )
                    say(
                        f"round {round_no} {wl.name} {tool}: {run.wall_s:.2f} s, "
                        f"{_rate(run.objects_per_s)} objects/s, "
                        f"{run.mib_per_s:,.1f} MiB/s, "
                        f"{run.cpu_s_per_gib:.2f} CPU s/GiB, "
                        f"{run.peak_rss_mb:.0f} MB"
                        + ("" if run.ok else f"; FAILED: {'; '.join(run.problems)}")
                    )
    per_workload = summarize(runs)
    for wl_name, rows in per_workload.items():
        for tool, row in rows.items():
            row["settings"] = settings_text(args, tool)
            row["command"] = commands[wl_name][tool]
            row["version"] = found_versions.get(tool.removesuffix("-defaults"))
            row["runs"] = [
                asdict(r) for r in runs if r.workload == wl_name and r.tool == tool
            ]
    return {
        "benchmark": "streamed copy between two S3 endpoints",
        **provenance(
            "bench/stream.py",
            load_start,
            args.engine_root,
            engine_before,
            args.bulkcopy_env,
        ),
        "settings": {
            "workloads": {
                w.name: {
                    "objects": w.count,
                    "size": w.size,
                    "source_part_size": w.source_part_size,
                }
                for w in args.workloads
            },
            "rounds": args.rounds,
            "tools": args.tools,
            "concurrency": args.concurrency,
            "part_size": args.part_size,
            "part_concurrency": args.part_concurrency,
            "multipart_threshold": args.multipart_threshold,
            "latency_ms": args.latency_ms,
            "checksums": args.checksums,
            "pinned": {
                "client_cpu": args.client_cpu,
                "source_cpu": args.src_cpu,
                "destination_cpu": args.dst_cpu,
            }
            if args.pin
            else None,
            "rclone": bins.rclone,
        },
        "workloads": per_workload,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"command: {' '.join(['python', 'bench/stream.py', *sys.argv[1:]])}")
    try:
        with workdir_for(args.keep, "bench-stream-") as workdir:
            result = run_bench(args, workdir)
    except BenchError as exc:
        print(f"stream.py: {exc}", file=sys.stderr)
        return 2
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    pin = (
        f"tool on CPU {args.client_cpu}, source endpoint on CPU {args.src_cpu}, "
        f"destination endpoint on CPU {args.dst_cpu}"
        if args.pin
        else "not pinned"
    )
    print(
        f"{args.rounds} round(s), fakes3 latency {args.latency_ms:g} ms on both "
        f"endpoints{', objects with CRC64NVME checksums' if args.checksums else ''}, "
        f"{pin}"
    )
    if any(t.startswith("bulkcopy") for t in args.tools):
        env = " ".join(f"{k}={v}" for k, v in args.bulkcopy_env.items())
        print(
            f"bulkcopy from {args.engine_root} at {result['engine']['version']}"
            + (f", with {env}" if env else "")
        )
    for wl in args.workloads:
        rows = result["workloads"][wl.name]
        print(f"\n{wl.name}: {wl.describe()}\n")
        print(table(rows, args, wl.name))
        print()
        for tool, row in rows.items():
            print(f"- {tool}: `{row['command']}`")
    print(
        "\n(medians over rounds; x rclone: bulkcopy's MiB/s over the rclone row "
        f"with the same settings; every run in {args.json})"
    )
    failed = [
        f"{wl} {tool}"
        for wl, rows in result["workloads"].items()
        for tool, row in rows.items()
        if not row["checks_ok"]
    ]
    if failed:
        print(f"checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
