"""The benchmark kit keeps working: fakes3 answers like S3, large.py runs.

fakes3 runs in-process (a thread) for the protocol checks; ``bench/large.py``
runs as a user types it, with bulkcopy only (the peers are not installed here).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.fakes3 import FakeS3
from tests.bench.run import client_for

REPO = Path(__file__).resolve().parents[2]
MIB = 1024**2
GIB = 1024**3


@pytest.fixture(scope="module")
def log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def fake(log: io.StringIO) -> Iterator[FakeS3]:
    with FakeS3(log=log) as server:
        server.seed_prefix("src", "small/", 5, 1000)
        server.seed_object(
            "src",
            "big.bin",
            6 * GIB,
            metadata={"owner": "alice"},
            tags={"project": "x"},
            content_type="application/x-tar",
        )
        server.seed_object("src", "15mib.bin", 15 * MIB)
        server.create_bucket("dst")
        yield server


@pytest.fixture(scope="module")
def s3(fake: FakeS3) -> Any:
    return client_for(fake.url)


def error_of(call: Callable[..., Any], **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    resp = info.value.response
    return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"]


def test_copies_a_prefix_of_small_objects(s3: Any) -> None:
    """CopyObject answers a CopyObjectResult with the source's ETag; listings see it."""
    listed = s3.list_objects_v2(Bucket="src", Prefix="small/")["Contents"]
    for obj in listed:
        result = s3.copy_object(
            Bucket="dst",
            Key="copy/" + obj["Key"],
            CopySource={"Bucket": "src", "Key": obj["Key"]},
        )["CopyObjectResult"]
        assert result["ETag"] == obj["ETag"]
    copied = s3.list_objects_v2(Bucket="dst", Prefix="copy/small/")["Contents"]
    assert [(o["Key"], o["Size"]) for o in copied] == [
        ("copy/" + o["Key"], 1000) for o in listed
    ]


def test_lists_pages_and_common_prefixes(s3: Any) -> None:
    """max-keys, continuation tokens and delimiters page like S3 (v2 and v1)."""
    first = s3.list_objects_v2(Bucket="src", Delimiter="/", MaxKeys=2)
    assert [o["Key"] for o in first["Contents"]] == ["15mib.bin", "big.bin"]
    assert first["IsTruncated"]
    rest = s3.list_objects_v2(
        Bucket="src", Delimiter="/", ContinuationToken=first["NextContinuationToken"]
    )
    assert rest["CommonPrefixes"] == [{"Prefix": "small/"}]
    assert not rest["IsTruncated"]
    v1 = s3.list_objects(Bucket="src", Prefix="small/", Marker="small/000002")
    assert [o["Key"] for o in v1["Contents"]] == ["small/000003", "small/000004"]


def test_a_v2_listing_names_owners_only_when_asked(s3: Any) -> None:
    """As S3: ListObjectsV2 leaves each object's Owner out unless
    FetchOwner is true (a V1 listing always names it)."""
    plain = s3.list_objects_v2(Bucket="src", Prefix="small/")["Contents"]
    assert all("Owner" not in o for o in plain)
    owned = s3.list_objects_v2(Bucket="src", Prefix="small/", FetchOwner=True)
    assert all(o["Owner"]["ID"] for o in owned["Contents"])
    assert all("Owner" in o for o in s3.list_objects(Bucket="src")["Contents"])


