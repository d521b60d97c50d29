"""The S3 client a job's run uses: the job's settings, keys and headers.

Every command that calls S3 for a job (run, resume, verify) opens its client
here, so the SSE-C keys are read, and the extra headers installed, one way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from engine.copy.request import Requests
from engine.domain.spec import ClientSettings, JobSpec
from engine.domain.transfer import STREAM, Side, choose
from engine.s3.client import open_client_and_credentials
from engine.s3.headers import install_content_md5, install_headers
from engine.s3.lean import LeanClient, probe
from engine.s3.sigv4 import Credentials
from engine.s3.sse_keys import load_keys


def job_requests(spec: JobSpec) -> Requests:
    """The job's request arguments, with its SSE-C keys read now."""
    keys = load_keys(spec.object.sse_c_key, spec.object.source_sse_c_key)
    return Requests(spec.object, keys)


Refresh = Callable[[], Awaitable[bool]]


def credentials_refresher(creds: Any) -> Refresh:
    """Refresh botocore's credentials now (an ``ExpiredToken`` answer):
    refreshable ones (assumed roles, SSO, instance and container roles) ask
    their provider again; static ones cannot (``False``).

    botocore has no public way to force a refresh: this calls
    ``_protected_refresh(is_mandatory=True)``, which
    tests/unit/test_credentials_refresh.py checks on every upgrade."""

    async def refresh() -> bool:
        force = getattr(creds, "_protected_refresh", None)
        if force is None:
            return False
        await force(is_mandatory=True)
        return True

    return refresh


def credentials_getter(creds: Any) -> Any:
    """What the lean path signs with: botocore's credentials, frozen per call
    (refreshable ones are refreshed by botocore as usual)."""

    async def get() -> Credentials:
        frozen = await creds.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return get


def lean_wanted(settings: ClientSettings) -> bool:
    """Whether copies (and a stream's reads and writes, a listing's pages)
    take the lean path: ``BULKCOPY_LEAN_COPY=0/1`` when set, else the
    settings (on unless ``--no-lean-copy``)."""
    env = os.environ.get("BULKCOPY_LEAN_COPY", "").strip()
    if env in ("0", "1"):
        return env == "1"
    return settings.lean_copy


# open_job_client's shape: (spec, settings, copy_bucket=, head_buckets=,
# list_buckets=, on_credentials=) -> async context of (client, requests)
OpenJobClient = Callable[..., AbstractAsyncContextManager[tuple[Any, Requests]]]


@asynccontextmanager
async def open_job_client(
    spec: JobSpec,
    settings: ClientSettings | None = None,
    *,
    copy_bucket: str | None = None,
    head_buckets: tuple[str, ...] = (),
    list_buckets: tuple[str, ...] = (),
    on_credentials: Callable[[Refresh], None] | None = None,
) -> AsyncIterator[tuple[Any, Requests]]:
    """An S3 client for ``spec`` (``settings`` override its client settings).

    Unless the lean path is turned off (:func:`lean_wanted`), with
    ``copy_bucket`` the client's ``copy_object`` to that bucket takes the
    lean path when botocore's own request can be reproduced (see
    :func:`engine.s3.lean.probe`); so do HEADs of objects in
    ``head_buckets`` (the sources) that go to the same endpoint, and the
    ListObjectsV2 of ``list_buckets`` (a submit's listing)."""
    requests = job_requests(spec)
    settings = settings or spec.client
    async with open_client_and_credentials(settings) as (client, creds):
        if on_credentials is not None:
            on_credentials(credentials_refresher(creds))
        install_headers(client, spec.headers, requests.retention_headers())
        if settings.content_md5:
            install_content_md5(client)
        async with _lean(
            client, creds, settings, copy_bucket, head_buckets, list_buckets
        ) as lean:
            yield lean, requests


@asynccontextmanager
async def _lean(
    client: Any,
    creds: Any,
    settings: ClientSettings,
    copy_bucket: str | None,
    head_buckets: tuple[str, ...],
    list_buckets: tuple[str, ...] = (),
) -> AsyncIterator[Any]:
    """``client`` with the lean path in front where it can take the calls
    (:func:`engine.s3.lean.probe`), else ``client`` itself."""
    copier = None
    if lean_wanted(settings) and (copy_bucket or head_buckets or list_buckets):
        copier = await probe(
            client,
            copy_bucket,
            credentials_getter(creds),
            head_buckets=head_buckets,
            list_buckets=list_buckets,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_idle=settings.max_pool_connections,
        )
    if copier is None:
        yield client
        return
    lean = LeanClient(client, copier, sdk_max_attempts=settings.sdk_max_attempts)
    try:
        yield lean
    finally:
        lean.close()


