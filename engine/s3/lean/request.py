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
from urllib.parse import quote, urlsplit

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
# what every object call may say of who owns and who pays
OWNER_PAYER = {
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "RequestPayer": "x-amz-request-payer",
}
# HeadObject parameters this path serializes (a source's HEAD before its copy)
HEAD_HEADERS = {**OWNER_PAYER, "ChecksumMode": "x-amz-checksum-mode"}
HEAD_HANDLED = frozenset({*HEAD_HEADERS, "Bucket", "Key", "VersionId"})
# DeleteObject parameters this path serializes (a move's source delete)
DELETE_HEADERS = {**OWNER_PAYER, "IfMatch": "if-match"}
DELETE_HANDLED = frozenset({*DELETE_HEADERS, "Bucket", "Key", "VersionId"})
# GetObject parameters this path serializes (a streamed copy's read)
GET_HEADERS = {**HEAD_HEADERS, "IfMatch": "if-match", "Range": "range"}
GET_HANDLED = frozenset({*GET_HEADERS, "Bucket", "Key", "VersionId"})
# GetObjectTagging parameters (a streamed copy's source tags)
TAGGING_HEADERS = OWNER_PAYER
TAGGING_HANDLED = frozenset({*TAGGING_HEADERS, "Bucket", "Key", "VersionId"})
# the checksums a lean PutObject may carry, one of which it must (botocore
# computes a CRC32 itself when none is given)
PUT_CHECKSUMS = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)
# PutObject parameters this path serializes (a streamed copy's write): the
# ones a CopyObject carries that a PutObject takes too, and the body's sums
PUT_HEADERS = {
    **{
        p: h
        for p, h in HEADERS.items()
        if not p.startswith(("CopySource", "ExpectedSource"))
        and p not in ("MetadataDirective", "TaggingDirective", "ChecksumAlgorithm")
    },
    "ChecksumAlgorithm": "x-amz-sdk-checksum-algorithm",
    "ContentMD5": "content-md5",
    **{
        c: f"x-amz-checksum-{c.removeprefix('Checksum').lower()}" for c in PUT_CHECKSUMS
    },
}
PUT_HANDLED = frozenset(
    {*PUT_HEADERS, "Bucket", "Key", "Metadata", "Body", "ContentLength"}
)
# UploadPart parameters (a streamed part)
UPLOAD_PART_HEADERS = {
    p: PUT_HEADERS[p]
    for p in (
        "ChecksumAlgorithm",
        "ContentMD5",
        *PUT_CHECKSUMS,
        "ExpectedBucketOwner",
        "RequestPayer",
    )
}
# ListObjectsV2 parameters this path serializes: parameter -> query name (in
# the URL in the call's order, after ``list-type=2``; ``encoding-type=url``
# last, added and undone as botocore does: a key may hold what XML cannot)
LIST_QUERY = {
    "ContinuationToken": "continuation-token",
    "Delimiter": "delimiter",
    "MaxKeys": "max-keys",
    "Prefix": "prefix",
    "StartAfter": "start-after",
}
LIST_HANDLED = frozenset({*LIST_QUERY, *OWNER_PAYER, "Bucket"})
UPLOAD_PART_HANDLED = frozenset(
    {*UPLOAD_PART_HEADERS, "Bucket", "Key", "Body", "ContentLength"}
    | {"UploadId", "PartNumber"}
)

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _sendable(values: Iterable[str]) -> bool:
    """Header values go as they are (keys and sources are percent-encoded):
    only printable ASCII, as botocore would send them."""
    return all(v.isascii() and v.isprintable() for v in values)


