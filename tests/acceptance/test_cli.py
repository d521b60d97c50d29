"""The CLI as a user types it: commands, exit codes, messages, crash and resume."""

from __future__ import annotations

import csv
import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from tests.acceptance.conftest import REPO_ROOT, Cli
from tests.helpers import seed, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.acceptance


def _report_rows(out: Path, job_id: str) -> list[list[str]]:
    base = out / f"job-{job_id}"
    manifest = json.loads((base / "manifest.json").read_text())
    assert manifest["Format"] == "Report_CSV_20180820"
    rows: list[list[str]] = []
    for result in manifest["Results"]:
        path = out / result["Key"]
        with path.open(newline="", encoding="utf-8") as fh:
            rows.extend(csv.reader(fh))
    return rows


def _wait_for(cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_readme_example_copies_and_reports(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """The README recipe: seed the example, `bulkcopy copy`, `bulkcopy report`."""
    cli = cli_for(moto)
    seeded = cli.__class__(cli.cwd, dict(cli.env, AWS_ENDPOINT_URL=moto.endpoint))
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "manifests" / "seed.py"),
            str(REPO_ROOT / "manifests" / "example.csv"),
            "--create-bucket",
            "bulkcopy-example-dst",
        ],
        env=seeded.env,
        check=True,
        capture_output=True,
    )
    res = cli(
        "copy",
        str(REPO_ROOT / "manifests" / "example.csv"),
        "--to",
        "s3://bulkcopy-example-dst/copied/",
    )
    assert res.returncode == 0, res.stderr
    job_id = json.loads(cli("jobs", "--json").stdout.splitlines()[0])["job_id"]

    rep = cli("report", job_id, "--out", "reports")
    assert rep.returncode == 0, rep.stderr
    assert "succeeded  8" in rep.stdout
    rows = _report_rows(cli.cwd / "reports", job_id)
    assert len(rows) == 8
    assert all(r[3] == "succeeded" and r[5] == "200" for r in rows)
    listed = moto.client().list_objects_v2(
        Bucket="bulkcopy-example-dst", Prefix="copied/"
    )["KeyCount"]
    assert listed == 8


def test_submit_prints_only_the_job_id_and_status_json_counts(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`submit` prints the id for scripts; `run` copies; `status --json` counts."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b", "c"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "abca"])

    sub = cli("submit", str(manifest), "--to", f"s3://{dst}/p")
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()
    assert len(job_id.split()) == 1

    run = cli("run", job_id)
    assert run.returncode == 0, run.stderr
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == 3
    assert status["duplicate_rows"] == 1
    assert status["bytes"] > 0
    assert cli("status", job_id).returncode == 0
    assert job_id in cli("jobs").stdout


def test_malformed_manifest_names_file_and_line_and_writes_nothing(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A bad row fails submit: exit 2, `file:line: reason`, no traceback, no job."""
    cli = cli_for(moto)
    manifest = tmp_path / "bad.csv"
    manifest.write_text("b,key1\nb,key2\nb,\nb,key4\n")

    res = cli("submit", str(manifest), "--to", "s3://dst")

    assert res.returncode == 2
    assert f"{manifest}:3: empty key" in res.stderr
    assert "Traceback" not in res.stderr
    assert cli("jobs", "--json").stdout.strip() == ""

    skip = cli("submit", str(manifest), "--to", "s3://dst", "--skip-invalid")
    assert skip.returncode == 0, skip.stderr
    status = json.loads(cli("status", skip.stdout.strip(), "--json").stdout)
    assert status["counts"] == {
        "pending": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 1,
        "skipped": 0,
    }


def test_missing_bucket_exits_3_with_one_message(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A missing destination bucket: exit 3, one clear line, no traceback."""
    cli = cli_for(moto)
    src = moto.new_bucket()
    seed(moto, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])

    res = cli("copy", str(manifest), "--to", "s3://bulkcopy-missing-dst/x/")

    assert res.returncode == 3
    assert "destination bucket 'bulkcopy-missing-dst' does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_destination_bucket_of_a_listing_exits_3(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """`copy --from` copies while it lists: a missing destination found by
    the run's start-up check ends the listing too (exit 3, one clear line)."""
    cli = cli_for(moto)
    src = moto.new_bucket()
    seed(moto, src, ["p/a", "p/b"])
    res = cli("copy", "--from", f"s3://{src}/p/", "--to", "s3://bulkcopy-missing-dst/")
    assert res.returncode == 3, res.stderr
    assert "destination bucket 'bulkcopy-missing-dst' does not exist" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("command", ["copy", "submit"])
