"""The store matrix: what bulkcopy promises, on every real S3 server at hand.

moto, ``rclone serve s3``, Ceph RGW and LocalStack each run as a real
process over HTTP (``tests/conftest.py``).  Each test states one promise of
the README and checks it on each store; where a store ignores what S3
honours (RGW: ``TaggingDirective``, tags on CreateMultipartUpload,
``x-amz-copy-source-if-match``, quoted ETags; LocalStack: DeleteObject
``If-Match``), the test shows that bulkcopy's defence keeps the promise
there.  What a store cannot do at all (rclone: tags, versions, SSE-C) is
left out of that store's run of a test, never asserted away.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from engine.domain.models import JobStatus, TaskStatus
from engine.domain.options import ObjectOptions
from engine.domain.records import JobRecord, ResultRow
from engine.run.worker import Worker
from engine.store import Repository
from tests.acceptance.conftest import Cli
from tests.helpers import (
    get_body,
    run_job,
    submit_job,
    verify_job_now,
    write_manifest,
)
from tests.servers import S3Server

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
BIG = 12 * MiB + 5  # three parts of 5 MiB, the last one short
MP = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}
PROPS: dict[str, Any] = {
    "Metadata": {"origin": "matrix"},
    "ContentType": "text/x-matrix",
    "CacheControl": "max-age=60",
    "ContentDisposition": "inline",
}
TAGS = {"team": "storage", "tier": "gold"}
# the stores that keep versions, copy SSE-C objects, take tags and copy parts
# (rclone does none of these: its UploadPartCopy answers without a part ETag;
# Ceph RGW 16 answers a copy of an SSE-C source 501 NotImplemented)
VERSIONED = ["moto", "rgw", "localstack"]
SSE_C = ["moto", "localstack"]
TAGGED = ["moto", "rgw", "localstack"]
MULTIPART = ["moto", "rgw", "localstack"]


def _big_if_multipart(store: S3Server) -> dict[str, bytes]:
    """A large object where the store can copy parts (rclone cannot)."""
    if "multipart-copy" not in store.features:
        return {}
    return {"big.bin": os.urandom(BIG)}


def _put(
    store: S3Server, bucket: str, key: str, body: bytes, **extra: Any
) -> dict[str, Any]:
    """Put a source object with PROPS (and TAGS where the store has tags)."""
    args = {**PROPS, **extra}
    if "tags" in store.features:
        args["Tagging"] = urlencode(TAGS)
    answer: dict[str, Any] = store.client().put_object(
        Bucket=bucket, Key=key, Body=body, **args
    )
    return answer


def _tags(store: S3Server, bucket: str, key: str) -> dict[str, str]:
    tag_set = (
        store.client().get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    )
    return {t["Key"]: t["Value"] for t in tag_set}


def _meta(head: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}


def _job(
    store: S3Server,
    tmp_path: Path,
    src: str,
    keys: list[str],
    dst: str,
    **copy: Any,
) -> tuple[Repository, JobRecord]:
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    # a store without tags (rclone: GetObjectTagging answers 500) is copied
    # without them, as its users must
    copy.setdefault("preserve_tags", "tags" in store.features)
    return repo, submit_job(repo, manifest, store, dst, **{**MP, **copy})


def _rows(repo: Repository, job: JobRecord) -> dict[str, ResultRow]:
    return {r.src.key: r for r in repo.iter_results(job.id)}


def _succeeded(rows: dict[str, ResultRow]) -> None:
    for key, r in rows.items():
        assert r.status is TaskStatus.SUCCEEDED, (key, r.error_code, r.error_message)


def _open_uploads(store: S3Server, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = (
        store.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    )
    return uploads


def _has_props(store: S3Server, bucket: str, key: str) -> None:
    """The copy carries PROPS (rclone adds an mtime of its own: a superset)."""
    head = store.client().head_object(Bucket=bucket, Key=key)
    assert _meta(head).items() >= {"origin": "matrix"}.items(), head.get("Metadata")
    for name in ("ContentType", "CacheControl", "ContentDisposition"):
        assert head.get(name) == PROPS[name], (name, head.get(name))
    if "tags" in store.features:
        assert _tags(store, bucket, key) == TAGS


def test_copies_carry_metadata_headers_and_tags(
    store: S3Server, tmp_path: Path
) -> None:
    """CopyObject and multipart copies both arrive with the source's metadata,
    content headers and tags (RGW drops the tags of a multipart create:
    bulkcopy sets them afterwards), and every recorded ETag is quoted and is
    the destination's (RGW answers CopyObject with a bare one)."""
    src, dst = store.new_bucket(), store.new_bucket()
    bodies = {"small.txt": b"small body" * 30, **_big_if_multipart(store)}
    for key, body in bodies.items():
        _put(store, src, key, body)
    repo, job = _job(store, tmp_path, src, list(bodies), f"s3://{dst}/")

    run_job(repo, job, store)

    rows = _rows(repo, job)
    _succeeded(rows)
    assert rows["small.txt"].method == "copy"
    assert [r.method for r in rows.values()].count("multipart") == len(bodies) - 1
    c = store.client()
    for key, body in bodies.items():
        assert get_body(store, dst, key) == body
        _has_props(store, dst, key)
        etag = rows[key].etag or ""
        assert etag.startswith('"'), etag
        assert etag.endswith('"'), etag
        assert etag == c.head_object(Bucket=dst, Key=key)["ETag"]


