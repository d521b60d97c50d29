"""The botocore client with the lean path in front of it, and the lean
path's SDK-level retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from engine.domain.backoff import RetryPolicy
from engine.s3.bodies import read_into
from engine.s3.call import from_exception
from engine.s3.lean.answer import Fallback
from engine.s3.lean.copier import LeanCopier

T = TypeVar("T")


def _same(answer: Any) -> dict[str, Any]:
    return answer  # type: ignore[no-any-return]


def _first(read: tuple[dict[str, Any], int]) -> dict[str, Any]:
    return read[0]


class LeanClient:
    """The botocore client, with ``copy_object`` to the probed bucket (and
    the sources' ``head_object`` and ``delete_object``) taken by the lean path
    whenever it can; everything else is the client's.

    Like botocore's standard retry mode, a lean call is tried up to
    ``sdk_max_attempts`` times on a retryable answer, with botocore's backoff
    (full jitter, 1 s base, 20 s cap), so both paths make the same number of
    requests before the task-level retry sees a failure.  Each failure is
    classified once, the one way (:func:`engine.s3.call.from_exception`), and
    a lean call that fails for good raises that
    :class:`~engine.domain.errors.S3Error` (``sdk_retries``: the requests it
    made more than once), which :func:`engine.s3.call.invoke` passes on as
    it is."""

    def __init__(
        self, client: Any, copier: LeanCopier, *, sdk_max_attempts: int = 1
    ) -> None:
        self._client = client
        self._copier = copier
        self._requests = copier.requests
        self._sdk = RetryPolicy(
            max_attempts=max(1, sdk_max_attempts),
            base_delay=1.0,
            throttle_base_delay=1.0,
            max_delay=20.0,
        )
        self.lean_copies = 0  # how many copies went the lean way (for tests)
        self.lean_heads = 0
        self.lean_deletes = 0
        self.lean_gets = 0
        self.lean_puts = 0
        self.lean_parts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._requests.handles(kwargs):
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
        if self._requests.handles_head(kwargs):
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
        if self._requests.handles_delete(kwargs):
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

    async def get_object_into(
        self, sink: bytearray, **kwargs: Any
    ) -> tuple[dict[str, Any], int]:
        """GetObject, the body into ``sink`` (:func:`engine.s3.bodies.read_into`)."""
        if self._copier.streams and self._requests.handles_get(kwargs):

            async def get(**kw: Any) -> tuple[dict[str, Any], int]:
                return await self._copier.get_object_into(sink, **kw)

            try:
                read = await self._lean("GetObject", get, kwargs, answer_of=_first)
            except Fallback:
                pass
            else:
                self.lean_gets += 1
                return read
        return await read_into(self._client, sink, **kwargs)

    async def get_object_tagging(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.streams and self._requests.handles_tagging(kwargs):
            try:
                return await self._lean(
                    "GetObjectTagging", self._copier.get_object_tagging, kwargs
                )
            except Fallback:
                pass
        answer = await self._client.get_object_tagging(**kwargs)
        return dict(answer)

    async def put_object(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.streams and self._requests.handles_put(kwargs):
            try:
                answer = await self._lean("PutObject", self._copier.put_object, kwargs)
            except Fallback:
                pass
            else:
                self.lean_puts += 1
                return answer
        answer = await self._client.put_object(**kwargs)
        return dict(answer)

    async def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        if self._copier.streams and self._requests.handles_upload_part(kwargs):
            try:
                answer = await self._lean(
                    "UploadPart", self._copier.upload_part, kwargs
                )
            except Fallback:
                pass
            else:
                self.lean_parts += 1
                return answer
        answer = await self._client.upload_part(**kwargs)
        return dict(answer)

    async def _lean(
        self,
        operation: str,
        call: Callable[..., Awaitable[T]],
        kwargs: dict[str, Any],
        *,
        answer_of: Callable[[T], dict[str, Any]] = _same,
    ) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await call(**kwargs)
            except Fallback:
                raise
            except Exception as exc:
                err = from_exception(exc, operation)  # classified here, once
                if not self._sdk.should_retry(attempt, err.disposition):
                    if err.http_status is not None:  # an answer, sent this often
                        err.sdk_retries = attempt - 1
                    raise err from exc
                await asyncio.sleep(self._sdk.delay(attempt, err.disposition))
                continue
            answer_of(answer)["ResponseMetadata"]["RetryAttempts"] = attempt - 1
            return answer

    def close(self) -> None:
        self._copier.close()
