"""Fault injection through botocore's ``before-send`` hook.

A handler registered on ``before-send.s3.<Operation>`` may return a response
instead of letting the request go out; the client then parses it as if the
server had sent it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse
from botocore.awsrequest import HTTPHeaders

EMBEDDED_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code>"
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"<RequestId>FAKE</RequestId></Error>"
)
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"</Error>"
)
NO_ETAG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<CopyObjectResult><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
    b"</CopyObjectResult>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, *_: Any) -> bytes:
        return self._body


def response(url: str, status: int, body: bytes) -> AioAWSResponse:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/xml"
    headers["Content-Length"] = str(len(body))
    return AioAWSResponse(url, status, headers, _Raw(body))


class Injector:
    """Answers chosen requests with a canned fault; counts what it saw.

    ``decide(key, n)`` gets the request's key and how many times that key has
    been seen (1-based) and returns ``(status, body)`` to fake, or ``None``.
    """

    def __init__(
        self, operation: str, decide: Callable[[str, int], tuple[int, bytes] | None]
    ) -> None:
        self.operation = operation
        self.decide = decide
        self.seen: Counter[str] = Counter()
        self.injected = 0

    def install(self, client: Any) -> None:
        client.meta.events.register(f"before-send.s3.{self.operation}", self._handler)

    def _handler(self, request: Any, **_: Any) -> AioAWSResponse | None:
        key = request.url.split("?", 1)[0].rsplit("/", 1)[-1]
        self.seen[key] += 1
        fault = self.decide(key, self.seen[key])
        if fault is None:
            return None
        self.injected += 1
        return response(request.url, *fault)


def storm(
    ratio: float, fault: tuple[int, bytes], seed: int = 1
) -> Callable[[str, int], Any]:
    """Fault a random ``ratio`` of all requests."""
    rng = random.Random(seed)
    return lambda _key, _n: fault if rng.random() < ratio else None
