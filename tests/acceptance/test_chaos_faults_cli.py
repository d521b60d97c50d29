"""Chaos with faults: `bulkcopy run` killed -9 again and again while an HTTP
fault proxy (tests/faultproxy.py) in front of a real S3 server (moto) answers
about 30 % of the engine's requests with a fault: 503 SlowDown, 500
InternalError, an error inside a 200 and an empty 200 (where S3 does that:
CopyObject, UploadPartCopy, CompleteMultipartUpload), a reset before or after
the server acted, a 2 s stall.  Every operation is faulted, the start-up
check's ``.bulkcopy-preflight-`` uploads included.

Whatever happens, the end is the same once a last run without faults has
finished the job (issue 17, "Nothing left open"): every object copied exactly,
with its metadata, content type and tags; each manifest row reported once as
succeeded; the job complete; and not one multipart upload left open on the
destination.

Each seed's fault decisions are fixed (a fault is drawn from the seed, the
operation, the key and how many times that request was seen); the moments of
the kills are not.  The seeds run are printed; ``BULKCOPY_CHAOS_SEEDS="1,2,3"``
replaces the default list (read at import: the tests' environment is wiped).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.acceptance.conftest import Cli
from tests.acceptance.test_cli import _report_rows
from tests.faultproxy import (
    AfterUpstream,
    Delay,
    Fault,
    FaultProxy,
    Request,
    Reset,
    Respond,
)
from tests.faults import EMBEDDED_ERROR, SLOW_DOWN
from tests.helpers import write_manifest
from tests.servers import S3Server

# in a parallel run, with the move test of test_chaos_cli.py on one worker, one
# after another (their rounds slow down with the machine's load)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("chaos-b")]

MIB = 1024 * 1024
RATE = 0.3  # share of the engine's requests that get a fault
PREFLIGHT = ".bulkcopy-preflight-"
# S3 may answer these with 200 and an error (or nothing) in the body
EMBEDDING = frozenset({"CopyObject", "UploadPartCopy", "CompleteMultipartUpload"})
INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code>"
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"</Error>"
)
SEEDS = [
    int(s)
    for s in os.environ.get("BULKCOPY_CHAOS_SEEDS", "17,2026").split(",")
    if s.strip()
]
MAX_KILLS = 4
RUN_TIMEOUT = 120.0  # seconds a run that is not killed may take


def fault_for(seed: int, req: Request) -> Fault | None:
    """The fault this request gets: drawn from the seed and the request's
    operation, key and count, so a seed always decides alike."""
    rng = random.Random(f"{seed}/{req.operation}/{req.key}/{req.n}")
    if rng.random() >= RATE:
        return None
    choices: list[Fault] = [
        Respond(503, SLOW_DOWN),
        Respond(500, INTERNAL_ERROR),
        Reset(),
        AfterUpstream(Reset()),
        Delay(2.0),
    ]
    if req.operation in EMBEDDING:
        choices += [
            Respond(200, EMBEDDED_ERROR),
            Respond(200, b""),
            AfterUpstream(Respond(200, b"")),
        ]
    return rng.choice(choices)


def describe(fault: Fault) -> str:
    """A short name for a fault, for the evidence printed on failure."""
    if isinstance(fault, Respond):
        code = fault.body.partition(b"<Code>")[2].partition(b"<")[0].decode()
        return f"{fault.status} {code or 'empty'}"
    if isinstance(fault, AfterUpstream):
        return f"after-upstream({describe(fault.fault)})"
    if isinstance(fault, Delay):
        return f"stall {fault.seconds}s"
    return type(fault).__name__


Event = tuple[int, str, str | None, int, str | None]  # run, op, key, n, fault


@dataclass
class Chaos:
    """The seeded fault decisions, and every request seen, run by run."""

    seed: int
    on: bool = True
    run: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[Event] = field(default_factory=list)

    def decide(self, req: Request) -> Fault | None:
        fault = fault_for(self.seed, req) if self.on else None
        with self.lock:
            self.seen.append(
                (
                    self.run,
                    req.operation,
                    req.key,
                    req.n,
                    describe(fault) if fault else None,
                )
            )
        return fault

    @property
    def injected(self) -> list[Event]:
        with self.lock:
            return [e for e in self.seen if e[4] is not None]

    @property
    def ops(self) -> set[str]:
        with self.lock:
            return {e[1] for e in self.seen}

    def about(self, key: str) -> list[Event]:
        with self.lock:
            return [e for e in self.seen if e[2] == key]


@dataclass
class Run:
    """One `bulkcopy run`: when it started and ended, and how."""

    index: int
    started: datetime
    ended: datetime | None = None
    killed: bool = False
    returncode: int | None = None
    stderr: str = ""


def run_once(
    cli: Cli, job_id: str, chaos: Chaos, runs: list[Run], kill_after: float | None
) -> Run:
    """`bulkcopy run JOB_ID`, killed -9 after ``kill_after`` seconds unless
    it finished first."""
    chaos.run = len(runs)
    run = Run(len(runs), datetime.now(UTC))
    runs.append(run)
    proc = cli.popen(
        "run",
        job_id,
        "--concurrency",
        "8",
        "--part-concurrency",
        "4",
        "--max-attempts",
        "20",
    )
    limit = RUN_TIMEOUT if kill_after is None else kill_after
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        run.killed = True
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    run.ended = datetime.now(UTC)
    run.returncode = proc.returncode
    run.stderr = err
    if run.killed and kill_after is None:
        pytest.fail(f"run {run.index} did not finish in {RUN_TIMEOUT:.0f} s")
    return run


def kill_until_done(
    cli: Cli, job_id: str, chaos: Chaos, rng: random.Random, runs: list[Run]
) -> None:
    """Runs under faults, killed -9 at random moments (2 to ``MAX_KILLS``
    times), then one left to finish: every run that ends by itself must end
    with exit 0."""
    kills = 0
    while kills < MAX_KILLS:
        # start-up (about 1 s, more under faults), then a few seconds of copying
        run = run_once(cli, job_id, chaos, runs, rng.uniform(1.5, 4.5))
        if run.killed:
            kills += 1
            continue
        assert run.returncode == 0, (run.index, run.stderr[-4000:])
        break
    else:
        run = run_once(cli, job_id, chaos, runs, None)
        assert run.returncode == 0, (run.index, run.stderr[-4000:])
    assert kills >= 2, "the job finished before it was killed twice: make it longer"


def open_uploads(c: Any, bucket: str) -> list[dict[str, Any]]:
    """Every multipart upload open on ``bucket``."""
    out: list[dict[str, Any]] = []
    markers: dict[str, str] = {}
    while True:
        page = c.list_multipart_uploads(Bucket=bucket, **markers)
        out.extend(page.get("Uploads", []))
        if not page.get("IsTruncated"):
            return out
        markers = {
            "KeyMarker": page["NextKeyMarker"],
            "UploadIdMarker": page["NextUploadIdMarker"],
        }


def evidence(uploads: list[dict[str, Any]], chaos: Chaos, runs: list[Run]) -> str:
    """Each open upload with every request its key got (run, number, fault),
    and each run's end and warnings."""
    lines = [f"{len(uploads)} multipart upload(s) left open (seed {chaos.seed}):"]
    for u in uploads:
        key = u["Key"]
        lines.append(f"- {key} (upload {u['UploadId'][:20]}…)")
        for run_index, op, _key, n, what in chaos.about(key):
            lines.append(f"    run {run_index}: {op} #{n}: {what or 'no fault'}")
    for run in runs:
        how = "killed -9" if run.killed else f"exit {run.returncode}"
        lines.append(f"run {run.index}: started {run.started:%H:%M:%S.%f}, {how}")
        warnings = [ln for ln in run.stderr.splitlines() if "warning" in ln]
        lines += [f"    {ln[:300]}" for ln in warnings[:5]]
    return "\n".join(lines)


