"""Multipart copies against real S3 servers: properties, resume, pinning, answers."""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.copy.parts import expected_etag
from engine.domain.models import JobStatus, TaskStatus
from engine.domain.plan import MiB
from engine.run.worker import Worker
from engine.store import Repository
from tests.faults import response
from tests.helpers import get_body, run_job, submit_job, verify_job_now, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration

SIZE = 17 * MiB + 123  # 4 parts of 5 MiB with the last one short
MP = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}


def _big(server: S3Server, bucket: str, key: str, **extra: Any) -> bytes:
    body = os.urandom(SIZE)
    server.client().put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return body


def _open_uploads(server: S3Server, bucket: str) -> list[Any]:
    uploads: list[Any] = (
        server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    )
    return uploads


class Requests:
    """Counts copy requests per operation (through botocore's before-send)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send.s3.*", self._seen)

    def _seen(self, request: Any, event_name: str, **_: Any) -> None:
        if ".bulkcopy-preflight-" not in request.url:  # not the pre-flight probe
            self.count[event_name.rsplit(".", 1)[-1]] += 1


def test_multipart_copy_carries_every_property(moto: S3Server, tmp_path: Path) -> None:
    """Metadata, content headers, tags and storage class survive a multipart copy."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _big(
        moto,
        src,
        "big/ü file.bin",
        Metadata={"owner": "alice", "purpose": "test"},
        ContentType="application/x-test",
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="x.bin"',
        ContentEncoding="identity",
        ContentLanguage="de-CH",
        WebsiteRedirectLocation="/elsewhere",
        StorageClass="STANDARD_IA",
        Tagging="team=data&note=a%20b%2Bc",
    )
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big/ü file.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}/c", **MP)
    seen = Requests()

    counts = run_job(repo, job, moto, on_client=seen.install)

    assert counts.get(TaskStatus.SUCCEEDED) == 1
    [row] = list(repo.iter_results(job.id))
    assert row.method == "multipart"
    assert row.part_count == 4
    assert row.bytes == SIZE
    assert seen.count["UploadPartCopy"] == 4
    c = moto.client()
    s, d = (
        c.head_object(Bucket=src, Key="big/ü file.bin"),
        c.head_object(Bucket=dst, Key="c/big/ü file.bin"),
    )
    for field in (
        "Metadata",
        "ContentType",
        "CacheControl",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "WebsiteRedirectLocation",
        "StorageClass",
        "ContentLength",
    ):
        assert d.get(field) == s.get(field), field
    assert d["ETag"] == row.etag
    tags = c.get_object_tagging(Bucket=dst, Key="c/big/ü file.bin")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "data", "note": "a b+c"}
    assert get_body(moto, dst, "c/big/ü file.bin") == body
    assert _open_uploads(moto, dst) == []


def test_small_objects_still_use_copyobject(moto: S3Server, tmp_path: Path) -> None:
    """Below the threshold the method is a single CopyObject."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    moto.client().put_object(Bucket=src, Key="small", Body=b"x" * 1000)
    manifest = write_manifest(tmp_path / "m.csv", [(src, "small", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    run_job(repo, job, moto)
    [row] = list(repo.iter_results(job.id))
    assert row.method == "copy"
    assert row.part_count is None


def _interrupted_after_two_parts(
    moto: S3Server, tmp_path: Path
) -> tuple[Repository, str, str, str, bytes]:
    """Run a multipart copy and stop it hard once two parts are recorded."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _big(moto, src, "huge.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "huge.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    holder: dict[str, Worker] = {}
    parts_sent = Counter[str]()

    async def hang_after_two(request: Any, **_: Any) -> None:
        parts_sent["n"] += 1
        if parts_sent["n"] > 2:
            worker = holder["w"]
            worker.request_stop()
            worker.request_stop()
            await asyncio.sleep(60)

    def install(client: Any) -> None:
        client.meta.events.register("before-send.s3.UploadPartCopy", hang_after_two)

    run_job(
        repo,
        job,
        moto,
        on_client=install,
        part_concurrency=1,
        worker_hook=lambda w: holder.update(w=w),
    )
    return repo, job.id, src, dst, body


