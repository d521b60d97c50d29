"""Build the one S3 client a process uses, from the standard AWS chain plus overrides.

Endpoint and credentials come from botocore's usual sources (profiles, the
``AWS_*`` environment including ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``,
instance and container roles); ``ClientSettings`` overrides what the user set
on the command line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ProfileNotFound
from botocore.loaders import Loader, create_loader

from engine.domain.errors import JobCannotStart, UsageError
from engine.domain.spec import ClientSettings
from engine.s3 import pages
from engine.s3.lean.answer import timestamp
from engine.s3.pages import FastParserFactory

SIGNATURE_VERSIONS = ("s3v4", "s3")


def _config(settings: ClientSettings) -> AioConfig:
    s3: dict[str, Any] = {}
    if settings.addressing_style:
        if settings.addressing_style not in ("auto", "path", "virtual"):
            raise UsageError(
                f"--addressing-style must be auto, path or virtual, "
                f"got {settings.addressing_style!r}"
            )
        s3["addressing_style"] = settings.addressing_style
    extra: dict[str, Any] = {}
    if settings.signature_version:
        if settings.signature_version not in SIGNATURE_VERSIONS:
            raise UsageError(
                f"--signature-version must be one of {', '.join(SIGNATURE_VERSIONS)}, "
                f"got {settings.signature_version!r}"
            )
        extra["signature_version"] = settings.signature_version
    return AioConfig(
        **extra,
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": settings.sdk_max_attempts},
        s3=s3 or None,
        tcp_keepalive=True,
    )


# botocore's JSON models, loaded once per process and search path: each
# session would parse S3's model and endpoint rules again (a run opens two
# clients: the listing's and the copies')
_LOADERS: dict[str | None, Loader] = {}


def _shared_loader(core: AioSession) -> Loader:
    path = core.get_config_variable("data_path")
    if path not in _LOADERS:
        _LOADERS[path] = create_loader(path)
    return _LOADERS[path]


def make_session(settings: ClientSettings) -> aioboto3.Session:
    core = AioSession()
    if settings.profile is not None:
        core.set_config_variable("profile", settings.profile)
    parsers = FastParserFactory()  # listing pages read fast (engine.s3.pages)
    parsers.set_parser_defaults(timestamp_parser=timestamp)
    core.register_component("response_parser_factory", parsers)
    pages.install(core)
    try:
        # the profile's config is read here: an unknown one is refused
        loader = _shared_loader(core)
        core.register_component("data_loader", loader)
        session = aioboto3.Session(profile_name=settings.profile, botocore_session=core)
        # each session adds boto3's data path to the loader: once is enough
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
        return session
    except ProfileNotFound as exc:
        raise UsageError(f"--profile: {exc}") from exc


@asynccontextmanager
async def open_client(settings: ClientSettings) -> AsyncIterator[Any]:
    """An S3 client for the lifetime of the block; fails clearly without credentials."""
    async with open_client_and_credentials(settings) as (client, _credentials):
        yield client


@asynccontextmanager
async def open_client_and_credentials(
    settings: ClientSettings,
) -> AsyncIterator[tuple[Any, Any]]:
    """:func:`open_client`, and the credentials (botocore's, refreshed as
    botocore refreshes them) it signs with."""
    session = make_session(settings)
    try:
        creds = await session.get_credentials()
    except BotoCoreError as exc:
        raise JobCannotStart(f"cannot load AWS credentials: {exc}") from exc
    if creds is None:
        raise JobCannotStart(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "use --profile, or run where an instance or container role is available"
        )
    kwargs: dict[str, Any] = {"config": _config(settings)}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if settings.region:
        kwargs["region_name"] = settings.region
    async with session.client("s3", **kwargs) as client:
        yield client, creds