def test_multipart_copy_of_three_parts(s3: Any) -> None:
    """Three 5 MiB UploadPartCopy parts complete into one object with an -3 ETag."""
    up = s3.create_multipart_upload(
        Bucket="dst", Key="mp/copied", Metadata={"k": "v"}, Tagging="t=1"
    )["UploadId"]
    parts = []
    for n in range(3):
        first = n * 5 * MIB
        resp = s3.upload_part_copy(
            Bucket="dst",
            Key="mp/copied",
            UploadId=up,
            PartNumber=n + 1,
            CopySource={"Bucket": "src", "Key": "15mib.bin"},
            CopySourceRange=f"bytes={first}-{first + 5 * MIB - 1}",
        )
        parts.append({"PartNumber": n + 1, "ETag": resp["CopyPartResult"]["ETag"]})
    listed = s3.list_parts(Bucket="dst", Key="mp/copied", UploadId=up)["Parts"]
    assert [p["Size"] for p in listed] == [5 * MIB] * 3

    done = s3.complete_multipart_upload(
        Bucket="dst", Key="mp/copied", UploadId=up, MultipartUpload={"Parts": parts}
    )

    assert done["ETag"].endswith('-3"')
    head = s3.head_object(Bucket="dst", Key="mp/copied", PartNumber=2)
    assert (head["ContentLength"], head["PartsCount"]) == (5 * MIB, 3)
    assert s3.head_object(Bucket="dst", Key="mp/copied")["Metadata"] == {"k": "v"}
    tags = s3.get_object_tagging(Bucket="dst", Key="mp/copied")["TagSet"]
    assert tags == [{"Key": "t", "Value": "1"}]
    assert s3.list_multipart_uploads(Bucket="dst").get("Uploads", []) == []


def test_multipart_upload_with_bodies(s3: Any) -> None:
    """UploadPart reads each body; a part under 5 MiB but the last is EntityTooSmall."""
    up = s3.create_multipart_upload(Bucket="dst", Key="mp/uploaded")["UploadId"]
    etags = [
        s3.upload_part(
            Bucket="dst", Key="mp/uploaded", UploadId=up, PartNumber=n, Body=body
        )["ETag"]
        for n, body in ((1, b"a" * 5 * MIB), (2, b"b" * MIB), (3, b"c"))
    ]
    assert etags[2] == f'"{hashlib.md5(b"c", usedforsecurity=False).hexdigest()}"'
    parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]
    assert error_of(
        s3.complete_multipart_upload,
        Bucket="dst",
        Key="mp/uploaded",
        UploadId=up,
        MultipartUpload={"Parts": parts},
    ) == (400, "EntityTooSmall")
    s3.complete_multipart_upload(
        Bucket="dst",
        Key="mp/uploaded",
        UploadId=up,
        MultipartUpload={"Parts": parts[:1]},  # alone, the 5 MiB part is the last
    )
    assert s3.head_object(Bucket="dst", Key="mp/uploaded")["ContentLength"] == 5 * MIB


def test_copy_source_etag_mismatch_is_precondition_failed(s3: Any) -> None:
    """x-amz-copy-source-if-match with another ETag: 412 PreconditionFailed."""
    src = {"Bucket": "src", "Key": "15mib.bin"}
    assert error_of(
        s3.copy_object, Bucket="dst", Key="x", CopySource=src, CopySourceIfMatch='"0"'
    ) == (412, "PreconditionFailed")
    up = s3.create_multipart_upload(Bucket="dst", Key="x")["UploadId"]
    assert error_of(
        s3.upload_part_copy,
        Bucket="dst",
        Key="x",
        UploadId=up,
        PartNumber=1,
        CopySource=src,
        CopySourceRange="bytes=0-99",
        CopySourceIfMatch='"0"',
    ) == (412, "PreconditionFailed")


def test_copy_source_range_outside_the_source_is_invalid_range(s3: Any) -> None:
    """A CopySourceRange past the source's end: 416 InvalidRange."""
    up = s3.create_multipart_upload(Bucket="dst", Key="y")["UploadId"]
    assert error_of(
        s3.upload_part_copy,
        Bucket="dst",
        Key="y",
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": "src", "Key": "15mib.bin"},
        CopySourceRange=f"bytes=0-{15 * MIB}",
    ) == (416, "InvalidRange")