def test_resume_copies_only_the_missing_parts(moto: S3Server, tmp_path: Path) -> None:
    """After a hard stop mid-parts, the next run continues the same upload."""
    repo, job_id, _src, dst, body = _interrupted_after_two_parts(moto, tmp_path)
    assert repo.get_job(job_id).status is JobStatus.STOPPED
    [(task_id, _key, upload_id)] = repo.open_uploads(job_id)
    assert [u["UploadId"] for u in _open_uploads(moto, dst)] == [upload_id]
    # parts 1 and 2 were sent; the hard stop may cut off recording part 2
    recorded = len(repo.recorded_parts(task_id, upload_id))
    assert recorded in (1, 2)
    seen = Requests()

    run_job(repo, repo.get_job(job_id), moto, on_client=seen.install)

    [row] = list(repo.iter_results(job_id))
    assert row.status is TaskStatus.SUCCEEDED
    assert seen.count["CreateMultipartUpload"] == 0
    assert seen.count["ListParts"] == 1
    assert seen.count["UploadPartCopy"] == 4 - recorded  # only the missing parts
    assert get_body(moto, dst, "huge.bin") == body
    assert _open_uploads(moto, dst) == []
    assert repo.open_uploads(job_id) == []


def test_resume_after_the_upload_vanished_starts_over(
    moto: S3Server, tmp_path: Path
) -> None:
    """An upload aborted behind our back is started again, not reported as done."""
    repo, job_id, _src, dst, body = _interrupted_after_two_parts(moto, tmp_path)
    [(_task, _key, upload_id)] = repo.open_uploads(job_id)
    moto.client().abort_multipart_upload(Bucket=dst, Key="huge.bin", UploadId=upload_id)
    seen = Requests()

    run_job(repo, repo.get_job(job_id), moto, on_client=seen.install)

    [row] = list(repo.iter_results(job_id))
    assert row.status is TaskStatus.SUCCEEDED
    assert seen.count["CreateMultipartUpload"] == 1
    assert seen.count["UploadPartCopy"] == 4
    assert get_body(moto, dst, "huge.bin") == body


def test_an_upload_created_but_never_recorded_is_aborted_on_resume(
    moto: S3Server, tmp_path: Path
) -> None:
    """A process killed between CreateMultipartUpload and recording its id
    leaves an upload the job table does not know (the task says only that a
    create was under way): the next run aborts it, copies, and leaves no
    upload open."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _big(moto, src, "huge.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "huge.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    # what the killed run left: an upload on the server, a marker in the table
    stray = moto.client().create_multipart_upload(Bucket=dst, Key="huge.bin")
    [task] = repo.claim(job.id, "killed-worker", 1, lease_until=0.0)
    assert repo.upload_started(task.id, "killed-worker", "creating:1", "", 0)
    assert repo.open_uploads(job.id) == []  # not an upload to report or clean

    run_job(repo, repo.get_job(job.id), moto)

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.method == "multipart"
    assert get_body(moto, dst, "huge.bin") == body
    assert _open_uploads(moto, dst) == [], stray["UploadId"]


def test_source_changed_between_runs_fails_with_precondition(
    moto: S3Server, tmp_path: Path
) -> None:
    """A source overwritten while its copy was paused fails; the upload is aborted."""
    repo, job_id, src, dst, _body = _interrupted_after_two_parts(moto, tmp_path)
    _big(moto, src, "huge.bin")  # new bytes, new ETag

    run_job(repo, repo.get_job(job_id), moto)

    [row] = list(repo.iter_results(job_id))
    assert row.status is TaskStatus.FAILED
    assert row.error_code == "PreconditionFailed"
    assert _open_uploads(moto, dst) == []
    assert "Contents" not in moto.client().list_objects_v2(Bucket=dst)


def test_source_overwritten_mid_copy_fails_never_mixes(
    moto: S3Server, tmp_path: Path
) -> None:
    """Each part is pinned with CopySourceIfMatch; a changed source ends the copy.

    moto ignores ``x-amz-copy-source-if-match``, so the hook in front of it
    enforces the header the way S3 does: 412 when the source ETag differs.
    """
    src, dst = moto.new_bucket(), moto.new_bucket()
    _big(moto, src, "moving.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "moving.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    sync = moto.client()
    sent = Counter[str]()
    pinned: list[str] = []

    def enforce_if_match(request: Any, **_: Any) -> Any:
        sent["n"] += 1
        if sent["n"] == 2:  # the source is overwritten while part 2 is in flight
            sync.put_object(Bucket=src, Key="moving.bin", Body=os.urandom(SIZE))
        want = request.headers.get("x-amz-copy-source-if-match")
        pinned.append(want.decode() if isinstance(want, bytes) else want)
        now = sync.head_object(Bucket=src, Key="moving.bin")["ETag"]
        if want is not None and pinned[-1] != now:
            return response(
                request.url,
                412,
                b"<Error><Code>PreconditionFailed</Code>"
                b"<Message>At least one of the pre-conditions you "
                b"specified did not hold</Message></Error>",
            )
        return None

    run_job(
        repo,
        job,
        moto,
        part_concurrency=1,
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.UploadPartCopy", enforce_if_match
        ),
    )

    [row] = list(repo.iter_results(job.id))
    assert all(p for p in pinned)  # every part carried the pin
    assert row.status is TaskStatus.FAILED
    assert row.error_code == "PreconditionFailed"
    assert row.http_status == 412
    assert _open_uploads(moto, dst) == []
    assert "Contents" not in sync.list_objects_v2(Bucket=dst)


def test_complete_whose_answer_was_lost_is_recorded_once(
    moto: S3Server, tmp_path: Path
) -> None:
    """S3 completed the upload but the answer was an error: a HEAD settles it."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _big(moto, src, "lost.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "lost.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    sync = moto.client()

    def complete_then_fail(request: Any, **_: Any) -> Any:
        upload_id = request.url.split("uploadId=")[1].split("&")[0]
        root = ET.fromstring(request.body)
        parts = [
            {
                "PartNumber": int(
                    p.findtext("{*}PartNumber") or p.findtext("PartNumber")
                ),
                "ETag": p.findtext("{*}ETag") or p.findtext("ETag"),
            }
            for p in root
        ]
        sync.complete_multipart_upload(
            Bucket=dst,
            Key="lost.bin",
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        return response(
            request.url,
            200,
            b"<Error><Code>InternalError</Code><Message>lost</Message></Error>",
        )

    run_job(
        repo,
        job,
        moto,
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.CompleteMultipartUpload", complete_then_fail
        ),
    )

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.SUCCEEDED
    assert row.etag == sync.head_object(Bucket=dst, Key="lost.bin")["ETag"]
    assert get_body(moto, dst, "lost.bin") == body


