"""The new ingest as a user types it: `submit --from` killed and resumed,
filters, S3 manifests changed under an interrupted submit, archived objects,
and `retry`.

A submit is killed at a known point, not a lucky moment: the CLI talks to
moto through :class:`HoldingProxy`, which holds the first request a test picks
(the second listing page, an inventory's second data file) until released.
By then the batch before it is committed, so `kill -9` lands between batches.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import io
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.acceptance.conftest import Cli
from tests.helpers import seed, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.acceptance

N_LISTED = 1050  # two ListObjectsV2 pages: 1000, then 50


class HoldingProxy:
    """An HTTP proxy in front of an S3 server: records each request line and
    holds the requests ``hold(method, path)`` picks until :meth:`release`."""

    def __init__(self, upstream: str, hold: Callable[[str, str], bool]) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.hold = hold
        self.seen: list[str] = []
        self.holding = threading.Event()
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def forward(self) -> None:
                proxy.forward(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a client killed while its request is held: nothing to report
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        self.seen.append(f"{h.command} {h.path}")
        if not self.released.is_set() and self.hold(h.command, h.path):
            self.holding.set()
            self.released.wait(60)
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(h.command, h.path, body=body, headers=dict(h.headers.items()))
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        h.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() in ("connection", "transfer-encoding", "content-length"):
                continue
            h.send_header(name, value)
        if h.command == "HEAD":  # the object's length, with no body
            h.send_header("Content-Length", resp.getheader("Content-Length", "0"))
        else:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_for(moto: S3Server) -> Iterator[Callable[..., HoldingProxy]]:
    """Makes holding proxies in front of moto; closes them after the test."""
    made: list[HoldingProxy] = []

    def make(hold: Callable[[str, str], bool]) -> HoldingProxy:
        proxy = HoldingProxy(moto.endpoint, hold)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def _through(cli: Cli, proxy: HoldingProxy) -> Cli:
    """The same CLI (working directory, database), talking to S3 via ``proxy``."""
    return Cli(cli.cwd, dict(cli.env, AWS_ENDPOINT_URL_S3=proxy.endpoint))


def _wait_for(cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def _query(cli: Cli, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{cli.cwd / 'bulkcopy.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _jobs(cli: Cli) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(id, status, ingest_state) of every job, oldest first."""
    rows = _query(cli, "SELECT id, status, ingest_state FROM jobs ORDER BY created_at")
    return [(i, s, json.loads(state) if state else None) for i, s, state in rows]


def _task_count(cli: Cli, job_id: str) -> int:
    return int(_query(cli, "SELECT count(*) FROM tasks WHERE job_id = ?", job_id)[0][0])


def _kill_while_held(proc: Any, proxy: HoldingProxy) -> None:
    """Wait until ``proc`` is stuck on the held request, then SIGKILL it."""
    try:
        _wait_for(lambda: proxy.holding.is_set() or proc.poll() is not None)
    finally:
        proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err


def _status(cli: Cli, job_id: str) -> dict[str, Any]:
    res = cli("status", job_id, "--json")
    assert res.returncode == 0, res.stderr
    status: dict[str, Any] = json.loads(res.stdout)
    return status


def _listed_keys(server: S3Server, bucket: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2")
    return [
        o["Key"]
        for page in pages.paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]


@pytest.fixture(scope="module")
def listed_bucket(moto: S3Server) -> str:
    """A bucket with 1,050 small objects under data/ (two listing pages)."""
    bucket = moto.new_bucket()
    c = moto.client()

    def put(i: int) -> None:
        c.put_object(Bucket=bucket, Key=f"data/{i:05d}.txt", Body=b"x")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(N_LISTED)))
    return bucket


def _second_page(method: str, path: str) -> bool:
    return method == "GET" and "list-type=2" in path and "continuation-token" in path


