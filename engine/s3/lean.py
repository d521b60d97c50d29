"""The lean CopyObject: the same request botocore would send, built, signed
and parsed without botocore's per-request machinery.

botocore spends about 1 ms of CPU on each small CopyObject (endpoint rules
evaluated per call, the event system, the User-Agent rebuilt, the SigV4 key
chain re-derived, timestamps parsed with dateutil).  This path serializes the
common parameters straight to headers (:data:`HEADERS`), signs them with
:mod:`engine.s3.sigv4`, sends them with :mod:`engine.s3.wire`, and answers
exactly what botocore's ``copy_object`` answers: the same response dict, or
the same ``ClientError`` (errors embedded in a ``200 OK`` included), so the
one classification path (:mod:`engine.s3.call`) sees no difference.

It takes only what it knows: :meth:`LeanCopier.handles` says no to any
parameter outside :data:`HEADERS`, to SigV2, to custom endpoints with a path,
and to buckets a virtual-host request cannot name; the caller then uses
botocore.  Answers it will not interpret (redirects, a wrong region, clock
skew) raise :class:`Fallback`, and the caller repeats the call through
botocore, which knows how to follow them.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.utils import parse_timestamp

from engine.domain.backoff import RetryPolicy
from engine.s3.call import from_exception
from engine.s3.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    Signer,
    copy_source,
    encode_path,
    encode_query,
)
from engine.s3.wire import Pool, Response, WireError

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
# response headers botocore's DeleteObject output carries, by member name
DELETE_RESPONSE_HEADERS = {
    "x-amz-version-id": "VersionId",
    "x-amz-request-charged": "RequestCharged",
}
# response headers botocore's CopyObject output carries, by member name
RESPONSE_HEADERS = {
    "x-amz-version-id": "VersionId",
    "x-amz-copy-source-version-id": "CopySourceVersionId",
    "x-amz-server-side-encryption": "ServerSideEncryption",
    "x-amz-server-side-encryption-aws-kms-key-id": "SSEKMSKeyId",
    "x-amz-request-charged": "RequestCharged",
    "x-amz-expiration": "Expiration",
}
# answers botocore handles itself (it follows redirects, corrects the region
# and the clock): this path hands those calls over
FALLBACK_CODES = frozenset(
    {
        "PermanentRedirect",
        "TemporaryRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "RequestTimeTooSkewed",
    }
)
# (an expired token is the engine's to handle, on both paths: it refreshes the
# credentials and tries again, engine.copy.execute.EXPIRED_CREDENTIALS)
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TAG = re.compile(
    rb"<(Code|Message|ETag|LastModified|RequestId|HostId)>(.*?)</\1>", re.S
)

GetCredentials = Callable[[], Awaitable[Credentials]]


class Fallback(Exception):
    """This call is botocore's to make (an answer the lean path leaves to it)."""


_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|quot|apos|lt|gt|amp);")
_NAMED = {"quot": '"', "apos": "'", "lt": "<", "gt": ">", "amp": "&"}


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.startswith("#x"):
        return chr(int(name[2:], 16))
    if name.startswith("#"):
        return chr(int(name[1:]))
    return _NAMED[name]


def _text(raw: bytes) -> str:
    """An element's text as an XML parser reads it: the five named entities
    and character references (Go servers write ``"`` as ``&#34;``)."""
    return _ENTITY.sub(_entity, raw.decode("utf-8"))


def parse_fields(body: bytes) -> dict[str, str]:
    """The first value of each element the answers need (Code, Message, ETag,
    LastModified, RequestId, HostId)."""
    found: dict[str, str] = {}
    for name, value in _TAG.findall(body):
        key = name.decode()
        if key not in found:
            found[key] = _text(value)
    return found


