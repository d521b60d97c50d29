"""Copy options through the CLI: SSE-C keys never written, --spec files, bad combos."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli
from tests.helpers import get_body, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.acceptance

MiB = 1024 * 1024
KEY_VAR = "BULKCOPY_TEST_KEY"


def _forms(key: bytes) -> dict[str, bytes]:
    """Every spelling of ``key`` that a leak could take."""
    b64 = base64.b64encode(key)
    url = base64.urlsafe_b64encode(key)
    return {
        "raw": key,
        "base64": b64,
        "base64 unpadded": b64.rstrip(b"="),
        "urlsafe base64": url,
        "urlsafe base64 unpadded": url.rstrip(b"="),
        "hex": key.hex().encode(),
        "python repr": repr(key)[2:-1].encode(),  # as botocore errors quote bytes
    }


def _leaks(data: bytes, key: bytes) -> list[str]:
    return [name for name, form in _forms(key).items() if form in data]


def _job_spec(cli: Cli, job_id: str) -> dict[str, object]:
    con = sqlite3.connect(f"file:{cli.cwd / 'bulkcopy.db'}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT spec FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        con.close()
    spec: dict[str, object] = json.loads(row[0])
    return spec


DRIVER = """
import contextlib, io, json, sys, traceback
from engine.cli import main
out = []
for argv in json.load(sys.stdin):
    o, e = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = -1
    out.append([code, o.getvalue(), e.getvalue()])
