"""What a copy carries over from its source: pure mappings from a HEAD answer.

CopyObject copies metadata, content headers and tags by itself (``COPY``
directives).  A multipart copy starts from an empty upload, so everything has
to be read from the source and set on ``CreateMultipartUpload``; these
functions decide what.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from engine.domain.content import CHECKSUM_ALGORITHMS
from engine.manifest.filters import ARCHIVE_CLASSES, ARCHIVE_TIERS

CONTENT_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)
OBJECT_LOCK = (
    "ObjectLockMode",
    "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus",
)


def tagging_value(tag_set: list[dict[str, str]]) -> str:
    """A TagSet as the URL-encoded ``Tagging`` value CreateMultipartUpload takes."""
    return urlencode([(t["Key"], t["Value"]) for t in tag_set])


GRANT_PARAMS = {
    "READ": "GrantRead",
    "READ_ACP": "GrantReadACP",
    "WRITE_ACP": "GrantWriteACP",
    "FULL_CONTROL": "GrantFullControl",
}


def grant_args(grants: list[dict[str, Any]]) -> dict[str, str]:
    """A GetObjectAcl grant list as PutObjectAcl ``Grant*`` arguments.

    The copy's owner is whoever made it, so only the grants are carried;
    ``WRITE`` means nothing on an object and is dropped.
    """
    by_param: dict[str, list[str]] = {}
    for grant in grants:
        param = GRANT_PARAMS.get(grant.get("Permission", ""))
        grantee = grant.get("Grantee", {})
        if param is None:
            continue
        if grantee.get("ID"):
            who = f'id="{grantee["ID"]}"'
        elif grantee.get("URI"):
            who = f'uri="{grantee["URI"]}"'
        elif grantee.get("EmailAddress"):
            who = f'emailAddress="{grantee["EmailAddress"]}"'
        else:
            continue
        by_param.setdefault(param, []).append(who)
    return {param: ", ".join(who) for param, who in by_param.items()}


def storage_and_encryption(head: dict[str, Any]) -> dict[str, Any]:
    """The source's storage class and SSE-S3 / SSE-KMS settings, as arguments.

    S3 gives a copy STANDARD and the bucket's default encryption unless told
    otherwise; bulkcopy carries the source's on both copy paths.
    """
    args: dict[str, Any] = {}
    if head.get("StorageClass"):
        args["StorageClass"] = head["StorageClass"]
    sse = head.get("ServerSideEncryption")
    if sse in ("aws:kms", "aws:kms:dsse"):
        args["ServerSideEncryption"] = sse
        if head.get("SSEKMSKeyId"):
            args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        if head.get("BucketKeyEnabled"):
            args["BucketKeyEnabled"] = True
    elif sse == "AES256":
        args["ServerSideEncryption"] = "AES256"
    return args


def create_upload_args(
    head: dict[str, Any],
    tag_set: list[dict[str, str]] | None,
    *,
    object_lock: bool = False,
) -> dict[str, Any]:
    """``CreateMultipartUpload`` arguments that reproduce the source's properties.

    Carries user metadata, content headers, storage class, server-side
    encryption (SSE-S3 and SSE-KMS with its key), the checksum algorithm, tags
    when given, and the object-lock settings when ``object_lock``.
    """
    args: dict[str, Any] = {}
    for name in CONTENT_HEADERS:
        value = head.get(name)
        if value not in (None, ""):
            args[name] = value
    if head.get("Metadata"):
        args["Metadata"] = dict(head["Metadata"])
    args.update(storage_and_encryption(head))
    for alg in CHECKSUM_ALGORITHMS:
        if head.get(f"Checksum{alg}"):
            args["ChecksumAlgorithm"] = alg
            break
    if tag_set:
        args["Tagging"] = tagging_value(tag_set)
    if object_lock:
        for name in OBJECT_LOCK:
            if head.get(name) is not None:
                args[name] = head[name]
    return args


def not_restored(head: dict[str, Any]) -> str | None:
    """Why an object cannot be copied now, from its HeadObject: in GLACIER,
    DEEP_ARCHIVE or an Intelligent-Tiering archive tier and not restored.
    ``None`` when it can be copied."""
    storage = head.get("StorageClass")
    tier = head.get("ArchiveStatus")
    if storage not in ARCHIVE_CLASSES and tier not in ARCHIVE_TIERS:
        return None
    restore = str(head.get("Restore") or "")
    if 'ongoing-request="false"' in restore:
        return None  # a restored copy is available
    state = (
        "its restore is in progress"
        if 'ongoing-request="true"' in restore
        else "it is not restored"
    )
    return (
        f"the object is in {tier or storage} and {state}; restore it, then copy "
        "it with `bulkcopy retry JOB_ID --skipped`"
    )
