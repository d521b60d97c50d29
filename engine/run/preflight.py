"""Checks run before a job starts, so a missing bucket is one clear message
instead of ten million failed tasks.

Each call is retried like a task's (``policy``): one 503 or a reset
connection must not fail a job before it starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any

from engine.copy.request import Requests
from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition
from engine.domain.errors import JobCannotStart, S3Error
from engine.domain.keys import normalize_prefix
from engine.domain.models import Task
from engine.s3.call import invoke_retrying

# the key of the start-up check's upload, under the destination prefix
PROBE = ".bulkcopy-preflight-"


def _why(err: S3Error) -> str:
    return f"{err.code} (HTTP {err.http_status})" if err.http_status else err.code


async def check_destination(
    client: Any,
    bucket: str,
    prefix: str,
    requests: Requests | None = None,
    policy: RetryPolicy | None = None,
) -> list[str]:
    """The destination bucket exists and we may write to it; returns warnings.

    Writability is probed with CreateMultipartUpload + AbortMultipartUpload,
    which needs ``s3:PutObject`` and leaves no object (nor version) behind;
    ``--expected-bucket-owner`` is checked on both calls.  The probe's
    uploads are then swept (:func:`sweep_probes`).
    """
    access = (requests or Requests()).destination()
    owner = {k: v for k, v in access.items() if k == "ExpectedBucketOwner"}
    base = normalize_prefix(prefix)
    probe = f"{base}{PROBE}{uuid.uuid4().hex}"
    # the bucket's HEAD and the write probe go at once (one round trip, not
    # two: at 100 ms a request, the start-up's wait halves)
    answers: list[object] = await asyncio.gather(
        invoke_retrying(
            "HeadBucket", client.head_bucket, policy, Bucket=bucket, **owner
        ),
        invoke_retrying(
            "CreateMultipartUpload",
            client.create_multipart_upload,
            policy,
            Bucket=bucket,
            Key=probe,
            **access,
        ),
        return_exceptions=True,
    )
    head, created = answers
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, S3Error):
            await _abort_probe(client, bucket, probe, created, access, policy)
            raise answer
    # 403 on HeadBucket only means no s3:ListBucket; the write probe decides
    if isinstance(head, S3Error) and (why := _head_refused(bucket, head)):
        # the probe may have been made all the same: it is not left open
        await _abort_probe(client, bucket, probe, created, access, policy)
        raise why from head
    if isinstance(created, S3Error):
        raise JobCannotStart(
            f"cannot write to destination s3://{bucket}/{base}: "
            f"{_why(created)}: {created.message}"
        ) from created
    # the sweep lists while the probe is aborted; an abort that fails is
    # caught by the sweep
    aborted = asyncio.ensure_future(
        _abort_probe(client, bucket, probe, created, access, policy)
    )
    return await sweep_probes(client, bucket, base, access, policy, aborted)


def _head_refused(bucket: str, err: S3Error) -> JobCannotStart | None:
    """Why a destination's failed HeadBucket stops the job (``None``: a 403,
    which only means no ``s3:ListBucket``)."""
    if err.http_status == 404 or err.code == "NoSuchBucket":
        return JobCannotStart(f"destination bucket {bucket!r} does not exist")
    if err.disposition is not Disposition.FATAL:
        return JobCannotStart(
            f"cannot reach destination bucket {bucket!r}: {_why(err)}: {err.message}"
        )
    if err.http_status != 403:
        return JobCannotStart(
            f"destination bucket {bucket!r}: {_why(err)}: {err.message}"
        )
    return None


async def _abort_probe(
    client: Any,
    bucket: str,
    key: str,
    created: object,
    access: dict[str, Any],
    policy: RetryPolicy | None,
) -> tuple[str, str] | None:
    """Abort the probe's upload, if ``created`` is its CreateMultipartUpload
    answer; its ``(key, upload id)`` once aborted (a failure is left to the
    sweep)."""
    if not isinstance(created, dict):
        return None
    try:
        await invoke_retrying(
            "AbortMultipartUpload",
            client.abort_multipart_upload,
            policy,
            Bucket=bucket,
            Key=key,
            UploadId=created["UploadId"],
            **access,
        )
    except S3Error:
        return None
    return key, created["UploadId"]


async def sweep_probes(
    client: Any,
    bucket: str,
    base: str,
    access: dict[str, Any],
    policy: RetryPolicy | None = None,
    aborted: Awaitable[tuple[str, str] | None] | None = None,
) -> list[str]:
    """Abort every start-up check upload under the destination prefix; say
    what could not be (a warning naming the ``bulkcopy cleanup`` command).
    ``aborted``: this check's own abort, made meanwhile: the upload it
    aborted is not aborted twice.

    Its own key is the only thing a check writes, so every upload under
    ``<prefix>.bulkcopy-preflight-`` is one: this check's when its abort
    failed, or when its create was sent twice (the SDK retried it after a
    lost answer: two uploads, one id known); an earlier run's killed between
    its create and its abort.  Another run's check in flight may lose its
    upload too: harmless, its create has already answered what it asked.
    Nothing is recorded: the listing finds them, on every run's start.
    """
    where = f"{base}{PROBE}"
    hint = f"`bulkcopy cleanup s3://{bucket}/{where} --older-than 0s`"
    try:
        uploads = await _uploads_under(client, bucket, where, access, policy)
    except S3Error as err:
        if aborted is not None:
            await aborted
        return [
            f"cannot list the start-up check's uploads under s3://{bucket}/{where}"
            f" ({_why(err)}); one left by an interrupted run stays open until "
            f"{hint} removes it"
        ]
    own = await aborted if aborted is not None else None
    left = 0
    for key, upload_id in uploads:
        if (key, upload_id) == own:
            continue  # aborted by its own check
        try:
            await invoke_retrying(
                "AbortMultipartUpload",
                client.abort_multipart_upload,
                policy,
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                **access,
            )
        except S3Error as err:
            if err.code != "NoSuchUpload":  # gone already: another run's sweep
                left += 1
    if left:
        return [
            f"{left} start-up check upload(s) under s3://{bucket}/{where} could "
            f"not be aborted; {hint} removes them"
        ]
    return []


async def _uploads_under(
    client: Any,
    bucket: str,
    prefix: str,
    access: dict[str, Any],
    policy: RetryPolicy | None,
) -> list[tuple[str, str]]:
    """``(key, upload id)`` of every multipart upload under ``prefix``."""
    out: list[tuple[str, str]] = []
    markers: dict[str, str] = {}
    while True:
        page = await invoke_retrying(
            "ListMultipartUploads",
            client.list_multipart_uploads,
            policy,
            Bucket=bucket,
            Prefix=prefix,
            **markers,
            **access,
        )
        out.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
        if not page.get("IsTruncated"):
            return out
        markers = {
            "KeyMarker": page.get("NextKeyMarker", ""),
            "UploadIdMarker": page.get("NextUploadIdMarker", ""),
        }


async def check_sources(
    client: Any,
    buckets: list[str],
    first: Task | None,
    requests: Requests | None = None,
    policy: RetryPolicy | None = None,
) -> list[str]:
    """Source buckets exist, and the first source object can be read.

    Returns warnings for what could not be checked (no ``s3:ListBucket``).
    """
    warnings: list[str] = []
    for bucket in buckets:
        try:
            await invoke_retrying(
                "HeadBucket", client.head_bucket, policy, Bucket=bucket
            )
        except S3Error as err:
            if err.http_status == 404 or err.code == "NoSuchBucket":
                raise JobCannotStart(
                    f"source bucket {bucket!r} does not exist"
                ) from err
            if err.http_status == 403:
                warnings.append(
                    f"cannot check source bucket {bucket!r} "
                    "(HeadBucket: AccessDenied); "
                    "going on"
                )
                continue
            raise JobCannotStart(
                f"cannot reach source bucket {bucket!r}: {_why(err)}: {err.message}"
            ) from err
    if first is not None:
        try:
            await invoke_retrying(
                "HeadObject",
                client.head_object,
                policy,
                **first.src.params(),
                **(requests or Requests()).head_source(),
            )
        except S3Error as err:
            if err.http_status == 403:
                raise JobCannotStart(
                    f"cannot read source {first.src.uri()}: AccessDenied"
                ) from err
            if err.disposition is not Disposition.FATAL:
                raise JobCannotStart(
                    f"cannot reach source {first.src.uri()}: {_why(err)}: {err.message}"
                ) from err
            # 404 and the like are the object's problem, recorded on its task.
    return warnings


async def _versioning(
    client: Any, bucket: str, owner: dict[str, Any], policy: RetryPolicy | None
) -> str | None:
    """``Enabled``, ``Suspended``, ``""`` (never enabled), or ``None`` when
    the store will not say (no s3:GetBucketVersioning, not implemented)."""
    try:
        answer = await invoke_retrying(
            "GetBucketVersioning",
            client.get_bucket_versioning,
            policy,
            Bucket=bucket,
            **owner,
        )
    except S3Error:
        return None
    return str(answer.get("Status") or "")


async def check_move(
    client: Any,
    dst_bucket: str,
    source_buckets: list[str],
    *,
    all_versions: bool,
    requests: Requests | None = None,
    policy: RetryPolicy | None = None,
    source_client: Any = None,
) -> tuple[frozenset[str], list[str]]:
    """Before a move (``--delete-source``): which source buckets keep
    versions (their objects are deleted by version id, ``null`` included, so
    no delete marker hides a version that stays), and warnings.

    Moving every version of a key (``--all-versions``) needs a destination
    that keeps versions: into one that does not, each version would overwrite
    the last, a delete marker would delete the copy, and the sources would be
    gone — refused (:class:`JobCannotStart`).  ``source_client`` reads the
    source buckets when it is not ``client``."""
    req = requests or Requests()
    reader = client if source_client is None else source_client
    dst_owner = {
        k: v for k, v in req.destination().items() if k == "ExpectedBucketOwner"
    }
    src_owner = {
        k: v for k, v in req.read_source().items() if k == "ExpectedBucketOwner"
    }
    warnings: list[str] = []
    if all_versions:
        status = await _versioning(client, dst_bucket, dst_owner, policy)
        if status != "Enabled":
            said = "cannot be read" if status is None else f"is {status or 'off'}"
            raise JobCannotStart(
                f"moving every version needs versioning enabled on the destination "
                f"bucket {dst_bucket!r} (it {said}): each version would replace the "
                "last one copied while its source is deleted"
            )
    versioned: set[str] = set()
    for bucket in source_buckets:
        status = await _versioning(reader, bucket, src_owner, policy)
        if status is None:
            warnings.append(
                f"cannot read the versioning of source bucket {bucket!r} "
                "(s3:GetBucketVersioning): its objects are deleted by the version "
                "the copy reported, else by key (a versioned bucket then keeps "
                "the data behind a delete marker)"
            )
        elif status:
            versioned.add(bucket)
    return frozenset(versioned), warnings
