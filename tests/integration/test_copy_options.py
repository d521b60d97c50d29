"""CopyObject options end to end: what the copies get, and what each call sends.

Every option is checked both ways where moto allows: read back from the
destination with boto3, and captured as sent (``before-send``).  Options moto
would refuse or ignore (SSE-KMS context, object lock, IBM retention headers,
copy-source conditions) are proven by capture, with the write calls answered
by the capture itself so the test does not depend on what moto honours.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from botocore.awsrequest import HTTPHeaders

from engine.domain.errors import ManifestError
from engine.domain.keys import KeyMapping
from engine.domain.models import TaskStatus
from engine.domain.options import ObjectOptions
from engine.domain.records import ResultRow
from engine.run.worker import Worker
from engine.store import Repository
from tests.faults import _Raw, response
from tests.helpers import encode, get_body, run_job, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
MP = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}
BIG = 12 * MiB  # 3 parts of 5 MiB, the last one short
SOURCE_PROPS: dict[str, Any] = {
    "Metadata": {"owner": "alice", "purpose": "test"},
    "ContentType": "application/x-source",
    "CacheControl": "max-age=60",
    "ContentLanguage": "de-CH",
    "ContentDisposition": 'attachment; filename="src.bin"',
    "Tagging": "team=data&note=a%20b",
}
SOURCE_TAGS = {"team": "data", "note": "a b"}
CANONICAL_ID = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
OWNER = "111122223333"
SRC_OWNER = "444455556666"

# the two copy paths, by source key: below and above the multipart threshold
PATHS = pytest.mark.parametrize(
    ("key", "method"),
    [("small.txt", "copy"), ("big.bin", "multipart")],
    ids=["copyobject", "multipart"],
)


@dataclass(frozen=True)
class Source:
    """A source bucket whose objects all carry ``SOURCE_PROPS``."""

    bucket: str
    bodies: dict[str, bytes]


def _put(server: S3Server, bucket: str, key: str, body: bytes) -> None:
    server.client().put_object(Bucket=bucket, Key=key, Body=body, **SOURCE_PROPS)


@pytest.fixture(scope="module")
def source(moto: S3Server) -> Source:
    """Small and big sources with metadata, content headers and tags, seeded once."""
    bucket = moto.new_bucket()
    bodies: dict[str, bytes] = {}
    for key in ("small.txt", "small-1.txt", "small-2.txt", "small-3.txt"):
        bodies[key] = f"small body of {key}".encode() * 40
    for key in ("big.bin", "big-1.bin", "big-2.bin"):
        bodies[key] = os.urandom(BIG)
    for key, body in bodies.items():
        _put(moto, bucket, key, body)
    return Source(bucket, bodies)


def _copy(
    moto: S3Server,
    tmp_path: Path,
    rows: list[tuple[str, str, str | None]],
    dst: str,
    obj: ObjectOptions | None = None,
    *,
    on_client: Any = None,
    preflight: bool = True,
    headers: dict[str, str] | None = None,
    **copy: Any,
) -> list[ResultRow]:
    """Submit and run one job in-process; its results, sorted by manifest line."""
    manifest = write_manifest(tmp_path / "m.csv", rows)
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(
        repo,
        manifest,
        moto,
        dst,
        object_options=obj or ObjectOptions(),
        headers=headers,
        **{**MP, **copy},
    )
    run_job(repo, job, moto, on_client=on_client, preflight=preflight)
    return sorted(repo.iter_results(job.id), key=lambda r: r.line)


def _ok(rows: Iterable[ResultRow]) -> None:
    for r in rows:
        assert r.status is TaskStatus.SUCCEEDED, (r.src.key, r.error_message)


def _tags(moto: S3Server, bucket: str, key: str) -> dict[str, str]:
    tag_set = moto.client().get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def _grants(moto: S3Server, bucket: str, key: str) -> set[tuple[str, str]]:
    acl = moto.client().get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return {
        (g["Grantee"].get("URI") or g["Grantee"].get("ID", ""), g["Permission"])
        for g in acl
    }


# -- a. what the destination object gets ---------------------------------------


@PATHS
def test_replace_sets_exactly_what_the_options_give(
    moto: S3Server, source: Source, tmp_path: Path, key: str, method: str
) -> None:
    """REPLACE, tags, storage class and a canned ACL land; nothing of the source's."""
    dst = moto.new_bucket()
    obj = ObjectOptions(
        storage_class="STANDARD_IA",
        acl="public-read",
        metadata_directive="REPLACE",
        metadata={"stage": "copied", "n": "1"},
        cache_control="no-cache",
        content_language="fr",
        tagging_directive="REPLACE",
        tags={"env": "prod", "odd key": "a+b c"},
    )

    [row] = _copy(moto, tmp_path, [(source.bucket, key, None)], f"s3://{dst}", obj)

    _ok([row])
    assert row.method == method
    head = moto.client().head_object(Bucket=dst, Key=key)
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"stage": "copied", "n": "1"}
    assert head["CacheControl"] == "no-cache"
    assert head["ContentLanguage"] == "fr"
    # REPLACE without a content type or disposition carries none of the source's
    assert head.get("ContentType") != SOURCE_PROPS["ContentType"]
    assert "ContentDisposition" not in head
    assert _tags(moto, dst, key) == {"env": "prod", "odd key": "a+b c"}
    assert (ALL_USERS, "READ") in _grants(moto, dst, key)
    assert get_body(moto, dst, key) == source.bodies[key]