def test_missing_source_bucket_of_a_listing_exits_3(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], command: str
) -> None:
    """`--from s3://missing-bucket/`: the job cannot start (exit 3, as the
    README's table says for a missing bucket), not a usage error (2)."""
    cli = cli_for(moto)
    dst = moto.new_bucket()
    res = cli(command, "--from", "s3://bulkcopy-missing-src/p/", "--to", f"s3://{dst}/")
    assert res.returncode == 3, res.stderr
    assert "s3://bulkcopy-missing-src/p/: cannot list: NoSuchBucket" in res.stderr
    assert "Traceback" not in res.stderr


def test_some_failed_tasks_exit_1_and_failed_only_report(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Missing source objects: exit 1, and `report --failed-only` lists just them."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["here"])
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, "here", None), (src, "gone 1", None)]
    )
    res = cli("copy", str(manifest), "--to", f"s3://{dst}")
    assert res.returncode == 1, res.stderr
    job_id = json.loads(cli("jobs", "--json").stdout.splitlines()[0])["job_id"]
    # the run ends with the failures by error code; status shows them too
    ends = [
        json.loads(line)
        for line in res.stderr.splitlines()
        if '"errors_by_code"' in line
    ]
    assert [e["failed"] for e in ends] == [{"NoSuchKey": 1}]
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["errors"] == {"failed": {"NoSuchKey": 1}}
    text = cli("status", job_id).stdout
    assert "failed by error code" in text
    assert "NoSuchKey" in text
    # --watch on a finished job: shown once, then it returns
    watched = cli("status", "--watch", job_id, "--json", "--every", "0.2", timeout=30)
    assert watched.returncode == 0
    assert len(watched.stdout.splitlines()) == 1

    rep = cli("report", job_id, "--out", "out", "--failed-only")
    assert rep.returncode == 0
    rows = _report_rows(cli.cwd / "out", job_id)
    assert [(unquote_plus(r[1]), r[3], r[4], r[5]) for r in rows] == [
        ("gone 1", "failed", "NoSuchKey", "404")
    ]