@dataclass(frozen=True, slots=True)
class Source:
    """How a run reads its sources: ``client`` (the destination's own when the
    job has no source client), and whether objects are copied server-side or
    streamed (``transfer``: :data:`engine.domain.transfer.SERVER` or
    ``STREAM``)."""

    client: Any
    transfer: str

    @property
    def stream(self) -> bool:
        return self.transfer == STREAM


async def client_side(client: Any) -> Side:
    """The endpoint a botocore client resolved to, and the access key it signs
    with (``None`` when it cannot tell: then it counts as another identity)."""
    endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    try:
        creds = client._request_signer._credentials
        frozen = await creds.get_frozen_credentials()
        key: str | None = frozen.access_key
    except Exception:  # not botocore's (a test's), or no credentials to show
        key = None
    return Side(endpoint, key)


@asynccontextmanager
async def open_source(
    spec: JobSpec,
    destination: Any,
    settings: ClientSettings | None = None,
    *,
    on_credentials: Callable[[Refresh], None] | None = None,
) -> AsyncIterator[Source]:
    """The client a run reads its sources with, beside ``destination`` (the
    job's client): a second one when the job has source client settings
    (``settings`` override them), and the transfer ``--transfer`` comes to
    with the two (:func:`engine.domain.transfer.choose`).

    The source client gets none of the job's ``--header`` headers: they are
    for the destination's service."""
    settings = settings or spec.source_client
    mode = spec.copy.transfer
    if settings is None:
        transfer = choose(mode, None, Side("", None))
        yield Source(destination, transfer)
        return
    async with open_client_and_credentials(settings) as (client, creds):
        if on_credentials is not None:
            on_credentials(credentials_refresher(creds))
        if settings.content_md5:
            install_content_md5(client)
        src, dst = await client_side(client), await client_side(destination)
        transfer = choose(mode, src, dst)
        # a stream's reads (HEAD, GET, tags) take the lean path where they can
        reads = spec.source_buckets if transfer == STREAM else ()
        async with _lean(client, creds, settings, None, reads) as reader:
            yield Source(reader, transfer)


@asynccontextmanager
async def open_run_clients(
    open_client: OpenJobClient,
    spec: JobSpec,
    settings: tuple[ClientSettings | None, ClientSettings | None],
    dst_bucket: str,
    on_credentials: Callable[[Refresh], None],
) -> AsyncIterator[tuple[Any, Requests, Source]]:
    """A run's clients: the job's (made by ``open_client``, lean where it
    can), its requests, and how it reads the sources (:func:`open_source`);
    ``settings``: overrides of the job's client settings and source client
    settings."""
    async with (
        open_client(
            spec,
            settings[0],
            copy_bucket=dst_bucket,
            head_buckets=(*spec.source_buckets, dst_bucket),
            on_credentials=on_credentials,
        ) as (client, requests),
        open_source(spec, client, settings[1], on_credentials=on_credentials) as src,
    ):
        yield client, requests, src


def reading_client(
    spec: JobSpec,
    settings: ClientSettings | None = None,
    source: ClientSettings | None = None,
    *,
    list_buckets: tuple[str, ...] = (),
) -> AbstractAsyncContextManager[tuple[Any, Requests]]:
    """The client a submit reads listings and S3 manifests with: the source
    client (``source`` overrides the job's) when the job has one, else the
    job's (``settings`` override its settings); the listings of
    ``list_buckets`` on the lean path where it can take them."""
    source = source or spec.source_client
    if source is None:
        return open_job_client(spec, settings, list_buckets=list_buckets)
    return open_job_client(replace(spec, headers={}), source, list_buckets=list_buckets)


class SharedRefresh:
    """Refresh the credentials once for every copy that saw ``ExpiredToken``
    in the same moment (they share one refresh); ``count`` says how many."""

    def __init__(self, on_refresh: Callable[[], None]) -> None:
        self._on_refresh = on_refresh
        self._refreshers: list[Callable[[], Awaitable[bool]]] = []
        self._refreshing: asyncio.Future[bool] | None = None
        self.count = 0

    def keep(self, refresh: Callable[[], Awaitable[bool]]) -> None:
        """The refresh of a client just opened (``on_credentials``): the
        destination's, and the source's when it has its own."""
        self._refreshers.append(refresh)

    async def _refresh_all(self) -> bool:
        done = [await refresh() for refresh in self._refreshers]
        return any(done)

    async def __call__(self) -> bool:
        """``True`` when fresh credentials are in place."""
        if not self._refreshers:
            return False
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh_all())
            self.count += 1
            self._on_refresh()
        try:
            return await asyncio.shield(self._refreshing)
        except Exception:  # the provider failed: the answer counts as usual
            return False