def _copy_one_replacing(
    store: S3Server, tmp_path: Path, options: ObjectOptions
) -> tuple[str, dict[str, str]]:
    src, dst = store.new_bucket(), store.new_bucket()
    _put(store, src, "one.txt", b"one")
    repo, job = _job(
        store, tmp_path, src, ["one.txt"], f"s3://{dst}/", object_options=options
    )
    run_job(repo, job, store)
    _succeeded(_rows(repo, job))
    return dst, _meta(store.client().head_object(Bucket=dst, Key="one.txt"))


def test_replaced_metadata_reaches_the_copy_and_tags_stay(
    store: S3Server, tmp_path: Path
) -> None:
    """REPLACE of the metadata keeps the tags: RGW ties tags to the
    MetadataDirective and gave the copy none; the copy is confirmed and its
    tags set."""
    options = ObjectOptions(metadata_directive="REPLACE", metadata={"stage": "c"})

    dst, meta = _copy_one_replacing(store, tmp_path, options)

    assert meta.get("stage") == "c"
    # rclone keeps the old metadata beside the new: nothing promised is lost
    assert ("origin" in meta) is ("metadata-replace" not in store.features)
    if "tags" in store.features:
        assert _tags(store, dst, "one.txt") == TAGS


@pytest.mark.parametrize("store", TAGGED, indirect=True)
def test_replaced_tags_reach_the_copy_and_metadata_stays(
    store: S3Server, tmp_path: Path
) -> None:
    """REPLACE of the tags keeps the metadata: RGW ignores TaggingDirective
    and gave the copy the source's tags; the copy is confirmed and its tags
    set."""
    options = ObjectOptions(tagging_directive="REPLACE", tags={"env": "prod"})

    dst, meta = _copy_one_replacing(store, tmp_path, options)

    assert meta.get("origin") == "matrix"
    assert _tags(store, dst, "one.txt") == {"env": "prod"}


@pytest.mark.parametrize("store", MULTIPART, indirect=True)
def test_a_multipart_copy_keeps_the_sources_checksum_algorithm(
    store: S3Server, tmp_path: Path
) -> None:
    """A source stored with SHA-256 is copied part by part into an object
    with SHA-256 checksums (the source HEAD asks for its checksum; LocalStack
    gave the copy its default CRC64NVME before)."""
    src, dst = store.new_bucket(), store.new_bucket()
    body = os.urandom(BIG)
    checksums = "checksums" in store.features
    _put(
        store,
        src,
        "big.bin",
        body,
        **({"ChecksumAlgorithm": "SHA256"} if checksums else {}),
    )
    repo, job = _job(store, tmp_path, src, ["big.bin"], f"s3://{dst}/")

    run_job(repo, job, store)

    _succeeded(_rows(repo, job))
    assert get_body(store, dst, "big.bin") == body
    if checksums:
        head = store.client().head_object(
            Bucket=dst, Key="big.bin", ChecksumMode="ENABLED"
        )
        assert head.get("ChecksumSHA256"), head


