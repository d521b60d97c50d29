"""The lean path's requests: which calls it can make as botocore would, and
those calls serialized and signed, byte for byte what botocore sends.

Pure: a request is built from the call's parameters, the credentials and the
time; nothing here touches the network.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from engine.s3.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    Signer,
    copy_source,
    encode_path,
    encode_query,
)

# CopyObject parameters this path serializes: parameter -> header
HEADERS = {
    "ACL": "x-amz-acl",
    "CacheControl": "cache-control",
    "ChecksumAlgorithm": "x-amz-checksum-algorithm",
    "ContentDisposition": "content-disposition",
    "ContentEncoding": "content-encoding",
    "ContentLanguage": "content-language",
    "ContentType": "content-type",
    "CopySourceIfMatch": "x-amz-copy-source-if-match",
    "CopySourceIfNoneMatch": "x-amz-copy-source-if-none-match",
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "ExpectedSourceBucketOwner": "x-amz-source-expected-bucket-owner",
    "MetadataDirective": "x-amz-metadata-directive",
    "RequestPayer": "x-amz-request-payer",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "StorageClass": "x-amz-storage-class",
    "Tagging": "x-amz-tagging",
    "TaggingDirective": "x-amz-tagging-directive",
}
HANDLED = frozenset({*HEADERS, "Bucket", "Key", "CopySource", "Metadata"})
# HeadObject parameters this path serializes (a source's HEAD before its copy)
HEAD_HEADERS = {
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "RequestPayer": "x-amz-request-payer",
    "ChecksumMode": "x-amz-checksum-mode",
}
HEAD_HANDLED = frozenset({*HEAD_HEADERS, "Bucket", "Key", "VersionId"})
# DeleteObject parameters this path serializes (a move's source delete)
DELETE_HEADERS = {
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "RequestPayer": "x-amz-request-payer",
    "IfMatch": "if-match",
}
DELETE_HANDLED = frozenset({*DELETE_HEADERS, "Bucket", "Key", "VersionId"})

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _sendable(values: Iterable[str]) -> bool:
    """Header values go as they are (keys and sources are percent-encoded):
    only printable ASCII, as botocore would send them."""
    return all(v.isascii() and v.isprintable() for v in values)


class LeanRequests:
    """CopyObject, HeadObject and DeleteObject for one endpoint, region and
    addressing style: whether this path can make a call, and the call itself
    (the host to send it to and the raw request)."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        addressing_style: str = "path",
        bucket: str | None = None,
        head_buckets: Iterable[str] = (),
    ) -> None:
        # only copies to this bucket, when given (the one the probe learnt)
        self.bucket = bucket
        # HEADs and deletes of objects in these buckets
        self.head_buckets = frozenset(head_buckets)
        parts = urlsplit(endpoint_url)
        self.tls = parts.scheme == "https"
        self.hostname = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        self.host = self.hostname if default_port else f"{self.hostname}:{self.port}"
        self.virtual = addressing_style == "virtual"
        self.signer = Signer(region)
        self.usable_endpoint = parts.scheme in ("http", "https") and parts.path in (
            "",
            "/",
        )

    def handles(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this CopyObject as botocore would."""
        if not self.usable_endpoint or not HANDLED.issuperset(kwargs):
            return False
        if self.bucket is not None and kwargs.get("Bucket") != self.bucket:
            return False
        source = kwargs.get("CopySource")
        if not isinstance(source, dict) or not set(source) <= {
            "Bucket",
            "Key",
            "VersionId",
        }:
            return False
        if self.virtual and not _DNS_BUCKET.match(kwargs.get("Bucket", "")):
            return False
        meta = kwargs.get("Metadata") or {}
        values = [str(kwargs[p]) for p in HEADERS if kwargs.get(p) is not None]
        values += [*map(str, meta), *map(str, meta.values())]
        return _sendable(values)

    def handles_head(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this HeadObject as botocore would."""
        return self._handles_object_call(kwargs, HEAD_HANDLED, HEAD_HEADERS)

    def handles_delete(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this DeleteObject as botocore would
        (objects of the buckets whose HEADs it makes: a move's sources)."""
        return self._handles_object_call(kwargs, DELETE_HANDLED, DELETE_HEADERS)

    def _handles_object_call(
        self, kwargs: dict[str, Any], handled: frozenset[str], headers: dict[str, str]
    ) -> bool:
        if kwargs.get("Bucket") not in self.head_buckets:
            return False
        if not self.usable_endpoint or not handled.issuperset(kwargs):
            return False
        return _sendable(str(kwargs[p]) for p in headers if kwargs.get(p) is not None)

    def copy_object(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed CopyObject."""
        src = kwargs["CopySource"]
        headers = {
            "x-amz-copy-source": copy_source(
                src["Bucket"], src["Key"], src.get("VersionId")
            )
        }
        for param, header in HEADERS.items():
            value = kwargs.get(param)
            if value is not None:
                headers[header] = str(value)
        for name, value in (kwargs.get("Metadata") or {}).items():
            headers[f"x-amz-meta-{name}".lower()] = str(value)
        return self._signed(
            "PUT", kwargs["Bucket"], kwargs["Key"], "", headers, creds, now
        )

    def head_object(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed HeadObject."""
        return self._object_request("HEAD", HEAD_HEADERS, kwargs, creds, now)

    def delete_object(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed DeleteObject."""
        return self._object_request("DELETE", DELETE_HEADERS, kwargs, creds, now)

    def _object_request(
        self,
        method: str,
        params: dict[str, str],
        kwargs: dict[str, Any],
        creds: Credentials,
        now: float,
    ) -> tuple[str, bytes]:
        version = kwargs.get("VersionId")
        query = encode_query([("versionId", version)]) if version else ""
        headers = {
            header: str(kwargs[param])
            for param, header in params.items()
            if kwargs.get(param) is not None
        }
        return self._signed(
            method, kwargs["Bucket"], kwargs["Key"], query, headers, creds, now
        )

    def _signed(
        self,
        method: str,
        bucket: str,
        key: str,
        query: str,
        extra: dict[str, str],
        creds: Credentials,
        now: float,
    ) -> tuple[str, bytes]:
        if self.virtual:
            host, path = f"{bucket}.{self.host}", "/" + encode_path(key)
        else:
            host, path = self.host, f"/{bucket}/{encode_path(key)}"
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        headers = {
            "host": host,
            **extra,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": EMPTY_SHA256,
        }
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        auth = self.signer.authorization(
            method=method,
            path=path,
            query=query,
            headers=headers,
            payload_hash=EMPTY_SHA256,
            credentials=creds,
            amz_date=amz_date,
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        target = f"{path}?{query}" if query else path
        body = "content-length: 0\r\n" if method == "PUT" else ""
        raw = (
            f"{method} {target} HTTP/1.1\r\n{lines}authorization: {auth}\r\n{body}\r\n"
        )
        return host, raw.encode()