class LeanRequests:
    """The lean calls (CopyObject, HeadObject, DeleteObject, a stream's,
    ListObjectsV2) for one endpoint, region and addressing style: whether
    this path can make a call, and the call itself (the host to send it to
    and the raw request)."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        addressing_style: str = "path",
        bucket: str | None = None,
        head_buckets: Iterable[str] = (),
        list_buckets: Iterable[str] = (),
    ) -> None:
        # the buckets whose ListObjectsV2 botocore would send as this path
        # does (one botocore answered in its place is left to it)
        self.list_buckets = frozenset(list_buckets)
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

    def handles_get(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this GetObject as botocore would
        (objects of the buckets whose HEADs it makes: the sources), asked
        for checksums (botocore asks for them itself, unless configured not
        to: the call says which it wants)."""
        if kwargs.get("ChecksumMode") != "ENABLED":
            return False
        return self._handles_object_call(kwargs, GET_HANDLED, GET_HEADERS)

    def handles_tagging(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this GetObjectTagging as botocore would
        (a source's tags)."""
        return self._handles_object_call(kwargs, TAGGING_HANDLED, TAGGING_HEADERS)

    def handles_put(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this PutObject as botocore would: to the
        probed bucket, with a body in memory and exactly one of the checksums
        (botocore adds none then), with or without its MD5."""
        return self._handles_body(kwargs, PUT_HANDLED, PUT_HEADERS)

    def handles_upload_part(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this UploadPart (as :meth:`handles_put`,
        but a part may go with its MD5 alone: a part of an upload with no
        checksum algorithm, where botocore would add a CRC32 that
        CompleteMultipartUpload does not name)."""
        return self._handles_body(
            kwargs, UPLOAD_PART_HANDLED, UPLOAD_PART_HEADERS, md5_alone=True
        )

    def _handles_body(
        self,
        kwargs: dict[str, Any],
        handled: frozenset[str],
        params: dict[str, str],
        *,
        md5_alone: bool = False,
    ) -> bool:
        if not self.usable_endpoint or not handled.issuperset(kwargs):
            return False
        if self.bucket is None or kwargs.get("Bucket") != self.bucket:
            return False
        body = kwargs.get("Body")
        if not isinstance(body, bytes | bytearray | memoryview):
            return False
        if kwargs.get("ContentLength", len(body)) != len(body):
            return False
        given = [c for c in PUT_CHECKSUMS if c in kwargs]
        if len(given) > 1:
            return False
        alg = kwargs.get("ChecksumAlgorithm")
        if not given:
            if not md5_alone or alg is not None or "ContentMD5" not in kwargs:
                return False
        elif alg is not None and f"Checksum{alg}" != given[0]:
            return False
        if self.virtual and not _DNS_BUCKET.match(kwargs.get("Bucket", "")):
            return False
        meta = kwargs.get("Metadata") or {}
        values = [str(kwargs[p]) for p in params if kwargs.get(p) is not None]
        values += [*map(str, meta), *map(str, meta.values())]
        return _sendable(values)

    def handles_list(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make this ListObjectsV2 as botocore would
        (of a bucket the probe learnt it for, keys asked URL-encoded)."""
        if kwargs.get("Bucket") not in self.list_buckets:
            return False
        if not self.usable_endpoint or not LIST_HANDLED.issuperset(kwargs):
            return False
        if None in kwargs.values():
            return False  # botocore refuses it (ParamValidationError)
        return _sendable(str(kwargs[p]) for p in OWNER_PAYER if p in kwargs)

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

    def get_object(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed GetObject."""
        return self._object_request("GET", GET_HEADERS, kwargs, creds, now)

    def get_object_tagging(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed GetObjectTagging (``?tagging``
        in the URL, ``tagging=`` in what is signed, as botocore sends it)."""
        return self._object_request(
            "GET", TAGGING_HEADERS, kwargs, creds, now, subresource="tagging"
        )

    def put_object(
        self, kwargs: dict[str, Any], creds: Credentials, now: float, payload: str
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed head of a PutObject (its body
        goes after it); ``payload``: what stands for the body in the
        signature (its SHA-256, or ``UNSIGNED-PAYLOAD``)."""
        return self._body_request(PUT_HEADERS, "", kwargs, creds, now, payload)

    def list_objects_v2(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed ListObjectsV2 (its query as
        botocore orders it; signed sorted)."""
        pairs = [("list-type", "2")]
        pairs += [(LIST_QUERY[p], str(v)) for p, v in kwargs.items() if p in LIST_QUERY]
        pairs.append(("encoding-type", "url"))
        headers = {h: str(kwargs[p]) for p, h in OWNER_PAYER.items() if p in kwargs}
        sent = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in pairs)
        return self._signed(
            "GET",
            kwargs["Bucket"],
            None,
            encode_query(pairs),
            headers,
            creds,
            now,
            target_query=sent,
        )

    def upload_part(
        self, kwargs: dict[str, Any], creds: Credentials, now: float, payload: str
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed head of an UploadPart (its
        query as botocore orders it, ``uploadId`` first; signed sorted)."""
        pairs = [
            ("uploadId", kwargs["UploadId"]),
            ("partNumber", str(kwargs["PartNumber"])),
        ]
        sent = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in pairs)
        return self._body_request(
            UPLOAD_PART_HEADERS,
            encode_query(pairs),
            kwargs,
            creds,
            now,
            payload,
            target_query=sent,
        )

    def _body_request(
        self,
        params: dict[str, str],
        query: str,
        kwargs: dict[str, Any],
        creds: Credentials,
        now: float,
        payload: str,
        target_query: str | None = None,
    ) -> tuple[str, bytes]:
        body = kwargs["Body"]
        # signed when given as a parameter (botocore serializes it then),
        # else sent unsigned, as botocore's HTTP layer adds it
        headers = (
            {"content-length": str(len(body))} if "ContentLength" in kwargs else {}
        )
        for param, header in params.items():
            value = kwargs.get(param)
            if value is not None:
                headers[header] = str(value)
        for name, value in (kwargs.get("Metadata") or {}).items():
            headers[f"x-amz-meta-{name}".lower()] = str(value)
        return self._signed(
            "PUT",
            kwargs["Bucket"],
            kwargs["Key"],
            query,
            headers,
            creds,
            now,
            payload,
            target_query=target_query,
            length=len(body),
        )

    def _object_request(
        self,
        method: str,
        params: dict[str, str],
        kwargs: dict[str, Any],
        creds: Credentials,
        now: float,
        subresource: str = "",
    ) -> tuple[str, bytes]:
        version = kwargs.get("VersionId")
        pairs = [("versionId", version)] if version else []
        if subresource:
            pairs.append((subresource, ""))
        headers = {
            header: str(kwargs[param])
            for param, header in params.items()
            if kwargs.get(param) is not None
        }
        return self._signed(
            method,
            kwargs["Bucket"],
            kwargs["Key"],
            encode_query(pairs),
            headers,
            creds,
            now,
            target_query=_sent_query(pairs),
        )

    def _signed(
        self,
        method: str,
        bucket: str,
        key: str | None,  # None: the bucket itself
        query: str,
        extra: dict[str, str],
        creds: Credentials,
        now: float,
        payload: str = EMPTY_SHA256,
        *,
        target_query: str | None = None,
        length: int = 0,
    ) -> tuple[str, bytes]:
        """``query``: as signed; ``target_query``: as sent, when it differs
        (a bare sub-resource such as ``?tagging``)."""
        if self.virtual:
            host, path = f"{bucket}.{self.host}", "/" + encode_path(key or "")
        elif key is None:
            host, path = self.host, f"/{bucket}"
        else:
            host, path = self.host, f"/{bucket}/{encode_path(key)}"
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        headers = {
            "host": host,
            **extra,
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload,
        }
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        auth = self.signer.authorization(
            method=method,
            path=path,
            query=query,
            headers=headers,
            payload_hash=payload,
            credentials=creds,
            amz_date=amz_date,
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sent = query if target_query is None else target_query
        target = f"{path}?{sent}" if sent else path
        body = (
            f"content-length: {length}\r\n"
            if method == "PUT" and "content-length" not in headers
            else ""
        )
        raw = (
            f"{method} {target} HTTP/1.1\r\n{lines}authorization: {auth}\r\n{body}\r\n"
        )
        return host, raw.encode()


def _sent_query(pairs: list[tuple[str, str]]) -> str:
    """The query string as botocore puts it in the URL: a sub-resource with
    no value bare (``tagging``), before the parameters."""
    named = encode_query([(k, v) for k, v in pairs if v])
    bare = [quote(k, safe="-_.~") for k, v in pairs if not v]
    return "&".join([*bare, *filter(None, [named])])
