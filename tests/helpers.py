"""Helpers shared by integration and acceptance tests."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from engine.domain.backoff import RetryPolicy
from engine.domain.keys import KeyMapping
from engine.domain.models import Destination, JobCounts
from engine.domain.options import ObjectOptions, validate
from engine.domain.records import JobRecord
from engine.domain.spec import ClientSettings, CopyOptions, JobSpec
from engine.run import events
from engine.run.settings import RunSettings
from engine.run.worker import Worker
from engine.store import Repository
from engine.usecases.submit import submit
from tests.servers import S3Server

AWKWARD_KEYS = [
    "plain.txt",
    "dir/sub/file.bin",
    "spaces in name.txt",
    "plus+sign.txt",
    "percent%25literal%.txt",
    "question?mark.txt",
    "hash#tag.txt",
    "unicode/café/日本語.txt",
    "dir//double-slash.txt",
    " leading space.txt",
    "trailing space.txt ",
    "a+b c&d=e;f,g.txt",
]

FAST_RETRY = RetryPolicy(
    max_attempts=5, base_delay=0.001, throttle_base_delay=0.002, max_delay=0.01
)


def encode(key: str) -> str:
    return quote(key, safe="/")


def write_manifest(path: Path, rows: Iterable[tuple[str, str, str | None]]) -> Path:
    """Write an S3 Batch Operations CSV manifest (keys URL-encoded)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        for bucket, key, version in rows:
            w.writerow(
                [bucket, encode(key)] + ([version] if version is not None else [])
            )
    return path


def seed(server: S3Server, bucket: str, keys: Iterable[str]) -> dict[str, bytes]:
    """Put one small object per key; returns the bodies by key."""
    c = server.client()
    bodies = {}
    for key in keys:
        body = f"body of {key!r}".encode()
        c.put_object(Bucket=bucket, Key=key, Body=body)
        bodies[key] = body
    return bodies


def client_settings(
    server: S3Server, sdk_attempts: int = 1, *, lean: bool = True
) -> ClientSettings:
    return ClientSettings(
        endpoint_url=server.endpoint,
        addressing_style="path",
        sdk_max_attempts=sdk_attempts,
        max_pool_connections=16,
        lean_copy=lean,
    )


def submit_job(
    repo: Repository,
    manifest: Path,
    server: S3Server,
    dst: str,
    stat_source: bool = True,
    *,
    object_options: ObjectOptions | None = None,
    headers: dict[str, str] | None = None,
    key_mapping: KeyMapping | None = None,
    **copy: Any,
) -> JobRecord:
    """Submit ``manifest`` in-process; object options are validated as the CLI does."""
    if object_options is not None:
        validate(object_options)
    spec = JobSpec(
        client=client_settings(server),
        copy=CopyOptions(stat_source=stat_source, **copy),
        object=object_options or ObjectOptions(),
        keys=key_mapping or KeyMapping(),
        headers=dict(headers or {}),
    )
    return submit(repo, str(manifest), Destination.parse(dst), spec)


def run_job(
    repo: Repository,
    job: JobRecord,
    server: S3Server,
    *,
    concurrency: int = 8,
    retry: RetryPolicy = FAST_RETRY,
    on_client: Callable[[Any], None] | None = None,
    observer: events.Observer = events.ignore,
    worker_hook: Callable[[Worker], None] | None = None,
    preflight: bool = True,
    part_concurrency: int = 4,
    **settings_overrides: Any,
) -> JobCounts:
    """Run ``job`` in this process against ``server``.

    CopyObject takes the default (lean) path, except with ``on_client``: hooks
    on botocore's events see only botocore's requests, so such a run uses
    botocore's CopyObject unless the test chose a path with
    ``BULKCOPY_LEAN_COPY`` (tests/integration/test_faults_http.py injects
    faults at the HTTP level, on both paths)."""
    settings_overrides.setdefault("flush_interval", 0.05)
    settings = RunSettings(
        concurrency=concurrency,
        part_concurrency=part_concurrency,
        retry=retry,
        preflight=preflight,
        **settings_overrides,
    )
    worker = Worker(
        repo,
        repo.get_job(job.id),
        settings,
        client_settings(server, lean=on_client is None),
        observer,
        on_client,
    )
    if worker_hook is not None:
        worker_hook(worker)
    return asyncio.run(worker.run())


def get_body(
    server: S3Server, bucket: str, key: str, version: str | None = None
) -> bytes:
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        kw["VersionId"] = version
    body: bytes = server.client().get_object(**kw)["Body"].read()
    return body


def verify_job_now(
    server: S3Server, repo: Repository, job_id: str
) -> tuple[int, list[tuple[int, str, str]]]:
    """What `bulkcopy verify JOB_ID` does, in-process: how many were checked,
    and the failures ``(task_id, code, message)`` (recorded as failed)."""
    from engine.s3.client import open_client
    from engine.usecases.verify import verify_job

    async def go() -> tuple[int, list[tuple[int, str, str]]]:
        async with open_client(client_settings(server)) as client:
            return await verify_job(client, repo, job_id)

    return asyncio.run(go())