@PATHS
def test_grants_and_content_type_land(
    moto: S3Server, source: Source, tmp_path: Path, key: str, method: str
) -> None:
    """--grant-read gives that grantee READ; REPLACE with a content type sets it."""
    dst = moto.new_bucket()
    obj = ObjectOptions(
        grant_read=f'id="{CANONICAL_ID}"',
        grant_full_control=f'uri="{ALL_USERS}"',
        metadata_directive="REPLACE",
        content_type="text/x-replaced",
        website_redirect_location="/moved",
    )

    [row] = _copy(moto, tmp_path, [(source.bucket, key, None)], f"s3://{dst}", obj)

    _ok([row])
    assert row.method == method
    assert {(CANONICAL_ID, "READ"), (ALL_USERS, "FULL_CONTROL")} <= _grants(
        moto, dst, key
    )
    head = moto.client().head_object(Bucket=dst, Key=key)
    assert head["ContentType"] == "text/x-replaced"
    assert head["WebsiteRedirectLocation"] == "/moved"
    assert head["Metadata"] == {}
    assert _tags(moto, dst, key) == SOURCE_TAGS  # tagging directive untouched


@PATHS
def test_default_copy_keeps_the_sources_properties(
    moto: S3Server, source: Source, tmp_path: Path, key: str, method: str
) -> None:
    """With no option, metadata, content headers and tags are the source's."""
    dst = moto.new_bucket()

    [row] = _copy(moto, tmp_path, [(source.bucket, key, None)], f"s3://{dst}")

    _ok([row])
    assert row.method == method
    head = moto.client().head_object(Bucket=dst, Key=key)
    for name in ("Metadata", "ContentType", "CacheControl", "ContentLanguage"):
        assert head.get(name) == SOURCE_PROPS[name], name
    assert head["ContentDisposition"] == SOURCE_PROPS["ContentDisposition"]
    assert head.get("StorageClass", "STANDARD") == "STANDARD"
    assert _tags(moto, dst, key) == SOURCE_TAGS


# -- b. what each call sends ---------------------------------------------------


