"""The S3 client a job's run uses: the job's settings, keys and headers.

Every command that calls S3 for a job (run, resume, verify) opens its client
here, so the SSE-C keys are read, and the extra headers installed, one way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from engine.copy.request import Requests
from engine.s3.client import ClientSettings, open_client
from engine.s3.headers import install_content_md5, install_headers
from engine.secrets import load_keys
from engine.spec import JobSpec


def job_requests(spec: JobSpec) -> Requests:
    """The job's request arguments, with its SSE-C keys read now."""
    keys = load_keys(spec.object.sse_c_key, spec.object.source_sse_c_key)
    return Requests(spec.object, keys)


@asynccontextmanager
async def open_job_client(
    spec: JobSpec, settings: ClientSettings | None = None
) -> AsyncIterator[tuple[Any, Requests]]:
    """An S3 client for ``spec`` (``settings`` override its client settings)."""
    requests = job_requests(spec)
    settings = settings or spec.client
    async with open_client(settings) as client:
        install_headers(client, spec.headers, requests.retention_headers())
        if settings.content_md5:
            install_content_md5(client)
        yield client, requests
