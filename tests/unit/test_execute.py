"""One task's copy, end to end through ``execute()``, against an in-memory S3
(tests/memory_s3.py): what is recorded for each way a copy can end."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.copy.context import CopyContext
from engine.copy.execute import execute
from engine.copy.request import Requests
from engine.copy.upload import Upload
from engine.domain.backoff import RetryPolicy
from engine.domain.models import ObjectRef, PartRecord, Task, TaskStatus
from engine.domain.options import ObjectOptions
from engine.domain.spec import CopyOptions
from tests.memory_s3 import MemoryS3

MiB = 1024 * 1024
POLICY = RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0)


class Parts:
    """A part log in memory (the worker's is the job table)."""

    def __init__(self) -> None:
        self.uploads: dict[int, Upload | None] = {}
        self.parts: dict[int, list[PartRecord]] = {}

    def current(self, task: Task) -> Upload | None:
        return self.uploads.get(task.id)

    async def creating(self, task: Task) -> None:
        return None

    async def started(self, task: Task, upload: Upload) -> None:
        self.uploads[task.id] = upload
        self.parts[task.id] = []

    async def part_done(self, task: Task, upload: Upload, part: PartRecord) -> None:
        self.parts[task.id].append(part)

    async def recorded(self, task: Task, upload: Upload) -> list[PartRecord]:
        return list(self.parts.get(task.id, []))

    async def ended(self, task: Task) -> None:
        self.uploads[task.id] = None


def _run(s3: MemoryS3, task: Task, **options: Any) -> tuple[Any, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> Any:
        ctx = CopyContext(
            client=s3,
            dst_bucket="dst",
            options=CopyOptions(**options),
            part_log=Parts(),
            part_slots=asyncio.Semaphore(4),
            stopping=asyncio.Event(),
        )
        return await execute(ctx, task, POLICY, sleep=sleep)

    return asyncio.run(go()), slept


def _task(key: str = "k") -> Task:
    return Task(id=1, job_id="j", src=ObjectRef("src", key), dst_key=f"copy/{key}")


def test_a_copy_records_what_s3_answered() -> None:
    """Succeeded, with the destination's ETag and version, the bytes, the
    source version and the ETag it was pinned to, in one HEAD and one copy."""
    s3 = MemoryS3()
    s3.bucket("dst")
    src = s3.put("src", "k", b"x" * 1000)
    result, _ = _run(s3, _task())
    dst = s3.get("dst", "copy/k")
    assert dst is not None
    assert dst.body == src.body
    assert result.status is TaskStatus.SUCCEEDED
    assert (result.etag, result.dst_version_id) == (dst.etag, dst.version_id)
    assert (result.bytes, result.src_version_id) == (1000, src.version_id)
    assert result.src_etag.strip('"') == src.etag.strip('"')
    assert (result.attempts, result.method) == (1, "copy")
    assert s3.calls == {"HeadObject": 1, "CopyObject": 1}


def test_a_throttled_copy_is_tried_again() -> None:
    """SlowDown is retried after a backoff; the attempts are counted."""
    s3 = MemoryS3()
    s3.bucket("dst")
    s3.put("src", "k", b"abc")
    s3.fail("CopyObject", s3.error("CopyObject", "SlowDown", 503))
    result, slept = _run(s3, _task())
    assert (result.status, result.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert len(slept) == 1


def test_a_missing_source_fails_at_once() -> None:
    """NoSuchKey is no use retrying: failed after one attempt, with the
    code and HTTP status."""
    s3 = MemoryS3()
    s3.bucket("dst")
    s3.bucket("src")
    result, slept = _run(s3, _task("gone"))
    assert result.status is TaskStatus.FAILED
    assert (result.http_status, result.attempts, slept) == (404, 1, [])
    assert s3.get("dst", "copy/gone") is None


def test_errors_that_persist_fail_after_the_last_attempt() -> None:
    """A 500 on every attempt: failed with InternalError after max_attempts."""
    s3 = MemoryS3()
    s3.bucket("dst")
    s3.put("src", "k", b"abc")
    s3.fail("CopyObject", *(s3.error("CopyObject", "InternalError", 500),) * 3)
    result, slept = _run(s3, _task())
    assert (result.status, result.error_code) == (TaskStatus.FAILED, "InternalError")
    assert (result.attempts, len(slept)) == (3, 2)


def test_a_large_object_is_copied_in_parts_and_nothing_stays_open() -> None:
    """Over the threshold: UploadPartCopy of each range, the parts in order,
    a multipart ETag recorded, no upload left open."""
    s3 = MemoryS3()
    s3.bucket("dst")
    body = bytes(range(256)) * (12 * MiB // 256)
    s3.put("src", "big", body)
    result, _ = _run(s3, _task("big"), multipart_threshold=5 * MiB, part_size=5 * MiB)
    dst = s3.get("dst", "copy/big")
    assert dst is not None
    assert dst.body == body
    assert (result.status, result.method) == (TaskStatus.SUCCEEDED, "multipart")
    assert (result.part_count, result.etag) == (3, dst.etag)
    assert dst.etag.endswith('-3"')
    assert s3.calls["UploadPartCopy"] == 3
    assert s3.uploads == {}


def _listed(key: str, size: int, etag: str) -> Task:
    """A task from a listing or an inventory: its size and ETag are known."""
    return Task(
        id=1,
        job_id="j",
        src=ObjectRef("src", key),
        dst_key=f"copy/{key}",
        size=size,
        src_etag=etag,
    )


def test_a_listed_object_is_copied_without_a_head() -> None:
    """The manifest gave the size and ETag: one CopyObject pinned to that
    ETag, the size recorded, no HEAD on the object's path (after the run's
    one copy pinned to an ETag no object has, answered 412: the store holds
    copies to their pin)."""
    s3 = MemoryS3()
    s3.bucket("dst")
    src = s3.put("src", "k", b"x" * 700)
    result, _ = _run(s3, _listed("k", 700, src.etag))
    assert s3.calls == {"CopyObject": 2}
    assert (result.status, result.bytes) == (TaskStatus.SUCCEEDED, 700)
    assert result.src_etag == src.etag


def _ignoring(s3: MemoryS3, *tasks: Task) -> list[Any]:
    """Copy ``tasks`` in turn in one run; each result with the calls so far."""

    async def go() -> list[Any]:
        ctx = CopyContext(
            client=s3,
            dst_bucket="dst",
            options=CopyOptions(),
            part_log=Parts(),
            part_slots=asyncio.Semaphore(4),
            stopping=asyncio.Event(),
        )
        out = []
        for task in tasks:
            out.append((await execute(ctx, task, POLICY), dict(s3.calls)))
        return out

    return asyncio.run(go())


def test_a_store_that_ignores_the_pin_has_each_listed_object_headed() -> None:
    """A store that copies whatever is there despite the pin (Ceph RGW 16,
    moto): the run's first listed copy, pinned to an ETag no object has, is
    carried out anyway — kept, as the HEAD after it shows the listed object
    still there — and from then on each listed object is HEADed and copied as
    it is: one overwritten since the listing is recorded with its size and
    ETag now, never the listed ones."""
    s3 = MemoryS3(copy_conditions=False)
    s3.bucket("dst")
    kept = s3.put("src", "k", b"as listed")
    old = s3.put("src", "j", b"old")
    new = s3.put("src", "j", b"newer body")

    [(first, calls), (second, after)] = _ignoring(
        s3, _listed("k", 9, kept.etag), _listed("j", 3, old.etag)
    )

    assert (first.status, first.bytes, first.src_etag) == (
        TaskStatus.SUCCEEDED,
        9,
        kept.etag,
    )
    assert calls == {"CopyObject": 1, "HeadObject": 1}  # the probe was the copy
    assert (second.status, second.bytes, second.src_etag) == (
        TaskStatus.SUCCEEDED,
        10,
        new.etag,
    )
    copy = s3.get("dst", "copy/j")
    assert copy is not None
    assert copy.body == b"newer body"
    assert after == {"CopyObject": 2, "HeadObject": 2}  # no probe again


def test_an_object_overwritten_before_the_probe_is_copied_as_it_is_now() -> None:
    """The probe's copy, carried out by a store that ignores the pin, was of
    an object overwritten since the listing: it is copied again as it is now
    and recorded so."""
    s3 = MemoryS3(copy_conditions=False)
    s3.bucket("dst")
    old = s3.put("src", "k", b"old")
    new = s3.put("src", "k", b"newer body")

    [(result, calls)] = _ignoring(s3, _listed("k", 3, old.etag))

    assert (result.status, result.bytes, result.src_etag) == (
        TaskStatus.SUCCEEDED,
        10,
        new.etag,
    )
    assert calls == {"CopyObject": 2, "HeadObject": 2}


def test_an_object_changed_since_it_was_listed_is_copied_as_it_is_now() -> None:
    """The listed ETag no longer matches (412): HEAD, then the copy pinned to
    what is there now, its size recorded, in the same attempt."""
    s3 = MemoryS3()
    s3.bucket("dst")
    old = s3.put("src", "k", b"old")
    new = s3.put("src", "k", b"newer body")
    result, _ = _run(s3, _listed("k", 3, old.etag))
    dst = s3.get("dst", "copy/k")
    assert dst is not None
    assert dst.body == b"newer body"
    assert (result.status, result.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert (result.bytes, result.src_etag) == (10, new.etag)
    # the run's probe of the pin, the pinned copy (412), the HEAD, the copy
    assert s3.calls == {"CopyObject": 3, "HeadObject": 1}


def test_a_listed_object_still_meets_the_jobs_conditions() -> None:
    """`--if-none-match` on a listed object: the source is HEADed and the
    condition checked (a listed ETag pin must not stand in for it)."""
    s3 = MemoryS3()
    s3.bucket("dst")
    src = s3.put("src", "k", b"x" * 5)
    ctx = CopyContext(
        client=s3,
        dst_bucket="dst",
        options=CopyOptions(),
        part_log=Parts(),
        part_slots=asyncio.Semaphore(4),
        stopping=asyncio.Event(),
        requests=Requests(options=ObjectOptions(if_none_match=src.etag)),
    )
    result = asyncio.run(execute(ctx, _listed("k", 5, src.etag), POLICY))
    assert (result.status, result.error_code) == (
        TaskStatus.FAILED,
        "PreconditionFailed",
    )
    assert s3.get("dst", "copy/k") is None
    assert s3.calls == {"HeadObject": 1}
