"""The botocore client with the lean path in front of it, and the lean
path's SDK-level retries."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
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


def _method(operation: str) -> str:
    """botocore's method for an operation (``CopyObject`` → ``copy_object``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class LeanClient:
    """The botocore client, with ``copy_object`` to the probed bucket (and
    the sources' ``head_object`` and ``delete_object``, a stream's reads and
    writes, the listed buckets' ``list_objects_v2``) taken by the lean path
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
        # calls that went the lean way, by operation (for tests and logs)
        self.lean: Counter[str] = Counter()

    @property
    def lean_copies(self) -> int:
        return self.lean["CopyObject"]

    @property
    def lean_heads(self) -> int:
        return self.lean["HeadObject"]

    @property
    def lean_deletes(self) -> int:
        return self.lean["DeleteObject"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def _either(
        self,
        operation: str,
        lean: bool,
        call: Callable[..., Awaitable[dict[str, Any]]],
        kwargs: dict[str, Any],
        on_fallback: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """``call`` (the lean path's) when ``lean`` says it can make this one
        and it does not hand it over (:class:`Fallback`, then ``on_fallback``);
        else botocore's."""
        if lean:
            try:
                answer = await self._lean(operation, call, kwargs)
            except Fallback:
                if on_fallback is not None:
                    on_fallback()
            else:
                self.lean[operation] += 1
                return answer
        method = getattr(self._client, _method(operation))
        return dict(await method(**kwargs))

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        can = self._requests.handles(kwargs)
        return await self._either("CopyObject", can, self._copier.copy_object, kwargs)

    async def head_object(self, **kwargs: Any) -> dict[str, Any]:
        can = self._requests.handles_head(kwargs)
        return await self._either("HeadObject", can, self._copier.head_object, kwargs)

    async def delete_object(self, **kwargs: Any) -> dict[str, Any]:
        can = self._requests.handles_delete(kwargs)
        call = self._copier.delete_object
        return await self._either("DeleteObject", can, call, kwargs)

    async def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        can = self._requests.handles_list(kwargs)
        call = self._copier.list_objects_v2
        bucket = kwargs.get("Bucket")

        def forget() -> None:
            # botocore's to answer (a redirect, another region, a page it
            # reads itself): the next pages go there at once, not twice
            self._requests.list_buckets -= {bucket}

        return await self._either("ListObjectsV2", can, call, kwargs, forget)

    async def get_object_tagging(self, **kwargs: Any) -> dict[str, Any]:
        can = self._copier.streams and self._requests.handles_tagging(kwargs)
        call = self._copier.get_object_tagging
        return await self._either("GetObjectTagging", can, call, kwargs)

    async def put_object(self, **kwargs: Any) -> dict[str, Any]:
        can = self._copier.streams and self._requests.handles_put(kwargs)
        return await self._either("PutObject", can, self._copier.put_object, kwargs)

    async def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        can = self._copier.streams and self._requests.handles_upload_part(kwargs)
        return await self._either("UploadPart", can, self._copier.upload_part, kwargs)

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
                self.lean["GetObject"] += 1
                return read
        return await read_into(self._client, sink, **kwargs)

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