def test_unknown_upload_is_no_such_upload(s3: Any) -> None:
    """UploadPartCopy, ListParts and Complete on an unknown upload id: 404."""
    common = {"Bucket": "dst", "Key": "z", "UploadId": "nope"}
    assert error_of(
        s3.upload_part_copy,
        **common,
        PartNumber=1,
        CopySource={"Bucket": "src", "Key": "15mib.bin"},
    ) == (404, "NoSuchUpload")
    assert error_of(s3.list_parts, **common) == (404, "NoSuchUpload")
    assert error_of(
        s3.complete_multipart_upload,
        **common,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0"'}]},
    ) == (404, "NoSuchUpload")


def test_copy_object_over_5_gib_is_refused_like_s3(s3: Any) -> None:
    """CopyObject of a 6 GiB source: 400 InvalidRequest, S3's message."""
    with pytest.raises(ClientError) as info:
        s3.copy_object(
            Bucket="dst", Key="big", CopySource={"Bucket": "src", "Key": "big.bin"}
        )
    assert info.value.response["Error"]["Code"] == "InvalidRequest"
    assert "maximum allowable size" in info.value.response["Error"]["Message"]


def test_missing_bucket_and_key(s3: Any) -> None:
    """NoSuchBucket and NoSuchKey are 404s with their codes."""
    assert error_of(s3.list_objects_v2, Bucket="nobucket") == (404, "NoSuchBucket")
    assert error_of(s3.get_object, Bucket="src", Key="nokey") == (404, "NoSuchKey")


def test_virtual_host_addressing(fake: FakeS3) -> None:
    """The bucket may come from the Host header (BUCKET.localhost:PORT)."""
    virtual = client_for(fake.url, virtual=True)
    head = virtual.head_object(Bucket="src", Key="big.bin")
    assert head["ContentLength"] == 6 * GIB
    assert head["Metadata"] == {"owner": "alice"}


def test_unknown_operation_is_not_implemented(s3: Any, log: io.StringIO) -> None:
    """An operation fakes3 lacks answers 501 NotImplemented and is logged."""
    assert error_of(s3.get_bucket_lifecycle_configuration, Bucket="src") == (
        501,
        "NotImplemented",
    )
    assert "501 NotImplemented: GET /src?lifecycle" in log.getvalue()


def test_versioning_is_never_enabled(s3: Any) -> None:
    """A move asks which buckets keep versions: none here (and none can)."""
    assert s3.get_bucket_versioning(Bucket="src").get("Status") is None
    config = {"Status": "Enabled"}
    assert error_of(
        s3.put_bucket_versioning, Bucket="src", VersioningConfiguration=config
    ) == (501, "NotImplemented")


def test_stats_count_the_most_parts_in_flight() -> None:
    """With latency, four concurrent UploadPartCopy requests are four in flight."""
    with FakeS3(latency_ms=300) as slow:
        slow.seed_object("src", "o", 20 * MIB)
        slow.create_bucket("dst")
        client = client_for(slow.url)
        up = client.create_multipart_upload(Bucket="dst", Key="o")["UploadId"]
        slow.reset_stats()

        def part(n: int) -> None:
            client.upload_part_copy(
                Bucket="dst",
                Key="o",
                UploadId=up,
                PartNumber=n,
                CopySource={"Bucket": "src", "Key": "o"},
                CopySourceRange=f"bytes={(n - 1) * 5 * MIB}-{n * 5 * MIB - 1}",
            )

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(part, range(1, 5)))
        stats = slow.snapshot()
    assert stats["requests"] == {"UploadPartCopy": 4}
    assert stats["max_in_flight"]["UploadPartCopy"] == 4


def test_large_bench_runs_with_bulkcopy_only(tmp_path: Path) -> None:
    """bench/large.py copies a small object in 4 parts and reports it kept."""
    out = tmp_path / "large.json"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/large.py",
            "--tools",
            "bulkcopy",
            "--size",
            "64MiB",
            "--rounds",
            "1",
            "--multipart-threshold",
            "16MiB",
            "--part-size",
            "16MiB",
            "--latency-ms",
            "0",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())["tools"]["bulkcopy"]
    assert result["parts"] == "4"
    assert result["size_ok"]
    assert result["metadata_kept"]
    assert result["tags_kept"]
    assert "| bulkcopy" in proc.stdout