def test_empty_part_answers_are_never_a_success(
    rclone: S3Server, tmp_path: Path
) -> None:
    """rclone answers UploadPartCopy with an empty 200: the task fails, none lands."""
    src, dst = rclone.new_bucket(), rclone.new_bucket()
    _big(rclone, src, "big.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, rclone, f"s3://{dst}", **MP, preserve_tags=False)

    run_job(repo, job, rclone)

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.FAILED
    assert row.error_code in ("EmptyResponse", "MissingETag")
    assert row.etag is None
    assert "Contents" not in rclone.client().list_objects_v2(Bucket=dst)
    assert repo.open_uploads(job.id) == []


def test_expected_etag_matches_the_server(moto: S3Server, tmp_path: Path) -> None:
    """Our multipart ETag arithmetic agrees with the server's."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    _big(moto, src, "e.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "e.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    etags: list[str] = []

    def grab(parsed: Any, **_: Any) -> None:
        etags.append(parsed["CopyPartResult"]["ETag"])

    run_job(
        repo,
        job,
        moto,
        part_concurrency=1,
        on_client=lambda c: c.meta.events.register(
            "after-call.s3.UploadPartCopy", grab
        ),
    )
    [row] = list(repo.iter_results(job.id))
    assert expected_etag(etags) == row.etag


def test_a_drained_stop_keeps_the_upload_and_its_finished_parts(
    moto: S3Server, tmp_path: Path
) -> None:
    """Ctrl-C mid-parts lets the part in flight finish, records it, keeps the upload."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _big(moto, src, "drain.bin")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "drain.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)
    holder: dict[str, Worker] = {}
    sent = Counter[str]()

    def stop_during_part_two(request: Any, **_: Any) -> None:
        sent["n"] += 1
        if sent["n"] == 2:
            holder["w"].request_stop()  # once: drain

    run_job(
        repo,
        job,
        moto,
        part_concurrency=1,
        worker_hook=lambda w: holder.update(w=w),
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.UploadPartCopy", stop_during_part_two
        ),
    )

    assert repo.get_job(job.id).status is JobStatus.STOPPED
    [(task_id, _key, upload_id)] = repo.open_uploads(job.id)
    assert [p.number for p in repo.recorded_parts(task_id, upload_id)] == [1, 2]
    assert sent["n"] == 2

    seen = Requests()
    run_job(repo, repo.get_job(job.id), moto, on_client=seen.install)
    assert seen.count["UploadPartCopy"] == 2
    assert get_body(moto, dst, "drain.bin") == body