def _xml(root: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()


def _etag(seed: str) -> str:
    return '"' + hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest() + '"'


STAMP = "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
FAKE_ANSWERS = {
    "CopyObject": lambda _r: _xml(
        "CopyObjectResult", f"<ETag>{_etag('copy')}</ETag>{STAMP}"
    ),
    "CreateMultipartUpload": lambda _r: _xml(
        "InitiateMultipartUploadResult",
        "<Bucket>b</Bucket><Key>k</Key><UploadId>fake-upload</UploadId>",
    ),
    "UploadPartCopy": lambda r: _xml(
        "CopyPartResult", f"<ETag>{_etag(r.url)}</ETag>{STAMP}"
    ),
    "CompleteMultipartUpload": lambda _r: _xml(
        "CompleteMultipartUploadResult",
        f'<Bucket>b</Bucket><Key>k</Key><ETag>{_etag("done")[:-1]}-3"</ETag>',
    ),
}


def _honoured_head(request: Any, written: dict[str, str]) -> Any:
    """HeadObject of a faked copy: what its write asked for (a checksum of
    the algorithm asked, metadata, content headers)."""
    headers = HTTPHeaders()
    headers["ETag"] = _etag("copy")
    headers["Content-Length"] = "0"
    for name, value in written.items():
        if name.startswith("x-amz-meta-") or name in (
            "content-type",
            "cache-control",
            "content-disposition",
            "content-encoding",
            "content-language",
            "expires",
        ):
            headers[name] = value
    alg = written.get("x-amz-checksum-algorithm")
    if alg:
        headers[f"x-amz-checksum-{alg.lower()}"] = "AAAAAA=="
    return AioAWSResponse(request.url, 200, headers, _Raw(b""))


def _honoured_tags(request: Any, written: dict[str, str]) -> Any:
    pairs = parse_qsl(written.get("x-amz-tagging", ""), keep_blank_values=True)
    inner = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return response(request.url, 200, _xml("Tagging", f"<TagSet>{inner}</TagSet>"))


# the copy's checks after a faked write (engine.copy.confirm)
CONFIRM_ANSWERS: dict[str, Callable[[Any, dict[str, str]], Any]] = {
    "HeadObject": _honoured_head,
    "GetObjectTagging": _honoured_tags,
}


class Capture:
    """Records (operation, headers) of every request, after signing.

    Operations named in ``answer`` never reach the server: the capture answers
    them with a plausible success, so what is *sent* is checked whatever the
    server would make of it.
    """

    def __init__(self, answer: Iterable[str] = ()) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.answer = set(answer)
        # the faked write's headers: the copy's own checks (HEAD, tags) that
        # follow it are answered as a store that honoured every header would
        self.written: dict[str, str] | None = None
        self.written_to = ""

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send.s3.*", self._seen)

    def _seen(self, request: Any, event_name: str, **_: Any) -> Any:
        op = event_name.rsplit(".", 1)[-1]
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        self.sent.append((op, headers))
        where = request.url.split("?", 1)[0]
        if op in ("CopyObject", "CreateMultipartUpload") and op in self.answer:
            self.written, self.written_to = headers, where
        # the copy, not its source
        if (
            self.written is not None
            and op in CONFIRM_ANSWERS
            and where == self.written_to
        ):
            return CONFIRM_ANSWERS[op](request, self.written)
        if op in self.answer:
            return response(request.url, 200, FAKE_ANSWERS[op](request))
        return None

    def of(self, operation: str) -> list[dict[str, str]]:
        return [h for op, h in self.sent if op == operation]

    def one(self, operation: str) -> dict[str, str]:
        [headers] = self.of(operation)
        return headers


def signed_headers(headers: dict[str, str]) -> list[str]:
    """The SignedHeaders list of a SigV4 Authorization header."""
    auth = headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 "), auth
    return auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


EVERYTHING = ObjectOptions(
    storage_class="STANDARD_IA",
    acl="bucket-owner-full-control",
    metadata_directive="REPLACE",
    metadata={"stage": "copied"},
    content_type="text/plain",
    expires="2031-02-03T04:05:06Z",
    tagging_directive="REPLACE",
    tags={"env": "prod"},
    sse="aws:kms",
    sse_kms_key_id="arn:aws:kms:us-east-1:111122223333:key/abcd",
    sse_kms_encryption_context={"app": "bulkcopy", "tier": "1"},
    bucket_key_enabled=True,
    checksum_algorithm="SHA256",
    object_lock_mode="GOVERNANCE",
    object_lock_retain_until_date="2040-01-02T03:04:05Z",
    object_lock_legal_hold="ON",
    if_none_match='"0123456789abcdef0123456789abcdef"',
    if_modified_since="2001-02-03T04:05:06Z",
    if_unmodified_since="2039-02-03T04:05:06Z",
    expected_bucket_owner=OWNER,
    expected_source_bucket_owner=SRC_OWNER,
    request_payer=True,
    retention_directive="REPLACE",
    retention_period=86400,
    retention_legal_hold_id="case-42",
)
EXTRA = {"x-tenant": "blue"}
WRITTEN = {  # what the destination gets, on CopyObject / CreateMultipartUpload
    "x-amz-storage-class": "STANDARD_IA",
    "x-amz-acl": "bucket-owner-full-control",
    "x-amz-meta-stage": "copied",
    "content-type": "text/plain",
    "expires": "Mon, 03 Feb 2031 04:05:06 GMT",
    "x-amz-tagging": "env=prod",
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-aws-kms-key-id": EVERYTHING.sse_kms_key_id or "",
    "x-amz-server-side-encryption-bucket-key-enabled": "true",
    "x-amz-checksum-algorithm": "SHA256",
    "x-amz-object-lock-mode": "GOVERNANCE",
    "x-amz-object-lock-retain-until-date": "2040-01-02T03:04:05Z",
    "x-amz-object-lock-legal-hold": "ON",
    "x-amz-expected-bucket-owner": OWNER,
    "x-amz-request-payer": "requester",
}
CONDITIONS = {  # copy-source conditions and owners, on CopyObject / UploadPartCopy
    "x-amz-copy-source-if-none-match": '"0123456789abcdef0123456789abcdef"',
    "x-amz-copy-source-if-modified-since": "Sat, 03 Feb 2001 04:05:06 GMT",
    "x-amz-copy-source-if-unmodified-since": "Thu, 03 Feb 2039 04:05:06 GMT",
    "x-amz-expected-bucket-owner": OWNER,
    "x-amz-source-expected-bucket-owner": SRC_OWNER,
    "x-amz-request-payer": "requester",
}
RETENTION = {
    "retention-directive": "REPLACE",
    "retention-period": "86400",
    "retention-legal-hold-id": "case-42",
}


def _has(headers: dict[str, str], want: dict[str, str]) -> None:
    for name, value in want.items():
        assert headers.get(name) == value, (name, headers.get(name), value)


def _etag_of(body: bytes) -> str:
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


def _kms_context(headers: dict[str, str]) -> Any:
    return json.loads(base64.b64decode(headers["x-amz-server-side-encryption-context"]))


def test_copyobject_sends_every_option(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """CopyObject carries every option as its header; extra headers are signed."""
    dst = moto.new_bucket()
    capture = Capture(answer=["CopyObject"])

    rows = _copy(
        moto,
        tmp_path,
        [(source.bucket, "small.txt", None)],
        f"s3://{dst}",
        EVERYTHING,
        headers=EXTRA,
        on_client=capture.install,
        preflight=False,
    )

    _ok(rows)
    sent = capture.one("CopyObject")
    _has(sent, WRITTEN)
    _has(sent, CONDITIONS)
    _has(sent, RETENTION)
    assert sent["x-amz-metadata-directive"] == "REPLACE"
    assert sent["x-amz-tagging-directive"] == "REPLACE"
    assert _kms_context(sent) == {"app": "bulkcopy", "tier": "1"}
    pinned = _etag_of(source.bodies["small.txt"])
    assert sent["x-amz-copy-source-if-match"] == pinned  # pinned by the HEAD
    assert set(EXTRA) | set(RETENTION) <= set(signed_headers(sent))
    # the extra header goes on every request, signed; the source HEAD too;
    # REPLACE directives are confirmed on the copy (HEAD, tags) after it
    assert [op for op, _ in capture.sent] == [
        "HeadObject",
        "CopyObject",
        "HeadObject",
        "GetObjectTagging",
    ]
    for op, headers in capture.sent:
        assert headers.get("x-tenant") == "blue", op
        assert "x-tenant" in signed_headers(headers), op
    source_head = capture.of("HeadObject")[0]
    _has(
        source_head,
        {
            "x-amz-expected-bucket-owner": SRC_OWNER,
            "x-amz-request-payer": "requester",
        },
    )
    assert "retention-period" not in source_head


def test_multipart_sends_every_option_on_the_right_call(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """Create gets the destination's properties, parts the conditions and owners,
    Complete the retention without its directive."""
    dst = moto.new_bucket()
    capture = Capture(
        answer=["CreateMultipartUpload", "UploadPartCopy", "CompleteMultipartUpload"]
    )

    rows = _copy(
        moto,
        tmp_path,
        [(source.bucket, "big.bin", None)],
        f"s3://{dst}",
        EVERYTHING,
        headers=EXTRA,
        on_client=capture.install,
        preflight=False,
    )

    _ok(rows)
    assert rows[0].method == "multipart"
    assert [op for op, _ in capture.sent] == [
        "HeadObject",
        "ListMultipartUploads",  # strays of this key (an answer lost before)
        "CreateMultipartUpload",
        "UploadPartCopy",
        "UploadPartCopy",
        "UploadPartCopy",
        "HeadObject",  # the source is still the one the parts were pinned to
        "CompleteMultipartUpload",
        "HeadObject",  # the copy holds what was promised (engine.copy.confirm)
        "GetObjectTagging",
    ]
    create = capture.one("CreateMultipartUpload")
    _has(create, WRITTEN)
    assert _kms_context(create) == {"app": "bulkcopy", "tier": "1"}
    for name in CONDITIONS:
        if name.startswith("x-amz-copy-source"):
            assert name not in create, name
    src_meta = [
        h for h in create if h.startswith("x-amz-meta-") and h != "x-amz-meta-stage"
    ]
    assert src_meta == []  # REPLACE: nothing of the source's metadata
    assert "retention-directive" not in create

    pinned = moto.client().head_object(Bucket=source.bucket, Key="big.bin")["ETag"]
    for part in capture.of("UploadPartCopy"):
        _has(part, CONDITIONS)
        assert part["x-amz-copy-source-if-match"] == pinned
        for name in ("x-amz-storage-class", "x-amz-acl", "x-amz-tagging"):
            assert name not in part, name

    complete = capture.one("CompleteMultipartUpload")
    _has(complete, {k: v for k, v in RETENTION.items() if k != "retention-directive"})
    assert "retention-directive" not in complete
    assert {"retention-period", "retention-legal-hold-id"} <= set(
        signed_headers(complete)
    )
    _has(
        complete,
        {"x-amz-expected-bucket-owner": OWNER, "x-amz-request-payer": "requester"},
    )
    for op, headers in capture.sent:
        assert "x-tenant" in signed_headers(headers), op


def test_user_if_match_is_sent_without_a_head(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """Without the source HEAD there is no pin: --if-match is sent as given."""
    dst = moto.new_bucket()
    capture = Capture(answer=["CopyObject"])
    obj = ObjectOptions(if_match='"feedfacefeedfacefeedfacefeedface"')

    rows = _copy(
        moto,
        tmp_path,
        [(source.bucket, "small.txt", None)],
        f"s3://{dst}",
        obj,
        on_client=capture.install,
        preflight=False,
        stat_source=False,
    )

    _ok(rows)
    assert [op for op, _ in capture.sent] == ["CopyObject"]
    sent = capture.one("CopyObject")
    assert sent["x-amz-copy-source-if-match"] == '"feedfacefeedfacefeedfacefeedface"'


OTHER_ETAG = '"00000000000000000000000000000000"'


@pytest.mark.parametrize(
    ("conditions", "why"),
    [
        (lambda _etag: {"if_match": OTHER_ETAG}, "--if-match"),
        (lambda etag: {"if_none_match": etag}, "--if-none-match"),
        (lambda _etag: {"if_modified_since": "2039-01-01"}, "not modified since"),
        (lambda _etag: {"if_unmodified_since": "2001-01-01"}, "modified since 2001"),
        (
            lambda etag: {
                "if_match": etag,
                "if_none_match": OTHER_ETAG,
                "if_modified_since": "2001-01-01",
                "if_unmodified_since": "2039-01-01",
            },
            None,
        ),
    ],
    ids=[
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "all-hold",
    ],
)
def test_copy_conditions_are_checked_against_the_source(
    moto: S3Server,
    source: Source,
    tmp_path: Path,
    conditions: Callable[[str], dict[str, str]],
    why: str | None,
) -> None:
    """A source failing an --if-* condition is not copied: PreconditionFailed,
    412, one attempt; when every condition holds it is copied."""
    obj = ObjectOptions(**conditions(_etag_of(source.bodies["small.txt"])))
    dst = moto.new_bucket()

    [row] = _copy(
        moto, tmp_path, [(source.bucket, "small.txt", None)], f"s3://{dst}", obj
    )

    listed = moto.client().list_objects_v2(Bucket=dst).get("Contents", [])
    if why is None:
        _ok([row])
        assert [o["Key"] for o in listed] == ["small.txt"]
        return
    assert row.status is TaskStatus.FAILED
    assert (row.error_code, row.http_status, row.attempts) == (
        "PreconditionFailed",
        412,
        1,
    )
    assert why in (row.error_message or "")
    assert listed == []


# -- c. in-place copies --------------------------------------------------------


@PATHS
@pytest.mark.parametrize(
    "obj",
    [ObjectOptions(storage_class="STANDARD_IA"), ObjectOptions()],
    ids=["storage-class", "no-option"],
)
def test_in_place_copy_keeps_the_object(
    moto: S3Server, tmp_path: Path, key: str, method: str, obj: ObjectOptions
) -> None:
    """A copy onto itself succeeds and keeps metadata, headers, tags and body."""
    bucket = moto.new_bucket()
    body = os.urandom(BIG if method == "multipart" else 700)
    _put(moto, bucket, key, body)

    [row] = _copy(moto, tmp_path, [(bucket, key, None)], f"s3://{bucket}", obj)

    _ok([row])
    assert row.method == method
    head = moto.client().head_object(Bucket=bucket, Key=key)
    for name in ("Metadata", "ContentType", "CacheControl", "ContentLanguage"):
        assert head.get(name) == SOURCE_PROPS[name], name
    assert head["ContentDisposition"] == SOURCE_PROPS["ContentDisposition"]
    assert head.get("StorageClass", "STANDARD") == (obj.storage_class or "STANDARD")
    assert _tags(moto, bucket, key) == SOURCE_TAGS
    assert get_body(moto, bucket, key) == body


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/kept"


def _ia_kms_source(moto: S3Server, bucket: str, key: str, size: int) -> None:
    moto.client().put_object(
        Bucket=bucket,
        Key=key,
        Body=os.urandom(size),
        StorageClass="STANDARD_IA",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=KMS_KEY,
        Metadata={"m": "1"},
    )


def _class_and_encryption(head: dict[str, Any]) -> tuple[Any, ...]:
    return (
        head.get("StorageClass", "STANDARD"),
        head.get("ServerSideEncryption"),
        head.get("SSEKMSKeyId"),
    )


@pytest.mark.parametrize("how", ["in-place", "override"])
@pytest.mark.parametrize(
    ("key", "method"),
    [
        pytest.param("small.txt", "copy", id="copyobject"),
        pytest.param("big.bin", "multipart", id="multipart"),
    ],
)
def test_storage_class_and_encryption_not_named_are_kept(
    moto: S3Server, tmp_path: Path, key: str, method: str, how: str
) -> None:
    """An in-place copy, or an override of the content type only, keeps the
    source's storage class and SSE-KMS key."""
    bucket = moto.new_bucket()
    _ia_kms_source(moto, bucket, key, BIG if method == "multipart" else 500)
    dst = bucket if how == "in-place" else moto.new_bucket()
    repo = Repository(str(tmp_path / "db.sqlite"))
    if how == "override":
        manifest = tmp_path / "o.csv"
        manifest.write_text(f"bucket,key,content_type\n{bucket},{key},text/x-row\n")
    else:
        manifest = write_manifest(tmp_path / "m.csv", [(bucket, key, None)])
    job = submit_job(repo, manifest, moto, f"s3://{dst}", **MP)

    run_job(repo, job, moto)

    [row] = list(repo.iter_results(job.id))
    _ok([row])
    assert row.method == method
    head = moto.client().head_object(Bucket=dst, Key=key)
    assert head["Metadata"] == {"m": "1"}
    assert _class_and_encryption(head) == ("STANDARD_IA", "aws:kms", KMS_KEY)


def test_both_paths_give_a_default_copy_the_same_class_and_encryption(
    moto: S3Server, tmp_path: Path
) -> None:
    """Small and big copies of alike sources end up alike."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    _ia_kms_source(moto, src, "small.txt", 500)
    _ia_kms_source(moto, src, "big.bin", BIG)

    rows = _copy(
        moto,
        tmp_path,
        [(src, "small.txt", None), (src, "big.bin", None)],
        f"s3://{dst}",
    )

    _ok(rows)
    assert [r.method for r in rows] == ["copy", "multipart"]
    c = moto.client()
    small, big = (c.head_object(Bucket=dst, Key=k) for k in ("small.txt", "big.bin"))
    assert _class_and_encryption(small) == _class_and_encryption(big)


# -- d. per-object overrides ---------------------------------------------------

OVERRIDE_HEADER = (
    "bucket",
    "key",
    "dst_key",
    "storage_class",
    "metadata",
    "tags",
    "content_type",
)


def _override_manifest(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(OVERRIDE_HEADER)
        for row in rows:
            w.writerow([row[0], encode(row[1]), encode(row[2]), *row[3:]])
    return path


def _override_rows(bucket: str) -> list[list[str]]:
    """One row per override kind, on small and big sources alike."""
    meta, tags = json.dumps({"set": "by-row"}), json.dumps({"row": "tagged"})
    return [
        [bucket, "small-1.txt", "o/s-class.txt", "STANDARD_IA", "", "", ""],
        [bucket, "small-2.txt", "o/s-meta.txt", "", meta, tags, ""],
        [bucket, "small-3.txt", "o/s-type.txt", "", "", "", "text/x-row"],
        [bucket, "big-1.bin", "o/b-meta.bin", "STANDARD_IA", meta, tags, ""],
        [bucket, "big-2.bin", "o/b-type.bin", "", "", "", "text/x-row"],
    ]


def _run_overrides(
    moto: S3Server, source: Source, tmp_path: Path, dst: str, **copy: Any
) -> list[ResultRow]:
    manifest = _override_manifest(tmp_path / "o.csv", _override_rows(source.bucket))
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}/ignored/", **MP, **copy)
    run_job(repo, job, moto)
    rows = sorted(repo.iter_results(job.id), key=lambda r: r.line)
    _ok(rows)
    assert [r.method for r in rows] == ["copy"] * 3 + ["multipart"] * 2
    return rows


def test_per_object_overrides_change_only_what_they_name(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """Each row gets its own storage class, metadata, tags or content type, and
    keeps everything else of its source, by CopyObject and by multipart; --verify
    checks each against its row, not against the source."""
    dst = moto.new_bucket()

    rows = _run_overrides(moto, source, tmp_path, dst, verify=True)

    assert [r.dst_key for r in rows] == [
        "o/s-class.txt",
        "o/s-meta.txt",
        "o/s-type.txt",
        "o/b-meta.bin",
        "o/b-type.bin",
    ]
    c = moto.client()
    heads = {r.dst_key: c.head_object(Bucket=dst, Key=r.dst_key) for r in rows}
    kept = ("ContentType", "CacheControl", "ContentLanguage", "ContentDisposition")

    def keeps(key: str, *names: str) -> None:
        for name in names:
            assert heads[key].get(name) == SOURCE_PROPS[name], (key, name)

    for key in ("o/s-class.txt",):
        assert heads[key]["StorageClass"] == "STANDARD_IA"
        keeps(key, "Metadata", *kept)
        assert _tags(moto, dst, key) == SOURCE_TAGS
    for key in ("o/s-meta.txt", "o/b-meta.bin"):
        assert heads[key]["Metadata"] == {"set": "by-row"}, key
        keeps(key, *kept)
        assert _tags(moto, dst, key) == {"row": "tagged"}, key
    assert heads["o/b-meta.bin"]["StorageClass"] == "STANDARD_IA"
    assert heads["o/s-meta.txt"].get("StorageClass", "STANDARD") == "STANDARD"
    for key in ("o/s-type.txt", "o/b-type.bin"):
        assert heads[key]["ContentType"] == "text/x-row", key
        keeps(key, "Metadata", "CacheControl", "ContentLanguage", "ContentDisposition")
        assert _tags(moto, dst, key) == SOURCE_TAGS, key
    for r in rows:
        assert get_body(moto, dst, r.dst_key) == source.bodies[r.src.key]
    assert "Contents" not in c.list_objects_v2(Bucket=dst, Prefix="ignored/")


# -- e. key templates ----------------------------------------------------------


def test_key_template_and_strip_prefix_name_the_copies(
    moto: S3Server, tmp_path: Path
) -> None:
    """'{dirname}/{stem}-copy{ext}' after stripping 'data/' maps every key."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = {
        "data/2024/a.jpg": "out/2024/a-copy.jpg",
        "data/2024/archive.tar.gz": "out/2024/archive.tar-copy.gz",
        "data/x/noext": "out/x/noext-copy",
        "data/x/.env": "out/x/.env-copy",
        "data/é ü/+ b.txt": "out/é ü/+ b-copy.txt",
    }
    c = moto.client()
    for key in keys:
        c.put_object(Bucket=src, Key=key, Body=key.encode())
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    mapping = KeyMapping(strip_prefix="data/", template="{dirname}/{stem}-copy{ext}")
    job = submit_job(repo, manifest, moto, f"s3://{dst}/out", key_mapping=mapping)

    run_job(repo, job, moto)

    rows = list(repo.iter_results(job.id))
    _ok(rows)
    assert {r.src.key: r.dst_key for r in rows} == keys
    listed = [o["Key"] for o in c.list_objects_v2(Bucket=dst)["Contents"]]
    assert sorted(listed) == sorted(keys.values())
    for key, copied in keys.items():
        assert get_body(moto, dst, copied) == key.encode()


def test_a_key_outside_strip_prefix_fails_the_submit(
    moto: S3Server, tmp_path: Path
) -> None:
    """A key that does not start with --strip-prefix names its manifest line."""
    manifest = write_manifest(
        tmp_path / "m.csv", [("b", "data/a", None), ("b", "other/b", None)]
    )
    repo = Repository(str(tmp_path / "db.sqlite"))
    mapping = KeyMapping(strip_prefix="data/")
    with pytest.raises(ManifestError, match=r":2: .*strip-prefix"):
        submit_job(repo, manifest, moto, "s3://dst", key_mapping=mapping)


# -- f. SSE-C ------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _md5_b64(raw: bytes) -> str:
    return _b64(hashlib.md5(raw, usedforsecurity=False).digest())


SSE_C = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_SSE_C = "x-amz-copy-source-server-side-encryption-customer-"


def _sse_c(prefix: str, key: bytes) -> dict[str, str]:
    return {
        prefix + "algorithm": "AES256",
        prefix + "key": _b64(key),
        prefix + "key-md5": _md5_b64(key),
    }


@PATHS
def test_sse_c_keys_go_on_every_call_that_needs_them(
    moto: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    method: str,
) -> None:
    """The destination key on writes, the source key on the source HEAD and as
    the copy-source key; read from env: and file: when the run starts."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    src_key, dst_key = os.urandom(32), os.urandom(32)
    body = os.urandom(BIG if method == "multipart" else 900)
    moto.client().put_object(
        Bucket=src,
        Key=key,
        Body=body,
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=src_key,
    )
    monkeypatch.setenv("BULKCOPY_DST_KEY", _b64(dst_key))
    key_file = tmp_path / "src.key"
    key_file.write_bytes(src_key)
    obj = ObjectOptions(
        sse_c_key="env:BULKCOPY_DST_KEY", source_sse_c_key=f"file:{key_file}"
    )
    capture = Capture()

    [row] = _copy(
        moto,
        tmp_path,
        [(src, key, None)],
        f"s3://{dst}",
        obj,
        on_client=capture.install,
        preflight=False,
    )

    _ok([row])
    assert row.method == method
    heads = capture.of("HeadObject")
    _has(heads[0], _sse_c(SSE_C, src_key))
    if method == "multipart":  # the source again after the parts; the copy
        _has(heads[1], _sse_c(SSE_C, src_key))
        _has(heads[2], _sse_c(SSE_C, dst_key))
    if method == "copy":
        copy = capture.one("CopyObject")
        _has(copy, _sse_c(SSE_C, dst_key))
        _has(copy, _sse_c(COPY_SOURCE_SSE_C, src_key))
    else:
        _has(capture.one("CreateMultipartUpload"), _sse_c(SSE_C, dst_key))
        parts = capture.of("UploadPartCopy")
        assert len(parts) == 3
        for part in parts:
            _has(part, _sse_c(SSE_C, dst_key))
            _has(part, _sse_c(COPY_SOURCE_SSE_C, src_key))
        _has(capture.one("CompleteMultipartUpload"), _sse_c(SSE_C, dst_key))
        assert COPY_SOURCE_SSE_C + "key" not in capture.one("CreateMultipartUpload")
    # moto stores SSE-C objects without enforcing the key: the bytes still match
    got = (
        moto.client()
        .get_object(
            Bucket=dst, Key=key, SSECustomerAlgorithm="AES256", SSECustomerKey=dst_key
        )["Body"]
        .read()
    )
    assert got == body


def test_skip_existing_reads_an_sse_c_destination_with_its_key(
    moto: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--skip-existing HEADs the destination with the destination's SSE-C key
    (an SSE-C object cannot be read without it) and skips what is there."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    dst_key = os.urandom(32)
    moto.client().put_object(Bucket=src, Key="k", Body=b"x" * 900)
    moto.client().put_object(
        Bucket=dst,
        Key="k",
        Body=b"y" * 900,
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=dst_key,
    )
    monkeypatch.setenv("BULKCOPY_DST_KEY", _b64(dst_key))
    capture = Capture()

    [row] = _copy(
        moto,
        tmp_path,
        [(src, "k", None)],
        f"s3://{dst}",
        ObjectOptions(sse_c_key="env:BULKCOPY_DST_KEY"),
        on_client=capture.install,
        preflight=False,
        skip_existing="same-size",
    )

    assert row.status is TaskStatus.SKIPPED
    assert row.error_code == "DestinationExists"
    heads = capture.of("HeadObject")
    assert len(heads) == 2  # the source, then the destination with its key
    _has(heads[1], _sse_c(SSE_C, dst_key))
    assert SSE_C + "key" not in heads[0]


def _resume_after_a_hard_stop(
    moto: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Repository, str, bytes, bytes]:
    """A multipart copy to an SSE-C destination, stopped hard after two parts,
    then run again; returns the repository, job id, key and source body."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    body = os.urandom(BIG)
    moto.client().put_object(Bucket=src, Key="big.bin", Body=body)
    dst_key = os.urandom(32)
    monkeypatch.setenv("BULKCOPY_DST_KEY", _b64(dst_key))
    manifest = write_manifest(tmp_path / "m.csv", [(src, "big.bin", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    obj = ObjectOptions(sse_c_key="env:BULKCOPY_DST_KEY")
    job = submit_job(repo, manifest, moto, f"s3://{dst}", object_options=obj, **MP)
    holder: dict[str, Worker] = {}
    parts = Counter[str]()

    async def hang_after_two(request: Any, **_: Any) -> None:
        parts["sent"] += 1
        if parts["sent"] > 2:
            holder["w"].request_stop()
            holder["w"].request_stop()  # twice: stop at once
            await asyncio.sleep(60)

    run_job(
        repo,
        job,
        moto,
        part_concurrency=1,
        worker_hook=lambda w: holder.update(w=w),
        on_client=lambda c: c.meta.events.register(
            "before-send.s3.UploadPartCopy", hang_after_two
        ),
    )
    assert repo.open_uploads(job.id)  # kept for the resume
    run_job(repo, repo.get_job(job.id), moto)
    return repo, job.id, dst_key, body


def key_spellings(key: bytes) -> dict[str, bytes]:
    """Ways a key can appear in text: raw, base64 (both alphabets), hex, and
    Python's repr of the bytes (what botocore's validation errors print)."""
    b64, url = base64.b64encode(key), base64.urlsafe_b64encode(key)
    return {
        "raw": key,
        "base64": b64.rstrip(b"="),
        "urlsafe base64": url.rstrip(b"="),
        "hex": key.hex().encode(),
        "repr": repr(key)[2:-1].encode(),
    }


def test_an_interrupted_sse_c_multipart_copy_resumes(
    moto: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multipart copy to an SSE-C destination, stopped hard mid-parts, resumes
    (ListParts included), and the key is in no recorded message nor the database.

    Regression: ListParts was once sent the raw key, failed validation, and the
    task's recorded error quoted the key.
    """
    repo, job_id, dst_key, body = _resume_after_a_hard_stop(moto, tmp_path, monkeypatch)

    [row] = list(repo.iter_results(job_id))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))
    message = (row.error_message or "").encode()
    for name, form in key_spellings(dst_key).items():
        assert form not in message, f"the key ({name}) is in the task's error"
        assert form not in stored, f"the key ({name}) is in the database"
    assert row.status is TaskStatus.SUCCEEDED, (row.error_code, row.error_message)
    assert row.part_count == 3
    got = moto.client().get_object(
        Bucket=row.dst_bucket,
        Key=row.dst_key,
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=dst_key,
    )
    assert got["Body"].read() == body


# -- g. --verify against what the options set ----------------------------------


@PATHS
def test_verify_checks_against_replaced_metadata_and_tags(
    moto: S3Server, source: Source, tmp_path: Path, key: str, method: str
) -> None:
    """--verify passes when the copy has what REPLACE set, not the source's."""
    dst = moto.new_bucket()
    obj = ObjectOptions(
        metadata_directive="REPLACE",
        metadata={"stage": "verified"},
        content_type="text/x-verified",
        cache_control="no-store",
        tagging_directive="REPLACE",
        tags={"checked": "yes"},
        storage_class="STANDARD_IA",
    )

    [row] = _copy(
        moto, tmp_path, [(source.bucket, key, None)], f"s3://{dst}", obj, verify=True
    )

    _ok([row])
    assert row.method == method
    assert moto.client().head_object(Bucket=dst, Key=key)["Metadata"] == {
        "stage": "verified"
    }


def test_verify_still_catches_a_real_difference(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """The option-aware --verify is not blind: a copy changed behind it fails."""
    dst = moto.new_bucket()
    obj = ObjectOptions(metadata_directive="REPLACE", metadata={"stage": "verified"})
    sync = moto.client()

    reads = Counter[str]()

    def tamper(parsed: Any, **_: Any) -> None:
        # after the copy's own check of its tags (the source's, then its
        # own: REPLACE is confirmed), before --verify reads them
        reads["tags"] += 1
        if reads["tags"] == 2:
            sync.put_object_tagging(
                Bucket=dst,
                Key="small.txt",
                Tagging={"TagSet": [{"Key": "x", "Value": "y"}]},
            )

    [row] = _copy(
        moto,
        tmp_path,
        [(source.bucket, "small.txt", None)],
        f"s3://{dst}",
        obj,
        verify=True,
        on_client=lambda c: c.meta.events.register(
            "after-call.s3.GetObjectTagging", tamper
        ),
    )

    assert row.status is TaskStatus.FAILED
    assert row.error_code == "VerificationFailed"
    assert "tags" in (row.error_message or "")


def test_explicit_false_and_zero_options_are_sent(
    moto: S3Server, source: Source, tmp_path: Path
) -> None:
    """--no-bucket-key-enabled and --retention-period 0 are stored and reach
    CopyObject (they were once dropped with the job's other unset options)."""
    dst = moto.new_bucket()
    capture = Capture(answer=["CopyObject"])
    obj = ObjectOptions(sse="aws:kms", bucket_key_enabled=False, retention_period=0)

    rows = _copy(
        moto,
        tmp_path,
        [(source.bucket, "small.txt", None)],
        f"s3://{dst}",
        obj,
        on_client=capture.install,
        preflight=False,
    )

    _ok(rows)
    sent = capture.one("CopyObject")
    assert sent["x-amz-server-side-encryption"] == "aws:kms"
    assert sent.get("x-amz-server-side-encryption-bucket-key-enabled") == "false"
    assert sent.get("retention-period") == "0"


def test_stored_options_survive_a_round_trip(tmp_path: Path, moto: S3Server) -> None:
    """The job's options are stored and read back identical (resume uses them)."""
    manifest = write_manifest(tmp_path / "m.csv", [("b", "k", None)])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, "s3://dst", object_options=EVERYTHING)

    assert repo.get_job(job.id).spec.object == EVERYTHING
