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
import os
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import unescape

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from engine.retry import RetryPolicy
from engine.s3.call import from_exception
from engine.s3.sigv4 import EMPTY_SHA256, Credentials, Signer, copy_source, encode_path
from engine.s3.wire import Pool, WireError

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
        "ExpiredToken",
        "InvalidToken",
    }
)
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TAG = re.compile(
    rb"<(Code|Message|ETag|LastModified|RequestId|HostId)>(.*?)</\1>", re.S
)

GetCredentials = Callable[[], Awaitable[Credentials]]


class Fallback(Exception):
    """This call is botocore's to make (an answer the lean path leaves to it)."""


def _text(raw: bytes) -> str:
    return unescape(raw.decode("utf-8"), {"&quot;": '"', "&apos;": "'"})


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


class LeanCopier:
    """CopyObject for one endpoint, region and addressing style."""

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
    ) -> None:
        # only copies to this bucket, when given (the one the probe learnt)
        self.bucket = bucket
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

    def request(
        self, kwargs: dict[str, Any], creds: Credentials, now: float
    ) -> tuple[str, bytes]:
        """The host and the serialized, signed request."""
        bucket, key = kwargs["Bucket"], kwargs["Key"]
        if self.virtual:
            host, path = f"{bucket}.{self.host}", "/" + encode_path(key)
        else:
            host, path = self.host, f"/{bucket}/{encode_path(key)}"
        src = kwargs["CopySource"]
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        headers = {
            "host": host,
            "x-amz-copy-source": copy_source(
                src["Bucket"], src["Key"], src.get("VersionId")
            ),
            "x-amz-date": amz_date,
            "x-amz-content-sha256": EMPTY_SHA256,
        }
        for param, header in HEADERS.items():
            value = kwargs.get(param)
            if value is not None:
                headers[header] = str(value)
        for name, value in (kwargs.get("Metadata") or {}).items():
            headers[f"x-amz-meta-{name}".lower()] = str(value)
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        auth = self.signer.authorization(
            method="PUT",
            path=path,
            query="",
            headers=headers,
            payload_hash=EMPTY_SHA256,
            credentials=creds,
            amz_date=amz_date,
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (
            f"PUT {path} HTTP/1.1\r\n{lines}"
            f"authorization: {auth}\r\ncontent-length: 0\r\n\r\n"
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

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``copy_object``: the same answer or the same error."""
        creds = await self.credentials()
        host, raw = self.request(kwargs, creds, time.time())
        try:
            response = await self._pool(host).request(raw)
        except WireError as exc:
            if exc.timeout:
                raise ReadTimeoutError(endpoint_url=f"http://{host}") from exc
            raise EndpointConnectionError(
                endpoint_url=f"http://{host}", error=exc
            ) from exc
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

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


# -- learning from botocore how it sends a copy, once ------------------------------

PROBE_KEY = "bulkcopy-probe"
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


async def probe(
    client: Any,
    bucket: str,
    credentials: GetCredentials,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 300.0,
) -> LeanCopier | None:
    """A :class:`LeanCopier` sending CopyObject to ``bucket`` exactly as
    ``client`` would, or ``None`` when the lean path cannot (another signature
    version, extra headers installed on the client, a path prefix, …).

    botocore builds one CopyObject to ``bucket`` (endpoint rules, addressing
    style, signing region, handlers) and is stopped before sending it; what it
    would have sent is what the lean path copies."""
    events = client.meta.events

    def capture(request: Any, **_: Any) -> None:
        raise _Probed(request)

    events.register_first(
        "before-send.s3.CopyObject", capture, unique_id="bulkcopy-probe"
    )
    try:
        await client.copy_object(
            Bucket=bucket,
            Key=PROBE_KEY,
            CopySource={"Bucket": bucket, "Key": PROBE_KEY},
        )
    except _Probed as seen:
        request = seen.request
    except Exception:
        return None
    else:
        return None
    finally:
        events.unregister("before-send.s3.CopyObject", unique_id="bulkcopy-probe")
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
    return LeanCopier(
        f"{parts.scheme}://{netloc}",
        match.group(1),
        credentials,
        addressing_style="virtual" if virtual else "path",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        bucket=bucket,
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.handles(kwargs):
            try:
                answer = await self._lean_copy(kwargs)
            except Fallback:
                pass
            else:
                self.lean_copies += 1
                return answer
        answer = await self._client.copy_object(**kwargs)
        return dict(answer)

    async def _lean_copy(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await self._copier.copy_object(**kwargs)
            except Fallback:
                raise
            except Exception as exc:
                disposition = from_exception(exc, "CopyObject").disposition
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