def _killed_listing(
    cli: Cli, proxy_for: Callable[..., HoldingProxy], argv: tuple[str, ...]
) -> tuple[HoldingProxy, str]:
    """Run ``submit`` with ``argv`` via a proxy holding the second listing
    page, kill -9 it there; returns the proxy (released) and the job id."""
    proxy = proxy_for(_second_page)
    via = _through(cli, proxy)
    _kill_while_held(via.popen(*argv), proxy)
    [(job_id, status, state)] = _jobs(cli)
    assert status == "ingesting"
    assert state is not None
    assert state["position"].get("token") or state["position"].get("after")
    assert _task_count(cli, job_id) == 1000  # the first page, committed
    proxy.release()
    return proxy, job_id


def _listing_requests(lines: list[str]) -> list[str]:
    return [line for line in lines if "list-type=2" in line]


def test_kill_9_during_listing_then_the_same_submit_resumes(
    moto: S3Server,
    cli_for: Callable[[S3Server], Cli],
    proxy_for: Callable[..., HoldingProxy],
    listed_bucket: str,
) -> None:
    """A submit killed between listing pages keeps a checkpoint; the same
    command (filters and all) resumes at the next page (no listing from the
    start), prints the same job id, and the job holds each object once."""
    cli = cli_for(moto)
    dst = moto.new_bucket()
    argv = (
        "submit",
        "--from",
        f"s3://{listed_bucket}/data/",
        "--to",
        f"s3://{dst}",
        "--include-prefix",
        "data/",
        "--min-size",
        "1",
    )
    proxy, job_id = _killed_listing(cli, proxy_for, argv)
    before = len(proxy.seen)

    res = _through(cli, proxy)(*argv)

    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == job_id
    resumed = _listing_requests(proxy.seen[before:])
    assert resumed, "the resumed submit did not list"
    assert all("continuation-token" in r or "start-after" in r for r in resumed)
    assert _jobs(cli) == [(job_id, "submitted", None)]
    [(total, distinct, job_total)] = _query(
        cli,
        "SELECT count(*), count(DISTINCT src_key), "
        "(SELECT total_tasks FROM jobs WHERE id = ?) FROM tasks WHERE job_id = ?",
        job_id,
        job_id,
    )
    assert total == distinct == job_total == N_LISTED


def test_kill_9_during_listing_then_run_finishes_the_ingest_and_copies(
    moto: S3Server,
    cli_for: Callable[[S3Server], Cli],
    proxy_for: Callable[..., HoldingProxy],
    listed_bucket: str,
) -> None:
    """`bulkcopy run JOB_ID` of a job whose submit was killed reads the rest of
    the listing first, then copies every object exactly once."""
    cli = cli_for(moto)
    dst = moto.new_bucket()
    argv = (
        "submit",
        "--from",
        f"s3://{listed_bucket}/data/",
        "--to",
        f"s3://{dst}/c/",
        "--no-stat-source",
        "--exclude-prefix",
        "data/none-of-them/",
    )
    _proxy, job_id = _killed_listing(cli, proxy_for, argv)

    res = cli("run", job_id, "--concurrency", "32")

    assert res.returncode == 0, res.stderr
    status = _status(cli, job_id)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == N_LISTED
    assert sum(status["counts"].values()) == N_LISTED
    listed = _listed_keys(moto, dst)
    assert len(listed) == N_LISTED
    assert sorted(listed) == sorted(f"c/data/{i:05d}.txt" for i in range(N_LISTED))