def parse_time(value: str) -> datetime:
    """An S3 ISO 8601 timestamp (``2026-11-21T04:05:06.000Z``)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_header_time(value: str) -> datetime:
    """A timestamp header as botocore parses it (RFC 822 mostly; anything
    else through botocore's own parser)."""
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed: datetime = parse_timestamp(value)
        return parsed


class HeadParser:
    """HeadObject's answer as botocore parses it, read off botocore's service
    model: each output member found in a header (``location: header``) with
    its type, and the user metadata (``location: headers``, by prefix).  Also
    botocore's S3 customization of ``Expires`` (kept as ``ExpiresString``;
    dropped when it is not a date)."""

    def __init__(self, output_shape: Any) -> None:
        self.members: list[tuple[str, str, str]] = []
        self.maps: list[tuple[str, str]] = []
        for name, shape in output_shape.members.items():
            where = shape.serialization.get("location")
            header = str(shape.serialization.get("name", "")).lower()
            if where == "header":
                self.members.append((header, name, shape.type_name))
            elif where == "headers":
                self.maps.append((name, header))
        self.expires = any(h == "expires" for h, _, _ in self.members)

    def parse(self, response: Response) -> dict[str, Any]:
        out: dict[str, Any] = {}
        headers = response.headers
        drop_expires = False
        if self.expires and "expires" in headers:
            out["ExpiresString"] = headers["expires"]
            try:
                parse_timestamp(headers["expires"])
            except (ValueError, RuntimeError):
                drop_expires = True
        for header, member, kind in self.members:
            value = headers.get(header)
            if value is None or (drop_expires and header == "expires"):
                continue
            if kind in ("integer", "long"):
                out[member] = int(value)
            elif kind == "boolean":
                out[member] = value == "true"
            elif kind == "timestamp":
                out[member] = parse_header_time(value)
            elif kind == "list":
                out[member] = [v.strip() for v in value.split(",")]
            else:
                out[member] = value
        for member, prefix in self.maps:
            out[member] = {
                name[len(prefix) :]: value
                for name, value in response.raw_headers
                if name.lower().startswith(prefix)
            }
        return out


class LeanCopier:
    """CopyObject (and a source's HeadObject) for one endpoint, region and
    addressing style."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: GetCredentials,
        *,
        addressing_style: str = "path",
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        bucket: str | None = None,
        head_buckets: Iterable[str] = (),
        head_parser: HeadParser | None = None,
    ) -> None:
        # only copies to this bucket, when given (the one the probe learnt)
        self.bucket = bucket
        # HEADs of objects in these buckets, when a parser is given
        self.head_buckets = frozenset(head_buckets) if head_parser else frozenset()
        self.head_parser = head_parser
        parts = urlsplit(endpoint_url)
        self.tls = parts.scheme == "https"
        self.hostname = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        self.host = self.hostname if default_port else f"{self.hostname}:{self.port}"
        self.virtual = addressing_style == "virtual"
        self.region = region
        self.signer = Signer(region)
        self.credentials = credentials
        self.usable_endpoint = parts.scheme in ("http", "https") and parts.path in (
            "",
            "/",
        )
        self._timeouts = (connect_timeout, read_timeout)
        self._pools: dict[str, Pool] = {}

    def handles(self, kwargs: dict[str, Any]) -> bool:
        """Whether this path can make the call as botocore would."""
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
        # header values go as they are (keys and sources are percent-encoded):
        # only printable ASCII, as botocore would send them
        meta = kwargs.get("Metadata") or {}
        values = [str(kwargs[p]) for p in HEADERS if kwargs.get(p) is not None]
        values += [*map(str, meta), *map(str, meta.values())]
        return all(v.isascii() and v.isprintable() for v in values)

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
        values = [str(kwargs[p]) for p in headers if kwargs.get(p) is not None]
        return all(v.isascii() and v.isprintable() for v in values)

    def request(
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

    def head_request(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed HeadObject."""
        return self._object_request("HEAD", HEAD_HEADERS, kwargs, creds, now)

    def delete_request(
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

    def _pool(self, host: str) -> Pool:
        """Connections to ``host`` (the endpoint, or ``bucket.endpoint``)."""
        pool = self._pools.get(host)
        if pool is None:
            name = host.rsplit(":", 1)[0] if host.endswith(f":{self.port}") else host
            connect, read = self._timeouts
            pool = self._pools[host] = Pool(
                name,
                self.port,
                tls=self.tls,
                server_hostname=name,
                connect_timeout=connect,
                read_timeout=read,
            )
        return pool

    async def _exchange(self, host: str, raw: bytes, head: bool = False) -> Response:
        try:
            return await self._pool(host).request(raw, head=head)
        except WireError as exc:
            if exc.timeout:
                raise ReadTimeoutError(endpoint_url=f"http://{host}") from exc
            raise EndpointConnectionError(
                endpoint_url=f"http://{host}", error=exc
            ) from exc

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``copy_object``: the same answer or the same error."""
        creds = await self.credentials()
        host, raw = self.request(kwargs, creds, time.time())
        response = await self._exchange(host, raw)
        fields = parse_fields(response.body)
        meta = {
            "RequestId": response.headers.get(
                "x-amz-request-id", fields.get("RequestId", "")
            ),
            "HostId": response.headers.get("x-amz-id-2", fields.get("HostId", "")),
            "HTTPStatusCode": response.status,
            "HTTPHeaders": response.headers,
            "RetryAttempts": 0,
        }
        status, body = response.status, response.body.strip()
        if status == 200 and body and not body.endswith(b"</CopyObjectResult>"):
            # an error inside a 200, or an answer cut short: botocore makes
            # both a 500 (and so do we: retried, never taken for a copy)
            status = meta["HTTPStatusCode"] = 500
        reason = (
            response.reason if status == response.status else "Internal Server Error"
        )
        if status >= 300:
            code = fields.get("Code") or str(status)
            if code in FALLBACK_CODES or 300 <= status < 400:
                raise Fallback(code)
            error = {"Code": code, "Message": fields.get("Message", reason)}
            raise ClientError({"Error": error, "ResponseMetadata": meta}, "CopyObject")
        out: dict[str, Any] = {"ResponseMetadata": meta}
        for header, member in RESPONSE_HEADERS.items():
            if header in response.headers:
                out[member] = response.headers[header]
        result: dict[str, Any] = {}  # empty for an empty 200 (refused as a copy)
        if "ETag" in fields:
            result["ETag"] = fields["ETag"]
        if "LastModified" in fields:
            result["LastModified"] = parse_time(fields["LastModified"])
        out["CopyObjectResult"] = result
        return out

    async def head_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``head_object``: the same answer or the same error."""
        assert self.head_parser is not None
        creds = await self.credentials()
        host, raw = self.head_request(kwargs, creds, time.time())
        response = await self._exchange(host, raw, head=True)
        headers = response.headers
        meta: dict[str, Any] = {}
        if "x-amz-request-id" in headers:
            meta["RequestId"] = headers["x-amz-request-id"]
            meta["HostId"] = headers.get("x-amz-id-2", "")
        meta.update(
            HTTPStatusCode=response.status, HTTPHeaders=headers, RetryAttempts=0
        )
        status = response.status
        if 300 <= status < 400 or (status == 400 and "x-amz-bucket-region" in headers):
            raise Fallback(str(status))  # botocore follows the bucket's region
        if status >= 300:
            error = {
                "Code": str(status),
                "Message": http.client.responses.get(status, ""),
            }
            raise ClientError({"Error": error, "ResponseMetadata": meta}, "HeadObject")
        out = self.head_parser.parse(response)
        out["ResponseMetadata"] = meta
        return out

    async def delete_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``delete_object``: the same answer or the same error."""
        creds = await self.credentials()
        host, raw = self.delete_request(kwargs, creds, time.time())
        response = await self._exchange(host, raw)
        fields = parse_fields(response.body)
        meta: dict[str, Any] = {}
        if "x-amz-request-id" in response.headers or "RequestId" in fields:
            meta["RequestId"] = response.headers.get(
                "x-amz-request-id", fields.get("RequestId", "")
            )
            meta["HostId"] = response.headers.get(
                "x-amz-id-2", fields.get("HostId", "")
            )
        meta.update(
            HTTPStatusCode=response.status,
            HTTPHeaders=response.headers,
            RetryAttempts=0,
        )
        status = response.status
        if status >= 300:
            code = fields.get("Code") or str(status)
            if code in FALLBACK_CODES or 300 <= status < 400:
                raise Fallback(code)
            message = fields.get("Message", response.reason)
            error = {"Code": code, "Message": message}
            raise ClientError(
                {"Error": error, "ResponseMetadata": meta}, "DeleteObject"
            )
        out: dict[str, Any] = {"ResponseMetadata": meta}
        marker = response.headers.get("x-amz-delete-marker")
        if marker is not None:
            out["DeleteMarker"] = marker.lower() == "true"
        for header, member in DELETE_RESPONSE_HEADERS.items():
            if header in response.headers:
                out[member] = response.headers[header]
        return out

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


# -- learning from botocore how it sends a copy, once ------------------------------

PROBE_KEY = "bulkcopy-probe"
# source buckets probed for lean HEADs (a job from thousands of buckets HEADs
# the rest through botocore rather than wait for thousands of probes)
MAX_HEAD_PROBES = 64
# headers that only say who sent the request or are set per request
_PER_REQUEST = frozenset(
    {
        "user-agent",
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "x-amz-copy-source",
        "host",
        "content-length",
    }
)


def _needs_botocore_transport(scheme: str, hostname: str) -> bool:
    """A proxy or a custom CA bundle: botocore's HTTP layer honours them,
    this one does not (yet), so the lean path stays out."""
    if scheme == "https" and (
        os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE")
    ):
        return True
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme)) and not urllib.request.proxy_bypass(hostname)


class _Probed(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("probe")
        self.request = request


async def _capture(client: Any, operation: str, call: Any) -> Any:
    """The request botocore builds for ``call()``, stopped before sending
    (``None`` if it failed before that)."""
    events = client.meta.events
    event = f"before-send.s3.{operation}"

    def capture(request: Any, **_: Any) -> None:
        raise _Probed(request)

    events.register_first(event, capture, unique_id="bulkcopy-probe")
    try:
        await call()
    except _Probed as seen:
        return seen.request
    except Exception:
        return None
    finally:
        events.unregister(event, unique_id="bulkcopy-probe")
    return None


def _learn(request: Any, bucket: str) -> tuple[str, str, bool] | None:
    """``(endpoint URL, signing region, virtual)`` of a probe request that
    the lean path can reproduce, else ``None``."""
    if request is None:
        return None
    headers = {
        k.lower(): v.decode("latin-1") if isinstance(v, bytes) else str(v)
        for k, v in request.headers.items()
    }
    auth = headers.get("authorization", "")
    match = re.match(
        r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request", auth
    )
    extra = {
        k for k in headers if k not in _PER_REQUEST and not k.startswith("amz-sdk-")
    }
    if match is None or extra or headers.get("x-amz-content-sha256") != EMPTY_SHA256:
        return None
    parts = urlsplit(request.url)
    if parts.query or parts.path not in (f"/{bucket}/{PROBE_KEY}", f"/{PROBE_KEY}"):
        return None
    if _needs_botocore_transport(parts.scheme, parts.hostname or ""):
        return None
    virtual = parts.path == f"/{PROBE_KEY}"
    netloc = parts.netloc
    if virtual:
        if not netloc.startswith(f"{bucket}."):
            return None
        netloc = netloc[len(bucket) + 1 :]
    return f"{parts.scheme}://{netloc}", match.group(1), virtual


async def probe(
    client: Any,
    bucket: str,
    credentials: GetCredentials,
    *,
    head_buckets: Iterable[str] = (),
    connect_timeout: float = 10.0,
    read_timeout: float = 300.0,
) -> LeanCopier | None:
    """A :class:`LeanCopier` sending CopyObject to ``bucket`` exactly as
    ``client`` would, or ``None`` when the lean path cannot (another signature
    version, extra headers installed on the client, a path prefix, …).

    botocore builds one CopyObject to ``bucket`` (endpoint rules, addressing
    style, signing region, handlers) and is stopped before sending it; what it
    would have sent is what the lean path copies.  The same for a HeadObject
    of each of ``head_buckets`` (the sources): those botocore would send to
    the same endpoint, region and addressing style are HEADed the lean way
    too, answered as botocore's service model says (:class:`HeadParser`)."""
    copy = await _capture(
        client,
        "CopyObject",
        lambda: client.copy_object(
            Bucket=bucket,
            Key=PROBE_KEY,
            CopySource={"Bucket": bucket, "Key": PROBE_KEY},
        ),
    )
    learnt = _learn(copy, bucket)
    if learnt is None:
        return None
    endpoint, region, virtual = learnt
    heads = set()
    for source in list(dict.fromkeys(head_buckets))[:MAX_HEAD_PROBES]:
        head = await _capture(
            client,
            "HeadObject",
            lambda b=source: client.head_object(Bucket=b, Key=PROBE_KEY),
        )
        if _learn(head, source) == learnt:
            heads.add(source)
    output = client.meta.service_model.operation_model("HeadObject").output_shape
    return LeanCopier(
        endpoint,
        region,
        credentials,
        addressing_style="virtual" if virtual else "path",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        bucket=bucket,
        head_buckets=heads,
        head_parser=HeadParser(output),
    )


class LeanClient:
    """The botocore client, with ``copy_object`` to the probed bucket taken by
    the lean path whenever it can; everything else is the client's.

    Like botocore's standard retry mode, a lean copy is tried up to
    ``sdk_max_attempts`` times on a retryable answer (classified the one way,
    :func:`engine.s3.call.from_exception`), with botocore's backoff (full
    jitter, 1 s base, 20 s cap), so both paths make the same number of
    requests before the task-level retry sees a failure."""

    def __init__(
        self, client: Any, copier: LeanCopier, *, sdk_max_attempts: int = 1
    ) -> None:
        self._client = client
        self._copier = copier
        self._sdk = RetryPolicy(
            max_attempts=max(1, sdk_max_attempts),
            base_delay=1.0,
            throttle_base_delay=1.0,
            max_delay=20.0,
        )
        self.lean_copies = 0  # how many copies went the lean way (for tests)
        self.lean_heads = 0
        self.lean_deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.handles(kwargs):
            try:
                answer = await self._lean(
                    "CopyObject", self._copier.copy_object, kwargs
                )
            except Fallback:
                pass
            else:
                self.lean_copies += 1
                return answer
        answer = await self._client.copy_object(**kwargs)
        return dict(answer)

    async def head_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.handles_head(kwargs):
            try:
                answer = await self._lean(
                    "HeadObject", self._copier.head_object, kwargs
                )
            except Fallback:
                pass
            else:
                self.lean_heads += 1
                return answer
        answer = await self._client.head_object(**kwargs)
        return dict(answer)

    async def delete_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.handles_delete(kwargs):
            try:
                answer = await self._lean(
                    "DeleteObject", self._copier.delete_object, kwargs
                )
            except Fallback:
                pass
            else:
                self.lean_deletes += 1
                return answer
        answer = await self._client.delete_object(**kwargs)
        return dict(answer)

    async def _lean(
        self,
        operation: str,
        call: Callable[..., Awaitable[dict[str, Any]]],
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await call(**kwargs)
            except Fallback:
                raise
            except Exception as exc:
                disposition = from_exception(exc, operation).disposition
                if not self._sdk.should_retry(attempt, disposition):
                    if isinstance(exc, ClientError):
                        exc.response["ResponseMetadata"]["RetryAttempts"] = attempt - 1
                    raise
                await asyncio.sleep(self._sdk.delay(attempt, disposition))
                continue
            answer["ResponseMetadata"]["RetryAttempts"] = attempt - 1
            return answer

    def close(self) -> None:
        self._copier.close()