def _multipart_source(
    server: S3Server, bucket: str, key: str, sizes: list[int]
) -> bytes:
    c = server.client()
    up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    chunks, parts = [], []
    for n, size in enumerate(sizes, 1):
        chunk = os.urandom(size)
        chunks.append(chunk)
        etag = c.upload_part(
            Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=chunk
        )["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    return b"".join(chunks)


@pytest.mark.parametrize("match", [True, False], ids=["matched", "planned"])
def test_match_source_parts_reproduces_the_source_etag(
    moto: S3Server, tmp_path: Path, match: bool
) -> None:
    """With --match-source-parts the destination ETag equals the source's."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = _multipart_source(moto, src, "mp.bin", [6 * MiB, 5 * MiB, 7 * MiB + 5])
    manifest = write_manifest(tmp_path / "m.csv", [(src, "mp.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo, manifest, moto, f"s3://{dst}", **MP, match_source_parts=match
    )

    run_job(repo, job, moto)

    [row] = list(repo.iter_results(job.id))
    src_etag = moto.client().head_object(Bucket=src, Key="mp.bin")["ETag"]
    assert row.status is TaskStatus.SUCCEEDED, (row.error_code, row.error_message)
    assert (row.etag == src_etag) is match
    assert row.part_count == (3 if match else 4)
    assert get_body(moto, dst, "mp.bin") == body


def test_verify_passes_good_copies_and_catches_tampering(
    moto: S3Server, tmp_path: Path
) -> None:
    """--verify accepts true copies; `verify` later fails ones changed since."""
    from tests.helpers import seed

    src, dst = moto.new_bucket(), moto.new_bucket()
    _big(moto, src, "big.bin", Metadata={"m": "1"}, Tagging="t=1")
    seed(moto, src, ["a", "b", "c"])
    keys = ["big.bin", "a", "b", "c"]
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP, verify=True)

    counts = run_job(repo, job, moto)
    failed = list(repo.iter_results(job.id, failed_only=True))
    assert counts.get(TaskStatus.SUCCEEDED) == 4, [r.error_message for r in failed]

    c = moto.client()
    c.put_object(Bucket=dst, Key="a", Body=b"tampered")
    c.copy_object(
        Bucket=dst,
        Key="b",
        CopySource={"Bucket": dst, "Key": "b"},
        Metadata={"x": "y"},
        MetadataDirective="REPLACE",
    )
    c.delete_object(Bucket=dst, Key="c")

    checked, failures = verify_job_now(moto, repo, job.id)
    assert checked == 4
    assert len(failures) == 3
    rows = {r.src.key: r for r in repo.iter_results(job.id)}
    assert rows["big.bin"].status is TaskStatus.SUCCEEDED
    for key in ("a", "b", "c"):
        assert rows[key].status is TaskStatus.FAILED, key
        assert rows[key].error_code == "VerificationFailed"
    assert "size" in (rows["a"].error_message or "")
    assert "metadata" in (rows["b"].error_message or "")
    assert "NoSuchKey" in (rows["c"].error_message or "")


@pytest.mark.parametrize("size", [1000, SIZE], ids=["copyobject", "multipart"])
def test_preserve_acl_copies_the_source_grants(
    moto: S3Server, tmp_path: Path, size: int
) -> None:
    """`--preserve acl` gives small and large copies the source's ACL."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    c.put_object(Bucket=src, Key="obj", Body=os.urandom(size), ACL="public-read")
    manifest = write_manifest(tmp_path / "m.csv", [(src, "obj", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP, preserve_acl=True)

    run_job(repo, job, moto)

    [row] = list(repo.iter_results(job.id))
    assert row.status is TaskStatus.SUCCEEDED, row.error_message

    def grants(bucket: str) -> list[tuple[str, str]]:
        acl = c.get_object_acl(Bucket=bucket, Key="obj")["Grants"]
        return sorted(
            (g["Grantee"].get("URI", g["Grantee"].get("ID", "")), g["Permission"])
            for g in acl
        )

    assert grants(dst) == grants(src)
    assert any("AllUsers" in g for g, _p in grants(dst))
