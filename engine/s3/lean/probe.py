"""Learning from botocore how it sends a copy, once: the lean path copies
exactly what botocore would have sent, or stays out."""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from engine.s3.lean.answer import HeadParser, ListParser
from engine.s3.lean.copier import GetCredentials, LeanCopier
from engine.s3.sigv4 import EMPTY_SHA256

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


# the query of a ListObjectsV2 of a whole bucket, as botocore sends it
_LIST_QUERY = "list-type=2&encoding-type=url"


def _learn(
    request: Any, bucket: str, *, listing: bool = False
) -> tuple[str, str, bool] | None:
    """``(endpoint URL, signing region, virtual)`` of a probe request that
    the lean path can reproduce, else ``None`` (``listing``: a
    ListObjectsV2 of ``bucket``, else a call on its object ``PROBE_KEY``)."""
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
    path, virtual_path = f"/{bucket}/{PROBE_KEY}", f"/{PROBE_KEY}"
    if listing:
        path, virtual_path = f"/{bucket}", "/"
    if parts.query != (_LIST_QUERY if listing else "") or parts.path not in (
        path,
        virtual_path,
    ):
        return None
    if _needs_botocore_transport(parts.scheme, parts.hostname or ""):
        return None
    virtual = parts.path == virtual_path
    netloc = parts.netloc
    if virtual:
        if not netloc.startswith(f"{bucket}."):
            return None
        netloc = netloc[len(bucket) + 1 :]
    return f"{parts.scheme}://{netloc}", match.group(1), virtual


async def probe(
    client: Any,
    bucket: str | None,
    credentials: GetCredentials,
    *,
    head_buckets: Iterable[str] = (),
    list_buckets: Iterable[str] = (),
    connect_timeout: float = 10.0,
    read_timeout: float = 300.0,
    max_idle: int = 256,
) -> LeanCopier | None:
    """A :class:`LeanCopier` sending CopyObject (and a streamed copy's
    PutObject) to ``bucket`` exactly as ``client`` would, or ``None`` when the
    lean path cannot (another signature version, extra headers installed on
    the client, a path prefix, …).

    botocore builds one CopyObject to ``bucket`` (endpoint rules, addressing
    style, signing region, handlers) and is stopped before sending it; what it
    would have sent is what the lean path copies.  The same for a HeadObject
    of each of ``head_buckets`` (the sources): those botocore would send to
    the same endpoint, region and addressing style are HEADed (read, their
    tags read, deleted) the lean way too, answered as botocore's service
    model says (:class:`HeadParser`).  With no ``bucket`` (a client that only
    reads the sources, on another service) the first source's HeadObject is
    what is learnt from.  So for the ListObjectsV2 of each of
    ``list_buckets`` (a submit's listing: with no ``bucket`` nor sources, the
    first is learnt from)."""
    sources = list(dict.fromkeys(head_buckets))[:MAX_HEAD_PROBES]
    lists = list(dict.fromkeys(list_buckets))[:MAX_HEAD_PROBES]
    if bucket is not None:
        anchor = await _capture(
            client,
            "CopyObject",
            lambda: client.copy_object(
                Bucket=bucket,
                Key=PROBE_KEY,
                CopySource={"Bucket": bucket, "Key": PROBE_KEY},
            ),
        )
        learnt = _learn(anchor, bucket)
    elif sources:
        learnt = await _learn_head(client, sources[0])
    elif lists:
        learnt = await _learn_list(client, lists[0])
    else:
        return None
    if learnt is None:
        return None
    endpoint, region, virtual = learnt
    heads = {b for b in sources if await _learn_head(client, b) == learnt}
    listed = {b for b in lists if await _learn_list(client, b) == learnt}
    model = client.meta.service_model
    return LeanCopier(
        endpoint,
        region,
        credentials,
        addressing_style="virtual" if virtual else "path",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        bucket=bucket,
        head_buckets=heads,
        head_parser=_parser(model, "HeadObject"),
        get_parser=_parser(model, "GetObject"),
        put_parser=_parser(model, "PutObject"),
        part_parser=_parser(model, "UploadPart"),
        # only where a listing was learnt (the model is read for nothing else)
        list_parser=(
            ListParser(model.operation_model("ListObjectsV2").output_shape)
            if listed
            else None
        ),
        list_buckets=listed,
        max_idle=max_idle,
    )


async def _learn_head(client: Any, bucket: str) -> tuple[str, str, bool] | None:
    head = await _capture(
        client,
        "HeadObject",
        lambda: client.head_object(Bucket=bucket, Key=PROBE_KEY),
    )
    return _learn(head, bucket)


async def _learn_list(client: Any, bucket: str) -> tuple[str, str, bool] | None:
    listing = await _capture(
        client, "ListObjectsV2", lambda: client.list_objects_v2(Bucket=bucket)
    )
    return _learn(listing, bucket, listing=True)


def _parser(model: Any, operation: str) -> HeadParser:
    return HeadParser(model.operation_model(operation).output_shape)