def test_a_move_deletes_each_source_only_after_its_copy_is_checked(
    store: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`bulkcopy move` of small and multipart objects, through the CLI: every
    source is deleted, every copy has its properties and tags, the report's
    ETags are all quoted.  (On RGW every small move failed with "the
    destination changed since the copy": a bare ETag against a quoted one;
    LocalStack refuses DeleteObject If-Match with 501.)"""
    cli = cli_for(store)
    src, dst = store.new_bucket(), store.new_bucket()
    bodies = {f"s{i}.txt": f"small {i}".encode() for i in range(3)}
    bodies.update(_big_if_multipart(store))
    for key, body in bodies.items():
        _put(store, src, key, body)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in bodies])

    res = cli(
        "move",
        str(manifest),
        "--to",
        f"s3://{dst}/",
        "--multipart-threshold",
        "5MiB",
        "--part-size",
        "5MiB",
        *([] if "tags" in store.features else ["--no-preserve-tags"]),
    )

    assert res.returncode == 0, res.stderr
    assert store.client().list_objects_v2(Bucket=src).get("KeyCount", 0) == 0
    for key, body in bodies.items():
        assert get_body(store, dst, key) == body
        _has_props(store, dst, key)
    [job_id] = [
        json.loads(line)["job_id"] for line in cli("jobs", "--json").stdout.splitlines()
    ]
    out = tmp_path / "report"
    assert cli("report", job_id, "--out", str(out)).returncode == 0
    lines = [
        json.loads(line)
        for line in next(out.rglob("results.jsonl")).read_text().splitlines()
    ]
    assert len(lines) == len(bodies)
    for line in lines:
        assert line["status"] == "succeeded", line
        assert line["source_deleted"] is True
        assert line["etag"].startswith('"'), line
        assert line["etag"].endswith('"'), line
    assert _open_uploads(store, dst) == []


@pytest.mark.parametrize("store", MULTIPART, indirect=True)
def test_a_source_overwritten_during_its_multipart_copy_is_never_a_mixed_object(
    store: S3Server, tmp_path: Path
) -> None:
    """The source is replaced while part 2 is copied: the task fails, its
    upload is aborted, nothing lands.  RGW and moto ignore the parts'
    CopySourceIfMatch: the source's HEAD after the last part catches it."""
    src, dst = store.new_bucket(), store.new_bucket()
    _put(store, src, "moving.bin", os.urandom(BIG))
    repo, job = _job(store, tmp_path, src, ["moving.bin"], f"s3://{dst}/")
    sync = store.client()
    parts = Counter[str]()

    def overwrite_during_part_two(**_: Any) -> None:
        parts["n"] += 1
        if parts["n"] == 2:
            sync.put_object(Bucket=src, Key="moving.bin", Body=os.urandom(BIG))

    run_job(
        repo,
        job,
        store,
        part_concurrency=1,
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.UploadPartCopy", overwrite_during_part_two
        ),
    )

    [row] = _rows(repo, job).values()
    assert row.status is TaskStatus.FAILED
    assert row.error_code == "PreconditionFailed", row.error_message
    assert _open_uploads(store, dst) == []
    assert store.client().list_objects_v2(Bucket=dst).get("KeyCount", 0) == 0


def _interrupted_after_two_parts(
    store: S3Server, tmp_path: Path, src: str, dst: str
) -> tuple[Repository, JobRecord]:
    """A multipart copy stopped hard once two parts are sent."""
    repo, job = _job(store, tmp_path, src, ["huge.bin"], f"s3://{dst}/")
    holder: dict[str, Worker] = {}
    sent = Counter[str]()

    async def hang_after_two(**_: Any) -> None:
        sent["n"] += 1
        if sent["n"] > 2:
            holder["w"].request_stop()
            holder["w"].request_stop()
            await asyncio.sleep(60)

    run_job(
        repo,
        job,
        store,
        part_concurrency=1,
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.UploadPartCopy", hang_after_two
        ),
        worker_hook=lambda w: holder.update(w=w),
    )
    return repo, job


