"""Chaos: `bulkcopy run` killed with -9 at random moments, several times per
job, and resumed until done, against a real S3 server process (moto).

Whatever the moments, the end is the same: every object copied exactly as
the source, each manifest row reported exactly once, no multipart upload
left open, and the job's figures add up."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from tests.acceptance.conftest import Cli
from tests.acceptance.test_cli import _report_rows
from tests.helpers import seed, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _watched(
    proc: subprocess.Popen[str],
) -> tuple[threading.Event, list[str], threading.Thread]:
    """Read a run's log (stderr) as it comes: set the event once the run
    has started copying (``run_started``)."""
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "run_started" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return started, lines, reader


def kill_until_done(
    cli: Cli,
    job_id: str,
    rng: random.Random,
    after_kill: Callable[[], None] = lambda: None,
) -> None:
    """`bulkcopy run JOB_ID`, killed -9 at a random moment, again and again
    until a run finishes (exit 0); at least two kills; ``after_kill`` checks
    what each kill left."""
    kills = 0
    for _round in range(40):
        proc = cli.popen("run", job_id, "--concurrency", "8", "--part-concurrency", "4")
        started, lines, reader = _watched(proc)
        # start-up (the imports and the checks: 1 s or more, with the
        # machine's load), then 0-1.2 s of copying at moto's pace; an early
        # kill now and then lands in the start-up itself
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if started.wait(0.02):
                break
        pause = rng.uniform(0.0, 1.2) if rng.random() < 0.85 else 0.0
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reader.join()
            kills += 1
            after_kill()
            continue
        proc.wait()
        reader.join()
        assert proc.returncode == 0, "".join(lines)
        break
    else:
        pytest.fail("the job did not finish in 40 runs")
    assert kills >= 2, "the job finished before it was killed twice: make it longer"


# in a parallel run the kill -9 tests make two xdist groups, each run on one
# worker, one test after another: their rounds slow down with the machine's
# load, so no more than two run at once (tests/acceptance/test_chaos_faults_cli.py
# shares chaos-b)
@pytest.mark.xdist_group("chaos-a")
@pytest.mark.parametrize("seed_value", [7, 2026])
def test_kill_9_at_random_moments_then_resume_until_done(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path, seed_value: int
) -> None:
    rng = random.Random(seed_value)
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    small = [f"small/{i:04d}" for i in range(600)]
    bodies = seed(moto, src, small)
    c = moto.client()
    big = {f"big/{i}": bytes([65 + i]) * (11 * MIB + i) for i in range(3)}
    for key, body in big.items():
        c.put_object(Bucket=src, Key=key, Body=body)
    bodies.update(big)
    keys = list(bodies)
    rng.shuffle(keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
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

    kill_until_done(cli, job_id, rng)

    # every object copied exactly as the source
    for key, body in bodies.items():
        got = c.get_object(Bucket=dst, Key=f"c/{key}")["Body"].read()
        assert got == body, key
    listed = c.list_objects_v2(Bucket=dst, Prefix="c/", MaxKeys=1000)
    assert listed["KeyCount"] == len(bodies)
    # no multipart upload left open
    uploads = c.list_multipart_uploads(Bucket=dst).get("Uploads", [])
    assert uploads == [], [u["Key"] for u in uploads]
    # each row reported exactly once
    rep = cli("report", job_id, "--out", "out")
    assert rep.returncode == 0, rep.stderr
    rows = _report_rows(cli.cwd / "out", job_id)
    assert sorted(unquote_plus(r[1]) for r in rows) == sorted(keys)
    assert {r[3] for r in rows} == {"succeeded"}
    # the figures add up
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == len(bodies)
    assert status["tasks"] == len(bodies)
    assert status["bytes"] == sum(len(b) for b in bodies.values())


@pytest.mark.xdist_group("chaos-b")
@pytest.mark.parametrize("seed_value", [11])
def test_kill_9_during_a_move_never_deletes_a_source_without_its_copy(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path, seed_value: int
) -> None:
    """`bulkcopy move` killed -9 at random moments: after every kill, each
    source already gone has its exact copy at the destination; resumed
    until done, every source is gone, every copy is there, each row is
    reported once as succeeded with its source deleted."""
    rng = random.Random(seed_value)
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    bodies = seed(moto, src, [f"small/{i:04d}" for i in range(300)])
    c = moto.client()
    big = {f"big/{i}": bytes([97 + i]) * (11 * MIB + i) for i in range(2)}
    for key, body in big.items():
        c.put_object(Bucket=src, Key=key, Body=body)
    bodies.update(big)
    keys = list(bodies)
    rng.shuffle(keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    sub = cli(
        "submit",
        str(manifest),
        "--to",
        f"s3://{dst}/m/",
        "--delete-source",
        "--multipart-threshold",
        "5MiB",
        "--part-size",
        "5MiB",
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()

    def sources_left() -> set[str]:
        pages = c.get_paginator("list_objects_v2").paginate(Bucket=src)
        return {o["Key"] for p in pages for o in p.get("Contents", [])}

    def no_source_lost() -> None:
        for key in set(bodies) - sources_left():
            got = c.get_object(Bucket=dst, Key=f"m/{key}")["Body"].read()
            assert got == bodies[key], f"{key} deleted without its copy"

    kill_until_done(cli, job_id, rng, after_kill=no_source_lost)

    assert sources_left() == set()
    no_source_lost()
    assert c.list_multipart_uploads(Bucket=dst).get("Uploads", []) == []
    rep = cli("report", job_id, "--out", "out")
    assert rep.returncode == 0, rep.stderr
    rows = _report_rows(cli.cwd / "out", job_id)
    assert sorted(unquote_plus(r[1]) for r in rows) == sorted(keys)
    assert {r[3] for r in rows} == {"succeeded"}
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == status["sources_deleted"] == len(bodies)