@pytest.mark.parametrize("seed_value", SEEDS)
def test_kill_9_under_http_faults_leaves_nothing_open(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path, seed_value: int
) -> None:
    """Killed -9 under HTTP faults, then finished cleanly: exact copies, one
    report row each, and no multipart upload left open."""
    print(f"chaos seed {seed_value}")
    started = time.monotonic()
    rng = random.Random(seed_value)
    c = moto.client()
    src, dst = moto.new_bucket(), moto.new_bucket()
    bodies: dict[str, bytes] = {}
    for i in range(200):
        key = f"small/{i:04d}"
        bodies[key] = f"body of {key} {rng.random()}".encode()
    for i in range(3):
        bodies[f"big/{i}"] = rng.randbytes(11 * MIB + i)
    content_type = {k: f"application/x-chaos-{i % 3}" for i, k in enumerate(bodies)}
    for key, body in bodies.items():
        c.put_object(
            Bucket=src,
            Key=key,
            Body=body,
            Metadata={"k": key},
            ContentType=content_type[key],
            Tagging="t=1&u=v",
        )
    keys = list(bodies)
    rng.shuffle(keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])

    chaos = Chaos(seed_value, on=False)
    runs: list[Run] = []
    with FaultProxy(moto, chaos.decide) as proxy:
        cli = cli_for(proxy.server)
        sub = cli(
            "submit",
            str(manifest),
            "--to",
            f"s3://{dst}/c/",
            "--multipart-threshold",
            "5MiB",
            "--part-size",
            "5MiB",
        )
        assert sub.returncode == 0, sub.stderr
        job_id = sub.stdout.strip()

        chaos.on = True
        kill_until_done(cli, job_id, chaos, rng, runs)
        chaos.on = False
        last = run_once(cli, job_id, chaos, runs, None)
        assert last.returncode == 0, last.stderr[-4000:]
        uploads = open_uploads(c, dst)
        report = evidence(uploads, chaos, runs)
        rep = cli("report", job_id, "--out", "out")
        status_out = cli("status", job_id, "--json")

    print(
        f"chaos seed {seed_value}: {len(runs)} runs, "
        f"{sum(r.killed for r in runs)} kills, {len(chaos.injected)} faults "
        f"({sum(1 for e in chaos.injected if PREFLIGHT in (e[2] or ''))} on "
        f"start-up checks) over {sum(proxy.requests.values())} requests, "
        f"{time.monotonic() - started:.1f} s"
    )
    by_op = Counter(f"{e[1]}: {e[4]}" for e in chaos.injected)
    print("\n".join(f"  {n:4d} {what}" for what, n in sorted(by_op.items())))
    # the engine's requests went through the proxy, and got faults
    assert {"CopyObject", "UploadPartCopy", "CompleteMultipartUpload"} <= chaos.ops
    assert len(chaos.injected) > 0
    # not one multipart upload left open, start-up checks' included
    assert uploads == [], report
    # every object copied exactly, with its metadata, content type and tags
    for key, body in bodies.items():
        got = c.get_object(Bucket=dst, Key=f"c/{key}")
        assert got["Body"].read() == body, key
        assert got["Metadata"] == {"k": key}, key
        assert got["ContentType"] == content_type[key], key
        tags = c.get_object_tagging(Bucket=dst, Key=f"c/{key}")["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {"t": "1", "u": "v"}, key
    listed = c.list_objects_v2(Bucket=dst, Prefix="c/", MaxKeys=1000)
    assert listed["KeyCount"] == len(bodies)
    # each row reported exactly once, as succeeded
    assert rep.returncode == 0, rep.stderr
    rows = _report_rows(cli.cwd / "out", job_id)
    assert sorted(unquote_plus(r[1]) for r in rows) == sorted(keys)
    assert {r[3] for r in rows} == {"succeeded"}
    # the job is complete, nothing pending or running
    assert status_out.returncode == 0, status_out.stderr
    status = json.loads(status_out.stdout)
    assert status["status"] == "complete"
    assert status["counts"]["pending"] == status["counts"]["running"] == 0
    assert status["counts"]["succeeded"] == status["tasks"] == len(bodies)
    assert status["bytes"] == sum(len(b) for b in bodies.values())