@pytest.mark.parametrize("store", MULTIPART, indirect=True)
def test_a_resume_after_the_upload_was_aborted_behind_its_back_starts_over(
    store: S3Server, tmp_path: Path
) -> None:
    """An interrupted multipart copy whose upload someone aborted: the next
    run starts a new upload and finishes (RGW answers ListParts of the
    aborted upload with NoSuchKey, not NoSuchUpload)."""
    src, dst = store.new_bucket(), store.new_bucket()
    body = os.urandom(BIG)
    _put(store, src, "huge.bin", body)
    repo, job = _interrupted_after_two_parts(store, tmp_path, src, dst)
    assert repo.get_job(job.id).status is JobStatus.STOPPED
    [(_task, _key, upload_id)] = repo.open_uploads(job.id)
    store.client().abort_multipart_upload(
        Bucket=dst, Key="huge.bin", UploadId=upload_id
    )

    run_job(repo, repo.get_job(job.id), store)

    _succeeded(_rows(repo, job))
    assert get_body(store, dst, "huge.bin") == body
    _has_props(store, dst, "huge.bin")
    assert _open_uploads(store, dst) == []


@pytest.mark.parametrize("store", MULTIPART, indirect=True)
def test_verify_fails_a_copy_whose_source_was_replaced_by_same_size_bytes(
    store: S3Server, tmp_path: Path
) -> None:
    """A multipart copy has no comparable ETag and often no shared checksum;
    `verify` still tells a source replaced since by other bytes of the same
    size, by the ETag the copy was pinned to."""
    src, dst = store.new_bucket(), store.new_bucket()
    _put(store, src, "big.bin", os.urandom(BIG))
    repo, job = _job(store, tmp_path, src, ["big.bin"], f"s3://{dst}/")
    run_job(repo, job, store)
    _succeeded(_rows(repo, job))
    assert verify_job_now(store, repo, job.id) == (1, [])

    _put(store, src, "big.bin", os.urandom(BIG))
    checked, failures = verify_job_now(store, repo, job.id)

    assert checked == 1
    [(_id, code, message)] = failures
    assert code == "VerificationFailed"
    assert "the source changed since it was copied" in message


def test_a_listing_of_a_missing_bucket_cannot_start(
    store: S3Server, cli_for: Callable[[S3Server], Cli]
) -> None:
    """`copy --from s3://missing/`: exit 3 (bucket missing), one line."""
    cli = cli_for(store)
    dst = store.new_bucket()
    res = cli("copy", "--from", "s3://bulkcopy-no-such-bucket/", "--to", f"s3://{dst}/")
    assert res.returncode == 3, res.stderr
    assert "cannot list: NoSuchBucket" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("store", VERSIONED, indirect=True)
def test_a_version_named_in_the_manifest_is_the_one_copied(
    store: S3Server, tmp_path: Path
) -> None:
    """A manifest row with a version id copies that version, small or large,
    and records it."""
    src, dst = store.new_bucket(versioned=True), store.new_bucket()
    old = {"v.txt": b"old small", "v.bin": os.urandom(BIG)}
    versions = {k: _put(store, src, k, b)["VersionId"] for k, b in old.items()}
    for key in old:
        _put(store, src, key, b"newer")
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, versions[k]) for k in old])
    repo = Repository(str(tmp_path / "jobs.sqlite"))
    job = submit_job(repo, manifest, store, f"s3://{dst}/", **MP)  # tags: all have

    run_job(repo, job, store)

    rows = _rows(repo, job)
    _succeeded(rows)
    for key, body in old.items():
        assert get_body(store, dst, key) == body
        assert rows[key].src_version_id == versions[key]
        _has_props(store, dst, key)


