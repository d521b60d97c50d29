"""Which S3 operation a request is: addressing (path or virtual host) and routing.

Pure functions of the request line and headers, so they can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

# Query parameters that select another API than the ones routed below; a request
# carrying one is answered 501 NotImplemented rather than misread as a GET/PUT.
OTHER_SUBRESOURCES = frozenset(
    {
        "accelerate",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metadataConfiguration",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "torrent",
        "versions",
        "website",
    }
)

NOT_IMPLEMENTED = "NotImplemented"


@dataclass(frozen=True, slots=True)
class Address:
    """The bucket and key a request names (either may be empty)."""

    bucket: str
    key: str


def address(path: str, host: str, domain: str) -> Address:
    """Bucket and key from the (still percent-encoded) path and the Host header.

    ``bucket.DOMAIN[:port]`` is virtual-host style (the whole path is the key);
    anything else is path style (``/bucket/key``).
    """
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    suffix = "." + domain
    if hostname.endswith(suffix) and len(hostname) > len(suffix):
        return Address(hostname[: -len(suffix)], unquote(path[1:]))
    bucket, _, key = path[1:].partition("/")
    return Address(unquote(bucket), unquote(key))


def operation(method: str, where: Address, query: dict[str, str], copy: bool) -> str:
    """The S3 operation name, or ``NotImplemented``.

    ``copy`` is whether the request carries ``x-amz-copy-source``.
    """
    if OTHER_SUBRESOURCES.intersection(query):
        return NOT_IMPLEMENTED
    if not where.bucket:
        return "ListBuckets" if method == "GET" else NOT_IMPLEMENTED
    if not where.key:
        return _bucket_operation(method, query)
    return _object_operation(method, query, copy)


def _bucket_operation(method: str, query: dict[str, str]) -> str:
    if method == "GET":
        if "location" in query:
            return "GetBucketLocation"
        if "versioning" in query:  # never enabled here (a move asks)
            return "GetBucketVersioning"
        if "uploads" in query:
            return "ListMultipartUploads"
        if "tagging" in query or "acl" in query:
            return NOT_IMPLEMENTED
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if "tagging" in query or "acl" in query or "versioning" in query:
        return NOT_IMPLEMENTED
    if method == "HEAD":
        return "HeadBucket"
    if method == "PUT":
        return "CreateBucket"
    if method == "DELETE":
        return "DeleteBucket"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return NOT_IMPLEMENTED


def _object_operation(method: str, query: dict[str, str], copy: bool) -> str:
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        if "tagging" in query:
            return "GetObjectTagging"
        if "acl" in query:
            return "GetObjectAcl"
        if "uploadId" in query:
            return "ListParts"
        return "GetObject"
    if method == "PUT":
        if "tagging" in query:
            return "PutObjectTagging"
        if "acl" in query:
            return "PutObjectAcl"
        if "uploadId" in query or "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return NOT_IMPLEMENTED
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        if "tagging" in query:
            return "DeleteObjectTagging"
        return "DeleteObject"
    return NOT_IMPLEMENTED