json.dump(out, sys.stdout)
"""


def _usage_errors(
    cli: Cli, runs: list[list[str]], env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``bulkcopy``'s entry point (``engine.cli.main``) once per argv, all in
    one interpreter: each refusal is instant, the imports are 1.3 s apiece."""
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        cwd=cli.cwd,
        env=env or cli.env,
        input=json.dumps(runs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [
        subprocess.CompletedProcess(argv, code, out, err)
        for argv, (code, out, err) in zip(runs, json.loads(proc.stdout), strict=True)
    ]


def _no_jobs(cli: Cli) -> None:
    """No database in the work dir holds a job."""
    for db in cli.cwd.glob("*.db"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            count = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0  # not even created
        finally:
            con.close()
        assert count == 0, db


# -- a. SSE-C keys are never stored, logged or reported -------------------------


def test_sse_c_keys_appear_in_no_file_log_or_report(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Keys given as env:VAR and file:PATH: the copy works, and neither key is in
    the database, its WAL, any log line, report or status output, in any spelling."""
    dst_key, src_key = os.urandom(32), os.urandom(32)
    cli = cli_for(moto)
    env = dict(cli.env, **{KEY_VAR: base64.b64encode(dst_key).decode()})
    keyed = Cli(cli.cwd, env)
    secret_dir = tmp_path / "secret"  # outside the work dir scanned below
    secret_dir.mkdir()
    key_file = secret_dir / "src.key"
    key_file.write_bytes(src_key)

    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    bodies = {"small.txt": b"s" * 2000, "big.bin": os.urandom(12 * MiB)}
    for name, body in bodies.items():
        c.put_object(
            Bucket=src,
            Key=name,
            Body=body,
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=src_key,
        )
    rows = [(src, k, None) for k in (*bodies, "missing.txt")]
    manifest = write_manifest(tmp_path / "m.csv", rows)

    copy = keyed(
        "copy",
        str(manifest),
        "--to",
        f"s3://{dst}/enc/",
        "--sse-c-key",
        f"env:{KEY_VAR}",
        "--source-sse-c-key",
        f"file:{key_file}",
        "--multipart-threshold",
        "5MiB",
        "--part-size",
        "5MiB",
        "--log-format",
        "json",
        "-v",
    )
    assert copy.returncode == 1, copy.stderr  # missing.txt fails, the rest copy
    job_id = copy.stderr.split("job ", 1)[1].split()[0]
    report = keyed("report", job_id, "--out", "reports")
    status = keyed("status", job_id, "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(status.stdout)["counts"]["succeeded"] == 2
    # a later run reads the key again: without it, a usage error naming where
    unkeyed = cli("resume", job_id)
    assert unkeyed.returncode == 2, unkeyed.stderr
    assert f"environment variable {KEY_VAR} is not set" in unkeyed.stderr
    assert "Traceback" not in unkeyed.stderr

    for name, body in bodies.items():
        got = c.get_object(
            Bucket=dst,
            Key=f"enc/{name}",
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=dst_key,
        )["Body"].read()
        assert got == body, name
    # what the job keeps is where the keys are, not the keys
    stored = _job_spec(cli, job_id)["object"]
    assert stored == {
        "sse_c_key": f"env:{KEY_VAR}",
        "source_sse_c_key": f"file:{key_file}",
    }

    scanned = [p for p in cli.cwd.rglob("*") if p.is_file()]
    names = {p.name for p in scanned}
    assert "bulkcopy.db" in names
    assert any(p.suffix == ".csv" for p in scanned)  # the report was written
    outputs = {
        "copy": copy.stdout + copy.stderr,
        "report": report.stdout + report.stderr,
        "status": status.stdout + status.stderr,
        "resume": unkeyed.stdout + unkeyed.stderr,
    }
    assert '"event"' in outputs["copy"]  # -v JSON logs were produced
    for key in (dst_key, src_key):
        for path in scanned:
            assert _leaks(path.read_bytes(), key) == [], path
        for what, text in outputs.items():
            assert _leaks(text.encode(), key) == [], what


def test_a_bad_key_is_refused_without_showing_it(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A key of the wrong length, or not base64, exits 2 naming where it is, and
    the message holds none of the key."""
    cli = cli_for(moto)
    manifest = write_manifest(tmp_path / "m.csv", [("src", "a", None)])
    short = os.urandom(16)
    garbage = "not base64 at all: s3cr3t-v4lue!"
    long_file = tmp_path / "long.key"
    long_key = os.urandom(48)
    long_file.write_bytes(long_key)
    env = dict(
        cli.env,
        SHORT_KEY=base64.b64encode(short).decode(),
        GARBAGE_KEY=garbage,
    )
    submit = ["submit", str(manifest), "--to", "s3://dst"]

    short_res, garbage_res, file_res = _usage_errors(
        cli,
        [
            [*submit, "--sse-c-key", "env:SHORT_KEY"],
            [*submit, "--source-sse-c-key", "env:GARBAGE_KEY"],
            [*submit, "--sse-c-key", f"file:{long_file}"],
        ],
        env=env,
    )

    for res in (short_res, garbage_res, file_res):
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert res.stdout == ""
    assert "$SHORT_KEY" in short_res.stderr
    assert "16 bytes" in short_res.stderr
    assert _leaks((short_res.stdout + short_res.stderr).encode(), short) == []
    assert "--source-sse-c-key" in garbage_res.stderr
    assert "$GARBAGE_KEY" in garbage_res.stderr
    assert garbage not in garbage_res.stderr
    assert "s3cr3t" not in garbage_res.stderr
    assert str(long_file) in file_res.stderr
    assert _leaks(file_res.stderr.encode(), long_key) == []
    _no_jobs(cli)


# -- b. a --spec file is stored with the job -----------------------------------

SPEC = """\
to = "s3://{dst}/spec/"

[copy]
multipart_threshold = "5MiB"
part_size = "5MiB"

[object]
storage_class = "STANDARD_IA"
metadata_directive = "REPLACE"
content_type = "text/x-from-spec"
tagging_directive = "REPLACE"

[object.metadata]
origin = "spec"

[object.tags]
source = "spec-file"
"""


def test_spec_file_options_are_stored_and_used_by_a_bare_run(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`submit --spec job.toml`, then `run JOB` with no flags: the copies get the
    spec's options (a flag beside --spec winning), so they came from the job."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    bodies = {"small.txt": b"x" * 3000, "big.bin": os.urandom(12 * MiB)}
    for name, body in bodies.items():
        c.put_object(
            Bucket=src, Key=name, Body=body, Metadata={"old": "1"}, Tagging="old=1"
        )
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in bodies])
    spec = tmp_path / "job.toml"
    spec.write_text(SPEC.format(dst=dst))

    sub = cli(
        "submit", str(manifest), "--spec", str(spec), "--content-type", "text/x-flag"
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()
    run = cli("run", job_id)
    assert run.returncode == 0, run.stderr

    for name, body in bodies.items():
        key = f"spec/{name}"
        head = c.head_object(Bucket=dst, Key=key)
        assert head["StorageClass"] == "STANDARD_IA", name
        assert head["Metadata"] == {"origin": "spec"}, name
        assert head["ContentType"] == "text/x-flag", name  # the flag won
        tags = c.get_object_tagging(Bucket=dst, Key=key)["TagSet"]
        assert tags == [{"Key": "source", "Value": "spec-file"}], name
        assert get_body(moto, dst, key) == body
    # the spec's 5 MiB threshold and part size made the big one 3 parts
    assert c.head_object(Bucket=dst, Key="spec/big.bin")["ETag"].endswith('-3"')
    assert "-" not in c.head_object(Bucket=dst, Key="spec/small.txt")["ETag"]


# -- c. invalid combinations ---------------------------------------------------

INVALID = {
    "tag without REPLACE": (["--tag", "a=b"], "--tag"),
    "content type without REPLACE": (["--content-type", "text/x"], "--content-type"),
    "kms key without aws:kms": (["--sse-kms-key-id", "k1"], "--sse-kms-key-id"),
    "kms key with AES256": (
        ["--sse", "AES256", "--sse-kms-key-id", "k1"],
        "--sse-kms-key-id",
    ),
    "lock mode without date": (
        ["--object-lock-mode", "GOVERNANCE"],
        "--object-lock-retain-until-date",
    ),
    "retention period and date": (
        ["--retention-period", "10", "--retention-expiration-date", "2040-01-01"],
        "--retention-expiration-date",
    ),
    "unknown template field": (["--key-template", "{nope}"], "{nope}"),
    "acl with grants": (
        ["--acl", "private", "--grant-read", 'id="x"'],
        "--grant-",
    ),
    "reserved header": (["--header", "Authorization:x"], "--header"),
}


def test_invalid_combinations_exit_2_naming_the_option(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Each bad combination: exit 2, one message naming the option, no job."""
    cli = cli_for(moto)
    manifest = write_manifest(tmp_path / "m.csv", [("src", "a", None)])
    bad_spec = tmp_path / "bad.toml"
    bad_spec.write_text('[object]\nstorage_class = "STANDARD_IA"\nstorge_clas = "X"\n')
    cases = {name: args for name, (args, _) in INVALID.items()}
    cases["unknown key in spec"] = ["--spec", str(bad_spec)]
    named = {name: want for name, (_, want) in INVALID.items()}
    named["unknown key in spec"] = "'storge_clas'"

    results = _usage_errors(
        cli,
        [["submit", str(manifest), "--to", "s3://dst", *a] for a in cases.values()],
    )

    for name, res in zip(cases, results, strict=True):
        assert res.returncode == 2, (name, res.stderr)
        assert named[name] in res.stderr, (name, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (name, res.stderr)
        assert "Traceback" not in res.stderr, name
        assert res.stdout == "", name
    assert str(bad_spec) in results[-1].stderr
    _no_jobs(cli)
