"""The one path every S3 call takes: invoke, convert library errors, classify.

``invoke`` returns the parsed response or raises :class:`~engine.domain.errors.S3Error`
with a code, message, HTTP status and disposition.  Nothing else in bulkcopy
catches botocore or aiohttp exceptions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    MissingDependencyException,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from engine.domain import codes
from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition, classify, name_status_code
from engine.domain.errors import S3Error
from engine.domain.etag import normalise_answer

S3Call = Callable[..., Awaitable[dict[str, Any]]]


class Pacer(Protocol):
    """What paces the calls of a run (the run's governor): a slot before each
    call, and how the call ended after it (``ok``, ``throttled``, ``error``)."""

    def try_acquire(self) -> bool: ...

    async def acquire(self) -> None: ...

    def release(self, outcome: str = "ok") -> None: ...


# the pacer of the run this task belongs to (set by the worker; None: no limit)
PACER: ContextVar[Pacer | None] = ContextVar("bulkcopy_pacer", default=None)

# told of every request's end inside a run that asked for it (metrics):
# (operation, "ok" or the error code, seconds)
ON_REQUEST: ContextVar[Callable[[str, str, float], None] | None] = ContextVar(
    "bulkcopy_on_request", default=None
)


def from_client_error(exc: ClientError, operation: str) -> S3Error:
    """Convert a botocore ``ClientError`` (including errors embedded in a 200)."""
    err = exc.response.get("Error", {}) or {}
    meta = exc.response.get("ResponseMetadata", {}) or {}
    status = meta.get("HTTPStatusCode")
    code = str(err.get("Code") or (status if status is not None else "Unknown"))
    code = name_status_code(code, status)
    message = str(err.get("Message") or exc)
    return S3Error(
        code,
        message,
        status,
        classify(code, status),
        operation,
        sdk_retries=int(meta.get("RetryAttempts") or 0),
    )


def from_exception(exc: BaseException, operation: str) -> S3Error:
    """Convert any other failure of a call into an ``S3Error``."""
    if isinstance(exc, ClientError):
        return from_client_error(exc, operation)
    if isinstance(exc, ReadTimeoutError | asyncio.TimeoutError | TimeoutError):
        return S3Error(
            "ReadTimeout", str(exc) or "timed out", None, Disposition.RETRY, operation
        )
    if isinstance(
        exc,
        BotoConnectionError | HTTPClientError | aiohttp.ClientError | ConnectionError,
    ):
        return S3Error(
            "ConnectionError",
            str(exc) or type(exc).__name__,
            None,
            Disposition.RETRY,
            operation,
        )
    if isinstance(exc, FlexibleChecksumError):  # a body unlike its checksum
        return S3Error(
            codes.CHECKSUM_MISMATCH, str(exc), None, Disposition.RETRY, operation
        )
    if isinstance(exc, MissingDependencyException):  # CRC32C/CRC64NVME: no CRT
        return S3Error(
            "MissingDependency", str(exc), None, Disposition.FATAL, operation
        )
    if isinstance(exc, ResponseStreamingError | IncompleteReadError):
        return S3Error("IncompleteBody", str(exc), None, Disposition.RETRY, operation)
    if isinstance(exc, NoCredentialsError):
        return S3Error("NoCredentials", str(exc), None, Disposition.FATAL, operation)
    if isinstance(exc, ParamValidationError):
        return S3Error("ParamValidation", str(exc), None, Disposition.FATAL, operation)
    if isinstance(exc, BotoCoreError):
        return S3Error(
            "ResponseParseError", str(exc), None, Disposition.RETRY, operation
        )
    raise exc


async def invoke(operation: str, fn: S3Call, **kwargs: Any) -> dict[str, Any]:
    """Make one S3 call; every failure comes out as an ``S3Error``.

    Inside a run the call first takes a slot of the run's
    pacer (:data:`PACER`, the run's governor: adaptive concurrency, ``--max-rps``)
    and tells it how the call ended."""
    governor = PACER.get()
    if governor is None:
        return await _invoke(operation, fn, kwargs)
    if not governor.try_acquire():
        await governor.acquire()
    outcome = "error"
    code = "error"
    seen = ON_REQUEST.get()
    started = time.monotonic() if seen is not None else 0.0
    try:
        answer = await _invoke(operation, fn, kwargs)
    except S3Error as err:
        code = err.code
        if err.disposition is Disposition.THROTTLE:
            outcome = "throttled"
        raise
    else:
        outcome = code = "ok"
        return answer
    finally:
        governor.release(outcome)
        if seen is not None:
            seen(operation, code, time.monotonic() - started)


async def _invoke(operation: str, fn: S3Call, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = await fn(**kwargs)
    except asyncio.CancelledError:
        raise
    except S3Error:
        raise
    except Exception as exc:
        raise from_exception(exc, operation) from exc
    # one ETag value type, whatever the store sent (Ceph RGW leaves some bare)
    return normalise_answer(answer) if isinstance(answer, dict) else answer


async def invoke_retrying(
    operation: str,
    fn: S3Call,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`invoke`, tried again after a retryable failure (for calls that
    are not a task's: listing pages, manifest downloads)."""
    policy = policy or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await invoke(operation, fn, **kwargs)
        except S3Error as err:
            if not policy.should_retry(attempt, err.disposition):
                raise
            await asyncio.sleep(policy.delay(attempt, err.disposition))