def test_listing_filters_from_the_command_line(
    moto: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """--include-prefix, --exclude-prefix, --min-size, --max-size and
    --source-storage-class pick the objects a `--from` job copies."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    objects = {
        "a/small.txt": b"12",  # too small
        "a/ok.txt": b"1234",
        "a/big.txt": b"1234567890",  # too big
        "a/skip/ok.txt": b"1234",  # excluded prefix
        "b/ok.txt": b"1234",  # not included
        "c/ok.txt": b"1234",
    }
    for key, body in objects.items():
        c.put_object(Bucket=src, Key=key, Body=body)
    c.put_object(Bucket=src, Key="c/cold.txt", Body=b"1234", StorageClass="GLACIER")

    res = cli(
        "copy",
        "--from",
        f"s3://{src}",
        "--to",
        f"s3://{dst}",
        "--include-prefix",
        "a/",
        "--include-prefix",
        "c/",
        "--exclude-prefix",
        "a/skip/",
        "--min-size",
        "3",
        "--max-size",
        "5B",
        "--source-storage-class",
        "standard",
    )

    assert res.returncode == 0, res.stderr
    assert sorted(_listed_keys(moto, dst)) == ["a/ok.txt", "c/ok.txt"]


def test_size_filter_on_a_csv_manifest_is_a_usage_error(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A BOps CSV has no sizes: --min-size on it fails with exit 2, and says why."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "a", None)])

    res = cli("submit", str(manifest), "--to", f"s3://{dst}", "--min-size", "1")

    assert res.returncode == 2
    assert "--min-size" in res.stderr
    assert "Traceback" not in res.stderr


# -- an S3 Inventory report changed under an interrupted submit ---------------


def _inventory_file(rows: list[tuple[str, str]]) -> bytes:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    for bucket, key in rows:
        w.writerow([bucket, quote(key, safe="/")])
    return gzip.compress(text.getvalue().encode())


def _put_inventory_manifest(
    server: S3Server, inv: str, src: str, files: list[str], note: str = ""
) -> str:
    c = server.client()
    entries = []
    for key in files:
        data = c.get_object(Bucket=inv, Key=key)["Body"].read()
        md5 = hashlib.md5(data).hexdigest()
        entries.append({"key": key, "size": len(data), "MD5checksum": md5})
    manifest: dict[str, Any] = {
        "sourceBucket": src,
        "destinationBucket": f"arn:aws:s3:::{inv}",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key",
        "files": entries,
    }
    if note:
        manifest["creationTimestamp"] = note
    key = f"{src}/daily/2026-11-20T01-00Z/manifest.json"
    c.put_object(Bucket=inv, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{inv}/{key}"


def test_inventory_changed_under_a_killed_submit_is_refused_until_restart(
    moto: S3Server,
    cli_for: Callable[[S3Server], Cli],
    proxy_for: Callable[..., HoldingProxy],
) -> None:
    """A submit of an S3 Inventory report killed between its data files; the
    report re-uploaded with other content is then refused ("changed since",
    exit 2, the job kept); --restart reads the new report from the start."""
    cli = cli_for(moto)
    src, dst, inv = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    keys = ["a.txt", "b.txt", "c.txt", "d.txt"]
    seed(moto, src, keys)
    c = moto.client()
    files = []
    for n, part in enumerate([keys[:2], keys[2:]]):
        key = f"{src}/daily/data/part-{n}.csv.gz"
        c.put_object(
            Bucket=inv, Key=key, Body=_inventory_file([(src, k) for k in part])
        )
        files.append(key)
    uri = _put_inventory_manifest(moto, inv, src, files)
    proxy = proxy_for(lambda method, path: method == "GET" and "part-1" in path)
    argv = ("submit", uri, "--to", f"s3://{dst}")

    _kill_while_held(_through(cli, proxy).popen(*argv), proxy)
    [(job_id, status, _state)] = _jobs(cli)
    assert status == "ingesting"
    assert _task_count(cli, job_id) == 2
    proxy.release()
    _put_inventory_manifest(moto, inv, src, files, note="1763600000000")

    refused = cli(*argv)

    assert refused.returncode == 2
    assert "changed since" in refused.stderr
    assert job_id in refused.stderr
    assert "Traceback" not in refused.stderr
    assert [j[:2] for j in _jobs(cli)] == [(job_id, "ingesting")]

    fresh = cli(*argv, "--restart")
    assert fresh.returncode == 0, fresh.stderr
    new_id = fresh.stdout.strip()
    assert new_id != job_id
    assert _jobs(cli) == [(new_id, "submitted", None)]
    assert _task_count(cli, new_id) == 4


# -- archived objects, exit codes and retry ------------------------------------


def test_archived_object_is_skipped_exit_1_then_retry_skipped_copies(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A GLACIER object is skipped (ObjectArchived) while the rest is copied, and
    `copy` exits 1: not every object was copied (a script doing
    `bulkcopy copy … && delete the sources` must not go on).  `retry` alone
    takes nothing; after a restore, `retry --skipped` + `run` copies it."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    c.put_object(Bucket=src, Key="cold.bin", Body=b"frozen", StorageClass="GLACIER")
    c.put_object(Bucket=src, Key="warm.bin", Body=b"fine")
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, "cold.bin", None), (src, "warm.bin", None)]
    )

    res = cli("copy", str(manifest), "--to", f"s3://{dst}")

    assert res.returncode == 1, res.stderr
    [job_id] = [j[0] for j in _jobs(cli)]
    status = _status(cli, job_id)
    assert status["status"] == "complete"
    assert status["counts"]["succeeded"] == 1
    assert status["counts"]["skipped"] == 1
    assert status["counts"]["failed"] == 0
    rep = cli("report", job_id, "--out", "reports")
    assert rep.returncode == 0, rep.stderr
    jsonl = cli.cwd / "reports" / f"job-{job_id}" / "results.jsonl"
    results = {
        r["source"]["key"]: r for r in map(json.loads, jsonl.read_text().splitlines())
    }
    assert results["cold.bin"]["status"] == "skipped"
    assert results["cold.bin"]["error_code"] == "ObjectArchived"
    assert _listed_keys(moto, dst) == ["warm.bin"]

    c.restore_object(Bucket=src, Key="cold.bin", RestoreRequest={"Days": 1})
    retry = cli("retry", job_id, "--skipped")
    assert retry.returncode == 0, retry.stderr
    retry_id = retry.stdout.strip()
    assert _query(
        cli, "SELECT src_key FROM tasks WHERE job_id = ? ORDER BY id", retry_id
    ) == [("cold.bin",)]

    run = cli("run", retry_id)
    assert run.returncode == 0, run.stderr
    assert _status(cli, retry_id)["counts"]["succeeded"] == 1
    assert sorted(_listed_keys(moto, dst)) == ["cold.bin", "warm.bin"]


def test_retry_takes_the_failed_objects_into_a_new_job(
    moto: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """Missing keys fail the first job (exit 1); once they exist, `retry`
    prints a new job holding only them, and `run` copies them (exit 0)."""
    cli = cli_for(moto)
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["here.txt"])
    missing = ["later 1.txt", "dir/later+2.txt"]
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, k, None) for k in ["here.txt", *missing]]
    )
    first = cli("copy", str(manifest), "--to", f"s3://{dst}/p/")
    assert first.returncode == 1, first.stderr
    [job_id] = [j[0] for j in _jobs(cli)]
    seed(moto, src, missing)

    retry = cli("retry", job_id)

    assert retry.returncode == 0, retry.stderr
    retry_id = retry.stdout.strip()
    assert retry_id != job_id
    assert _query(
        cli, "SELECT src_key FROM tasks WHERE job_id = ? ORDER BY id", retry_id
    ) == [(k,) for k in missing]
    run = cli("run", retry_id)
    assert run.returncode == 0, run.stderr
    assert _status(cli, retry_id)["counts"]["succeeded"] == 2
    assert _query(
        cli, "SELECT status, count(*) FROM tasks WHERE job_id = ? GROUP BY 1", job_id
    ) == [("failed", 2), ("succeeded", 1)]
    assert sorted(_listed_keys(moto, dst)) == sorted(
        "p/" + k for k in ["here.txt", *missing]
    )
