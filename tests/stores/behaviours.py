"""What each store does of the S3 behaviours bulkcopy's promises rest on.

Each probe asks one store one question with plain boto3 calls and returns
"yes", "no" or a short answer; :func:`table` runs them all on the store
matrix and renders the README's provider table
(``tests/stores/test_provider_table.py`` keeps the README equal to it).
Beside each behaviour: what bulkcopy does where a store lacks it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tests.servers import S3Server

Probe = Callable[[S3Server], str]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "?")


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _fresh(store: S3Server, body: bytes = b"probe body") -> tuple[Any, str, str]:
    """A client, a bucket and a source object ``src`` in it."""
    c = store.client()
    bucket = store.new_bucket()
    c.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"m": "1"})
    return c, bucket, "src"


def copy_etag_quoted(store: S3Server) -> str:
    c, b, k = _fresh(store)
    etag = c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": k})[
        "CopyObjectResult"
    ]["ETag"]
    return _yes(etag.startswith('"'))


def copy_if_match(store: S3Server) -> str:
    c, b, k = _fresh(store)
    try:
        c.copy_object(
            Bucket=b,
            Key="dst",
            CopySource={"Bucket": b, "Key": k},
            CopySourceIfMatch='"00000000000000000000000000000000"',
        )
    except ClientError as exc:
        return _yes(_code(exc) == "PreconditionFailed")
    return "no"


def _upload(c: Any, b: str, key: str, **extra: Any) -> str:
    upload_id: str = c.create_multipart_upload(Bucket=b, Key=key, **extra)["UploadId"]
    return upload_id


def part_copy_if_match(store: S3Server) -> str:
    c, b, k = _fresh(store)
    up = _upload(c, b, "dst")
    try:
        c.upload_part_copy(
            Bucket=b,
            Key="dst",
            UploadId=up,
            PartNumber=1,
            CopySource={"Bucket": b, "Key": k},
            CopySourceIfMatch='"00000000000000000000000000000000"',
        )
    except ClientError as exc:
        return _yes(_code(exc) == "PreconditionFailed")
    finally:
        c.abort_multipart_upload(Bucket=b, Key="dst", UploadId=up)
    return "no"


def part_copy(store: S3Server) -> str:
    c, b, k = _fresh(store)
    up = _upload(c, b, "dst")
    try:
        part = c.upload_part_copy(
            Bucket=b,
            Key="dst",
            UploadId=up,
            PartNumber=1,
            CopySource={"Bucket": b, "Key": k},
        )
        return _yes(bool(part.get("CopyPartResult", {}).get("ETag")))
    except ClientError as exc:
        return f"no ({_code(exc)})"
    finally:
        c.abort_multipart_upload(Bucket=b, Key="dst", UploadId=up)


def _tags(c: Any, b: str, key: str) -> dict[str, str]:
    return {
        t["Key"]: t["Value"]
        for t in c.get_object_tagging(Bucket=b, Key=key).get("TagSet", [])
    }


def tagging(store: S3Server) -> str:
    c, b, k = _fresh(store)
    try:
        untagged = _tags(c, b, k)  # rclone answers 500 here
        c.put_object_tagging(
            Bucket=b, Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}
        )
        return _yes(untagged == {} and _tags(c, b, k) == {"a": "1"})
    except ClientError as exc:
        return f"no ({_code(exc)})"


def tagging_directive(store: S3Server) -> str:
    if tagging(store) != "yes":
        return "—"
    c, b, k = _fresh(store)
    c.put_object_tagging(
        Bucket=b, Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}
    )
    c.copy_object(
        Bucket=b,
        Key="dst",
        CopySource={"Bucket": b, "Key": k},
        TaggingDirective="REPLACE",
        Tagging="b=2",
    )
    return _yes(_tags(c, b, "dst") == {"b": "2"})


def tags_kept_with_replaced_metadata(store: S3Server) -> str:
    if tagging(store) != "yes":
        return "—"
    c, b, k = _fresh(store)
    c.put_object_tagging(
        Bucket=b, Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}
    )
    c.copy_object(
        Bucket=b,
        Key="dst",
        CopySource={"Bucket": b, "Key": k},
        MetadataDirective="REPLACE",
        Metadata={"m": "2"},
    )
    return _yes(_tags(c, b, "dst") == {"a": "1"})


def metadata_replace(store: S3Server) -> str:
    c, b, k = _fresh(store)
    c.copy_object(
        Bucket=b,
        Key="dst",
        CopySource={"Bucket": b, "Key": k},
        MetadataDirective="REPLACE",
        Metadata={"n": "2"},
    )
    meta = {
        x.lower(): v for x, v in c.head_object(Bucket=b, Key="dst")["Metadata"].items()
    }
    if meta.get("n") != "2":
        return "no"
    return "yes" if "m" not in meta else "merges"


def create_tags(store: S3Server) -> str:
    if tagging(store) != "yes" or part_copy(store) != "yes":
        return "—"
    c, b, k = _fresh(store)
    up = _upload(c, b, "dst", Tagging="c=3")
    part = c.upload_part_copy(
        Bucket=b,
        Key="dst",
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": b, "Key": k},
    )["CopyPartResult"]
    c.complete_multipart_upload(
        Bucket=b,
        Key="dst",
        UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    return _yes(_tags(c, b, "dst") == {"c": "3"})


def list_parts_gone(store: S3Server) -> str:
    c, b, _k = _fresh(store)
    up = _upload(c, b, "dst")
    c.abort_multipart_upload(Bucket=b, Key="dst", UploadId=up)
    try:
        c.list_parts(Bucket=b, Key="dst", UploadId=up)
    except ClientError as exc:
        return _code(exc)
    return "no error"


def multipart_checksum(store: S3Server) -> str:
    if part_copy(store) != "yes":
        return "—"
    c = store.client()
    b = store.new_bucket()
    c.put_object(Bucket=b, Key="src", Body=b"probe", ChecksumAlgorithm="SHA256")
    up = _upload(c, b, "dst", ChecksumAlgorithm="SHA256")
    part = c.upload_part_copy(
        Bucket=b,
        Key="dst",
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": b, "Key": "src"},
    )["CopyPartResult"]
    entry = {"PartNumber": 1, "ETag": part["ETag"]}
    if part.get("ChecksumSHA256"):
        entry["ChecksumSHA256"] = part["ChecksumSHA256"]
    try:
        c.complete_multipart_upload(
            Bucket=b, Key="dst", UploadId=up, MultipartUpload={"Parts": [entry]}
        )
    except ClientError as exc:
        return f"no ({_code(exc)})"
    head = c.head_object(Bucket=b, Key="dst", ChecksumMode="ENABLED")
    return _yes(bool(head.get("ChecksumSHA256")))


def delete_if_match(store: S3Server) -> str:
    c, b, k = _fresh(store)
    try:
        c.delete_object(Bucket=b, Key=k, IfMatch='"00000000000000000000000000000000"')
    except ClientError as exc:
        code = _code(exc)
        return "yes" if code == "PreconditionFailed" else f"no ({code})"
    gone = "Contents" not in c.list_objects_v2(Bucket=b)
    return "no (deleted anyway)" if gone else "no"


def listing_pages_keep_non_ascii_keys(store: S3Server) -> str:
    """A listing in pages (as every listing of over 1,000 keys is) lists a
    key that is not ASCII after the first page (botocore asks for the keys
    URL-encoded)."""
    c = store.client()
    b = store.new_bucket()
    keys = ["a", "b", "c", "é"]
    for key in keys:
        c.put_object(Bucket=b, Key=key, Body=b"x")
    listed: list[str] = []
    args: dict[str, Any] = {"Bucket": b, "MaxKeys": 2}
    for _ in range(len(keys)):
        page = c.list_objects_v2(**args)
        listed += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        args["ContinuationToken"] = page["NextContinuationToken"]
    if sorted(listed) == keys:
        return "yes"
    return "no (left out)" if "é" not in listed else f"no ({listed})"


def versioning(store: S3Server) -> str:
    c = store.client()
    b = store.new_bucket()
    try:
        c.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        first = c.put_object(Bucket=b, Key="v", Body=b"1").get("VersionId")
        c.put_object(Bucket=b, Key="v", Body=b"2")
        body = c.get_object(Bucket=b, Key="v", VersionId=first)["Body"].read()
    except ClientError as exc:
        return f"no ({_code(exc)})"
    return _yes(bool(first) and body == b"1")


def sse_c(store: S3Server) -> str:
    c = store.client()
    b = store.new_bucket()
    key = os.urandom(32)
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    try:
        c.put_object(Bucket=b, Key="s", Body=b"secret", **sse)
        body = c.get_object(Bucket=b, Key="s", **sse)["Body"].read()
    except ClientError as exc:
        return f"no ({_code(exc)})"
    try:
        c.get_object(Bucket=b, Key="s")
    except ClientError:
        return _yes(body == b"secret")
    return "no (read without the key)"


def sse_c_copy(store: S3Server) -> str:
    if sse_c(store) != "yes":
        return "—"
    c = store.client()
    b = store.new_bucket()
    key, other = os.urandom(32), os.urandom(32)
    c.put_object(
        Bucket=b,
        Key="s",
        Body=b"secret",
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=key,
    )
    try:
        c.copy_object(
            Bucket=b,
            Key="d",
            CopySource={"Bucket": b, "Key": "s"},
            CopySourceSSECustomerAlgorithm="AES256",
            CopySourceSSECustomerKey=key,
            SSECustomerAlgorithm="AES256",
            SSECustomerKey=other,
        )
        got = c.get_object(
            Bucket=b, Key="d", SSECustomerAlgorithm="AES256", SSECustomerKey=other
        )["Body"].read()
    except ClientError as exc:
        return f"no ({_code(exc)})"
    return _yes(got == b"secret")


@dataclass(frozen=True)
class Behaviour:
    name: str
    probe: Probe
    s3: str  # what AWS S3 answers
    bulkcopy: str  # what bulkcopy does where a store lacks it


BEHAVIOURS: Sequence[Behaviour] = (
    Behaviour(
        "CopyObject answers a quoted ETag",
        copy_etag_quoted,
        "yes",
        "every ETag is quoted on the way in; recorded ones compared either way",
    ),
    Behaviour(
        "CopyObject honours `x-amz-copy-source-if-match`",
        copy_if_match,
        "yes",
        "a listed object is HEADed before its copy (the run's first listed "
        "copy finds out); a move HEADs the source again before deleting it; "
        "verify compares the source with the ETag recorded",
    ),
    Behaviour(
        "UploadPartCopy",
        part_copy,
        "yes",
        "objects over the threshold fail (`EmptyResponse`), nothing is left open",
    ),
    Behaviour(
        "UploadPartCopy honours `x-amz-copy-source-if-match`",
        part_copy_if_match,
        "yes",
        "parts read the version HEADed (versioned sources); the source is "
        "HEADed again after the last part: changed → upload aborted, "
        "`PreconditionFailed`",
    ),
    Behaviour(
        "object tags",
        tagging,
        "yes",
        "copy with `--no-preserve-tags`",
    ),
    Behaviour(
        "CopyObject honours `TaggingDirective: REPLACE`",
        tagging_directive,
        "yes",
        "the copy's tags are read back and set with PutObjectTagging",
    ),
    Behaviour(
        "CopyObject keeps tags under `MetadataDirective: REPLACE`",
        tags_kept_with_replaced_metadata,
        "yes",
        "the copy's tags are read back and set with PutObjectTagging",
    ),
    Behaviour(
        "`MetadataDirective: REPLACE` drops the old metadata",
        metadata_replace,
        "yes",
        "checks that every promised key is there; extra keys are left",
    ),
    Behaviour(
        "CreateMultipartUpload keeps `Tagging`",
        create_tags,
        "yes",
        "the copy's tags are read back and set with PutObjectTagging",
    ),
    Behaviour(
        "CreateMultipartUpload keeps `ChecksumAlgorithm`",
        multipart_checksum,
        "yes",
        "the copy is HEADed; without the source's algorithm it fails "
        "`VerificationFailed` (a store that keeps no checksums gives its "
        "sources none to carry)",
    ),
    Behaviour(
        "ListParts of an aborted upload",
        list_parts_gone,
        "NoSuchUpload",
        "`NoSuchKey` from ListParts also means the upload is gone: started over",
    ),
    Behaviour(
        "DeleteObject honours `If-Match`",
        delete_if_match,
        "yes",
        "on 501 the source is HEADed again, then deleted without the condition "
        "(a window of one round trip)",
    ),
    Behaviour(
        "ListObjectsV2 pages after the first list keys that are not ASCII",
        listing_pages_keep_non_ascii_keys,
        "yes",
        "cannot tell: the listing is what the store says is there; give such "
        "a store a manifest (CSV, Inventory) instead of `--from`",
    ),
    Behaviour(
        "versioning",
        versioning,
        "yes",
        "`--all-versions` and version ids in manifests need it",
    ),
    Behaviour(
        "SSE-C over http",
        sse_c,
        "yes (https only)",
        "—",
    ),
    Behaviour(
        "CopyObject of an SSE-C source",
        sse_c_copy,
        "yes",
        "the task fails with the store's answer",
    ),
)


def observe(store: S3Server) -> dict[str, str]:
    """Every behaviour's answer on one store."""
    out: dict[str, str] = {}
    for b in BEHAVIOURS:
        try:
            out[b.name] = b.probe(store)
        except ClientError as exc:
            out[b.name] = f"error ({_code(exc)})"
    return out


STORE_TITLES = {
    "moto": "moto",
    "rclone": "rclone serve s3",
    "rgw": "Ceph RGW",
    "localstack": "LocalStack",
}


def table(observed: dict[str, dict[str, str]], versions: dict[str, str]) -> str:
    """The README's provider table from the stores' answers."""
    stores = list(observed)
    head = [
        "behaviour",
        "AWS S3",
        *(f"{STORE_TITLES[s]} {versions[s]}" for s in stores),
    ]
    lines = [
        "| " + " | ".join([*head, "where it is missing, bulkcopy…"]) + " |",
        "|" + "---|" * (len(head) + 1),
    ]
    for b in BEHAVIOURS:
        cells = [b.name, b.s3, *(observed[s][b.name] for s in stores), b.bulkcopy]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
