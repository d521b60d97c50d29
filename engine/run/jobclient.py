"""The S3 client a job's run uses: the job's settings, keys and headers.

Every command that calls S3 for a job (run, resume, verify) opens its client
here, so the SSE-C keys are read, and the extra headers installed, one way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from engine.copy.request import Requests
from engine.domain.spec import ClientSettings, JobSpec
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
    """Whether copies take the lean path: ``BULKCOPY_LEAN_COPY=0/1`` when
    set, else the settings (on unless ``--no-lean-copy``)."""
    env = os.environ.get("BULKCOPY_LEAN_COPY", "").strip()
    if env in ("0", "1"):
        return env == "1"
    return settings.lean_copy


# open_job_client's shape: (spec, settings, copy_bucket=, head_buckets=,
# on_credentials=) -> async context of (client, requests)
OpenJobClient = Callable[..., AbstractAsyncContextManager[tuple[Any, Requests]]]


@asynccontextmanager
async def open_job_client(
    spec: JobSpec,
    settings: ClientSettings | None = None,
    *,
    copy_bucket: str | None = None,
    head_buckets: tuple[str, ...] = (),
    on_credentials: Callable[[Refresh], None] | None = None,
) -> AsyncIterator[tuple[Any, Requests]]:
    """An S3 client for ``spec`` (``settings`` override its client settings).

    Unless the lean path is turned off (:func:`lean_wanted`), with
    ``copy_bucket`` the client's ``copy_object`` to that bucket takes the
    lean path when botocore's own request can be reproduced (see
    :func:`engine.s3.lean.probe`); so do HEADs of objects in
    ``head_buckets`` (the sources) that go to the same endpoint."""
    requests = job_requests(spec)
    settings = settings or spec.client
    async with open_client_and_credentials(settings) as (client, creds):
        if on_credentials is not None:
            on_credentials(credentials_refresher(creds))
        install_headers(client, spec.headers, requests.retention_headers())
        if settings.content_md5:
            install_content_md5(client)
        fast = lean_wanted(settings)
        copier = None
        if fast and copy_bucket:
            copier = await probe(
                client,
                copy_bucket,
                credentials_getter(creds),
                head_buckets=head_buckets,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
                max_idle=settings.max_pool_connections,
            )
        if copier is None:
            yield client, requests
            return
        lean = LeanClient(client, copier, sdk_max_attempts=settings.sdk_max_attempts)
        try:
            yield lean, requests
        finally:
            lean.close()


class SharedRefresh:
    """Refresh the credentials once for every copy that saw ``ExpiredToken``
    in the same moment (they share one refresh); ``count`` says how many."""

    def __init__(self, on_refresh: Callable[[], None]) -> None:
        self._on_refresh = on_refresh
        self._refresher: Callable[[], Awaitable[bool]] | None = None
        self._refreshing: asyncio.Future[bool] | None = None
        self.count = 0

    def keep(self, refresh: Callable[[], Awaitable[bool]]) -> None:
        """The refresh of the client just opened (``on_credentials``)."""
        self._refresher = refresh

    async def __call__(self) -> bool:
        """``True`` when fresh credentials are in place."""
        if self._refresher is None:
            return False
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresher())
            self.count += 1
            self._on_refresh()
        try:
            return await asyncio.shield(self._refreshing)
        except Exception:  # the provider failed: the answer counts as usual
            return False