def test_a_job_that_keeps_failing_is_given_up_and_resumed_after_the_fix(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """--fail-burst: the run stops with exit 1 and the reason, the job is
    `failed` in `status`; `resume` after the fix copies the rest."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"k{i:02d}" for i in range(40)]
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    res = cli(
        "copy",
        str(manifest),
        "--to",
        f"s3://{dst}",
        "--no-stat-source",
        "--concurrency",
        "1",
        "--fail-burst",
        "5",
    )
    assert res.returncode == 1, res.stderr
    job_id = json.loads(cli("jobs", "--json").stdout.splitlines()[0])["job_id"]
    assert f"job {job_id} failed: 5 tasks in a row failed with NoSuchKey" in res.stderr
    assert f"bulkcopy resume {job_id}" in res.stderr
    assert "Traceback" not in res.stderr
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "failed"
    assert status["counts"]["failed"] == 5

    seed(moto, src, keys)
    res = cli("resume", job_id)
    assert res.returncode == 1, res.stderr  # the 5 recorded failures stay
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == 35
    assert status["counts"]["failed"] == 5
    assert status["counts"]["pending"] == 0


def test_a_nightly_rerun_with_skip_existing_copies_only_what_changed(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """The README's incremental run: the same listing copied twice with
    --skip-existing same-etag; the second run copies the one changed object,
    skips the rest, and exits 0."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"data/f{i}.txt" for i in range(6)]
    seed(moto, src, keys)
    args = ("copy", "--from", f"s3://{src}/data/", "--to", f"s3://{dst}/")
    first = cli(*args, "--skip-existing", "same-etag")
    assert first.returncode == 0, first.stderr
    moto.client().put_object(Bucket=src, Key="data/f0.txt", Body=b"changed!")

    second = cli(*args, "--skip-existing", "same-etag")

    assert second.returncode == 0, second.stderr
    job_id = json.loads(cli("jobs", "--json").stdout.splitlines()[0])["job_id"]
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["counts"]["succeeded"] == 1
    assert status["counts"]["skipped"] == 5
    body = moto.client().get_object(Bucket=dst, Key="data/f0.txt")["Body"].read()
    assert body == b"changed!"
    rep = cli("report", job_id, "--out", "out")
    assert rep.returncode == 0, rep.stderr
    # S3 Batch Operations' CSV knows no "skipped": the object is there
    rows = _report_rows(cli.cwd / "out", job_id)
    assert [r[3] for r in rows] == ["succeeded"] * 6
    there = [r for r in rows if "destination exists with the same size" in r[6]]
    assert len(there) == 5
    jsonl = (cli.cwd / "out" / f"job-{job_id}" / "results.jsonl").read_text()
    records = [json.loads(line) for line in jsonl.splitlines()]
    skipped = [r for r in records if r["status"] == "skipped"]
    assert len(skipped) == 5
    assert {r["error_code"] for r in skipped} == {"DestinationExists"}


def test_the_cut_over_move_deletes_every_source_copied_or_already_there(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """Nightly copies until the cut-over, then `bulkcopy move` with
    --skip-existing same-etag: what is already there is not copied again, a
    new object is; every source is deleted; status and report say so."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"data/f{i}.txt" for i in range(5)]
    bodies = seed(moto, src, keys)
    listing = ("--from", f"s3://{src}/data/", "--to", f"s3://{dst}/")
    nightly = cli("copy", *listing, "--skip-existing", "same-etag")
    assert nightly.returncode == 0, nightly.stderr
    moto.client().put_object(Bucket=src, Key="data/new.txt", Body=b"late")
    bodies["data/new.txt"] = b"late"

    cut = cli("move", *listing, "--skip-existing", "same-etag")

    assert cut.returncode == 0, cut.stderr
    assert "sources_deleted" in cut.stderr
    assert moto.client().list_objects_v2(Bucket=src).get("KeyCount") == 0
    for key, body in bodies.items():
        got = moto.client().get_object(Bucket=dst, Key=key)["Body"].read()
        assert got == body
    job_id = json.loads(cli("jobs", "--json").stdout.splitlines()[0])["job_id"]
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["counts"]["succeeded"] == 1
    assert status["counts"]["skipped"] == 5
    assert status["sources_deleted"] == 6
    assert "moved      6 sources deleted" in cli("status", job_id).stdout
    rep = cli("report", job_id, "--out", "out")
    assert rep.returncode == 0, rep.stderr
    assert [r[3] for r in _report_rows(cli.cwd / "out", job_id)] == ["succeeded"] * 6
    jsonl = (cli.cwd / "out" / f"job-{job_id}" / "results.jsonl").read_text()
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert all(r["source_deleted"] is True and r["deleted_at"] for r in records)


def test_a_move_refuses_skip_policies_that_cannot_vouch_for_a_copy(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["k"])
    res = cli(
        "move",
        "--from",
        f"s3://{src}/",
        "--to",
        f"s3://{dst}/",
        "--skip-existing",
        "same-size",
    )
    assert res.returncode == 2
    assert "cannot vouch for a move" in res.stderr
    assert "Traceback" not in res.stderr
    assert moto.client().list_objects_v2(Bucket=src).get("KeyCount") == 1


def test_unknown_job_and_bad_destination_are_usage_errors(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Typos get exit 2 and a message, not a traceback."""
    cli = cli_for(moto)
    res = cli("status", "nope")
    assert res.returncode == 2
    assert "no job 'nope'" in res.stderr
    manifest = write_manifest(tmp_path / "m.csv", [("b", "k", None)])
    res = cli("submit", str(manifest), "--to", "dst-without-scheme")
    assert res.returncode == 2
    assert "s3://" in res.stderr
    assert "Traceback" not in res.stderr


def _big_job(
    moto: S3Server, cli: Cli, tmp_path: Path, n: int
) -> tuple[str, str, list[str]]:
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"dir {i // 50}/obj+{i:04d}.txt" for i in range(n)]
    seed(moto, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    sub = cli("submit", str(manifest), "--to", f"s3://{dst}/copy/")
    assert sub.returncode == 0, sub.stderr
    return sub.stdout.strip(), dst, keys


def _assert_exactly_once(
    moto: S3Server, cli: Cli, job_id: str, dst: str, keys: list[str]
) -> None:
    rep = cli("report", job_id, "--out", "reports")
    assert rep.returncode == 0, rep.stderr
    rows = _report_rows(cli.cwd / "reports", job_id)
    assert sorted(unquote_plus(r[1]) for r in rows) == sorted(keys)
    assert {r[3] for r in rows} == {"succeeded"}
    paginator = moto.client().get_paginator("list_objects_v2")
    listed = [
        o["Key"]
        for page in paginator.paginate(Bucket=dst)
        for o in page.get("Contents", [])
    ]
    assert sorted(listed) == sorted("copy/" + k for k in keys)


def test_kill_9_mid_run_then_resume_reports_each_object_once(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`kill -9` at random moments loses nothing; resume finishes; report is exact."""
    cli = cli_for(moto)
    job_id, dst, keys = _big_job(moto, cli, tmp_path, 300)
    rng = random.Random()
    seed_value = rng.randrange(1 << 30)
    rng.seed(seed_value)
    print(f"random seed {seed_value}")

    for _round in range(2):
        target = cli.db_count("succeeded") + rng.randrange(5, 80)
        proc = cli.popen("run", job_id, "--concurrency", "4")
        try:
            _wait_for(
                lambda t=target, p=proc: (
                    cli.db_count("succeeded") >= t or p.poll() is not None
                )
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert cli.db_count("succeeded") < len(keys), "killed too late to test resume"

    res = cli("resume", job_id)
    assert res.returncode == 0, res.stderr
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["counts"]["succeeded"] == len(keys)
    _assert_exactly_once(moto, cli, job_id, dst, keys)


def test_ctrl_c_drains_and_records_then_resume_finishes(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """SIGINT stops claiming, records in-flight copies, exits 130; resume completes."""
    cli = cli_for(moto)
    job_id, dst, keys = _big_job(moto, cli, tmp_path, 200)
    proc = cli.popen("run", job_id, "--concurrency", "4")
    _wait_for(lambda: cli.db_count("succeeded") >= 20 or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"bulkcopy resume {job_id}" in err
    status = json.loads(cli("status", job_id, "--json").stdout)
    assert status["status"] == "stopped"
    assert status["counts"]["running"] == 0
    assert 0 < status["counts"]["succeeded"] < len(keys)

    res = cli("resume", job_id)
    assert res.returncode == 0, res.stderr
    _assert_exactly_once(moto, cli, job_id, dst, keys)


def test_json_logs_when_not_on_a_terminal(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Off a terminal, stderr carries one JSON object per line, snake_case events."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])
    res = cli("copy", str(manifest), "--to", f"s3://{dst}")
    assert res.returncode == 0
    events = [
        json.loads(line)["event"]
        for line in res.stderr.splitlines()
        if line.startswith("{")
    ]
    assert "job_submitted" in events
    assert "run_finished" in events


def test_profile_option_picks_credentials_from_the_aws_config(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`--profile` reads that profile's keys; an unknown profile is a usage error."""
    cli = cli_for(moto)
    creds = tmp_path / "credentials"
    creds.write_text(
        "[mover]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = {
        k: v
        for k, v in cli.env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    profiled = Cli(cli.cwd, env)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])

    no_creds = profiled("copy", str(manifest), "--to", f"s3://{dst}")
    assert no_creds.returncode == 3
    assert "no AWS credentials" in no_creds.stderr

    ok = profiled("copy", str(manifest), "--to", f"s3://{dst}", "--profile", "mover")
    assert ok.returncode == 0, ok.stderr

    bad = profiled("copy", str(manifest), "--to", f"s3://{dst}", "--profile", "nope")
    assert bad.returncode == 2
    assert "--profile" in bad.stderr
    assert "Traceback" not in bad.stderr