@pytest.mark.parametrize("store", SSE_C, indirect=True)
def test_sse_c_objects_are_copied_with_both_keys(
    store: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSE-C source is read with its key and written with another, small
    and multipart (RGW takes SSE-C over plain http when told to)."""
    src_key, dst_key = os.urandom(32), os.urandom(32)
    monkeypatch.setenv("MATRIX_SRC_KEY", base64.b64encode(src_key).decode())
    monkeypatch.setenv("MATRIX_DST_KEY", base64.b64encode(dst_key).decode())
    src, dst = store.new_bucket(), store.new_bucket()
    bodies = {"c.txt": b"secret small", "c.bin": os.urandom(BIG)}
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": src_key}
    for key, body in bodies.items():
        store.client().put_object(Bucket=src, Key=key, Body=body, **sse)
    options = ObjectOptions(
        source_sse_c_key="env:MATRIX_SRC_KEY", sse_c_key="env:MATRIX_DST_KEY"
    )
    repo, job = _job(
        store, tmp_path, src, list(bodies), f"s3://{dst}/", object_options=options
    )

    run_job(repo, job, store)

    rows = _rows(repo, job)
    if "sse-c-multipart-checksum" not in store.features:
        # LocalStack drops the checksum of an SSE-C multipart upload: the
        # copy is not passed off as carrying the source's algorithm
        big = rows.pop("c.bin")
        assert big.status is TaskStatus.FAILED
        assert big.error_code == "VerificationFailed"
        assert "ignored ChecksumAlgorithm" in (big.error_message or "")
        del bodies["c.bin"]
    _succeeded(rows)
    for key, body in bodies.items():
        got = store.client().get_object(
            Bucket=dst, Key=key, SSECustomerAlgorithm="AES256", SSECustomerKey=dst_key
        )
        assert got["Body"].read() == body


def test_an_object_overwritten_after_its_listing_is_recorded_as_copied(
    store: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """A listing's size and ETag stand in for a HEAD: each copy is pinned to
    the listed ETag.  An object overwritten between the listing and its copy
    is copied as it is now and recorded so — its bytes and ETag, never the
    listed ones — on every store: where the store ignores the pin (moto,
    rclone, Ceph RGW 16) the run's first listed copy finds that out and each
    object is HEADed before its copy."""
    cli = cli_for(store)
    src, dst = store.new_bucket(), store.new_bucket()
    for i in range(6):
        store.client().put_object(Bucket=src, Key=f"k{i}", Body=f"listed {i}".encode())
    sub = cli("submit", "--from", f"s3://{src}/", "--to", f"s3://{dst}/")
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip()
    now = {f"k{i}": f"listed {i}".encode() for i in range(6)}
    for key in ("k0", "k3"):
        now[key] = f"{key} overwritten after the listing".encode()
        store.client().put_object(Bucket=src, Key=key, Body=now[key])

    res = cli("run", job_id)

    assert res.returncode == 0, res.stderr
    # the log says which stores ignore the pin (LocalStack holds it)
    said = "x-amz-copy-source-if-match" in res.stderr
    assert said is (store.name != "localstack"), res.stderr
    out = tmp_path / "report"
    assert cli("report", job_id, "--out", str(out)).returncode == 0
    lines = [
        json.loads(line)
        for line in next(out.rglob("results.jsonl")).read_text().splitlines()
    ]
    assert sorted(line["source"]["key"] for line in lines) == sorted(now)
    for line in lines:
        key = line["source"]["key"]
        head = store.client().head_object(Bucket=src, Key=key)
        assert line["status"] == "succeeded", line
        assert get_body(store, dst, key) == now[key]
        assert line["bytes"] == len(now[key]), line
        assert line["source_etag"].strip('"') == head["ETag"].strip('"'), line


def test_a_listing_is_copied_while_it_is_read_each_object_once(
    store: S3Server, cli_for: Callable[[S3Server], Cli], tmp_path: Path
) -> None:
    """`copy --from` claims each page as soon as it is stored, on every store:
    the prefix's objects (not the one beside it) are copied and reported
    once each, the listing's total logged when it ends."""
    cli = cli_for(store)
    src, dst = store.new_bucket(), store.new_bucket()
    keys = [f"p/k{i}" for i in range(5)]
    for key in [*keys, "other/x"]:
        store.client().put_object(Bucket=src, Key=key, Body=key.encode())

    res = cli(
        "copy",
        "--from",
        f"s3://{src}/p/",
        "--to",
        f"s3://{dst}/",
        "--log-format",
        "json",
    )

    assert res.returncode == 0, res.stderr
    events = [
        json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")
    ]
    (done,) = [e for e in events if e["event"] == "listing_done"]
    assert done["tasks"] == len(keys)
    job_id = done["job_id"]
    out = tmp_path / "report"
    assert cli("report", job_id, "--out", str(out)).returncode == 0
    lines = [
        json.loads(line)
        for line in next(out.rglob("results.jsonl")).read_text().splitlines()
    ]
    assert sorted(line["source"]["key"] for line in lines) == keys
    assert {line["status"] for line in lines} == {"succeeded"}
    for key in keys:
        assert get_body(store, dst, key) == key.encode()
    listed = store.client().list_objects_v2(Bucket=dst).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == keys
