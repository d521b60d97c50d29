"""The lean calls themselves: a request built (:mod:`.request`), sent over a
kept-alive connection (:mod:`engine.s3.wire`), answered (:mod:`.answer`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from engine.s3.lean.answer import (
    COPY_OBJECT,
    DELETE_OBJECT,
    GET_OBJECT_TAGGING,
    HeadParser,
    ListParser,
    Operation,
    answer,
    get_object,
    head_object,
    list_objects_v2,
    put_object,
)
from engine.s3.lean.request import LeanRequests
from engine.s3.sigv4 import UNSIGNED_PAYLOAD, Credentials
from engine.s3.wire import Pool, Response, WireError

GetCredentials = Callable[[], Awaitable[Credentials]]


class LeanCopier:
    """CopyObject (and a source's HeadObject and DeleteObject, a stream's
    GetObject, GetObjectTagging, PutObject and UploadPart, a listing's
    ListObjectsV2) for one endpoint, region and addressing style;
    ``requests`` says which calls it can make as botocore would."""

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
        head_buckets: Iterable[str] = (),
        head_parser: HeadParser | None = None,
        get_parser: HeadParser | None = None,
        put_parser: HeadParser | None = None,
        part_parser: HeadParser | None = None,
        list_parser: ListParser | None = None,
        list_buckets: Iterable[str] = (),
        max_idle: int = 256,
    ) -> None:
        self.max_idle = max_idle  # keep-alive connections kept per host
        self.requests = LeanRequests(
            endpoint_url,
            region,
            addressing_style=addressing_style,
            bucket=bucket,
            # HEADs (and deletes) of objects in these buckets, when a parser
            # is given
            head_buckets=head_buckets if head_parser else (),
            # the ListObjectsV2 of these (a submit's listing), with a parser
            list_buckets=list_buckets if list_parser else (),
        )
        self.credentials = credentials
        self._head: Operation | None = head_object(head_parser) if head_parser else None
        # GetObject and GetObjectTagging of the sources (where HEADs go), and
        # PutObject to ``bucket``, when botocore's model for them is given
        self._get: Operation | None = get_object(get_parser) if get_parser else None
        self._put: Operation | None = put_object(put_parser) if put_parser else None
        self._part: Operation | None = (
            Operation("UploadPart", part_parser) if part_parser else None
        )
        self.streams = None not in (self._get, self._put, self._part)
        self._list = list_objects_v2(list_parser) if list_parser else None
        self._timeouts = (connect_timeout, read_timeout)
        self._pools: dict[str, Pool] = {}

    def _pool(self, host: str) -> Pool:
        """Connections to ``host`` (the endpoint, or ``bucket.endpoint``)."""
        pool = self._pools.get(host)
        if pool is None:
            port = self.requests.port
            name = host.rsplit(":", 1)[0] if host.endswith(f":{port}") else host
            connect, read = self._timeouts
            pool = self._pools[host] = Pool(
                name,
                port,
                tls=self.requests.tls,
                server_hostname=name,
                connect_timeout=connect,
                read_timeout=read,
                max_idle=self.max_idle,
            )
        return pool

    async def _exchange(
        self,
        host: str,
        raw: bytes,
        head: bool = False,
        *,
        body: bytes | bytearray | memoryview = b"",
        sink: bytearray | None = None,
    ) -> Response:
        """Send ``raw`` (then ``body``); a failed connection is botocore's
        error for it."""
        try:
            return await self._pool(host).request(raw, head=head, body=body, sink=sink)
        except WireError as exc:
            if exc.timeout:
                raise ReadTimeoutError(endpoint_url=f"http://{host}") from exc
            raise EndpointConnectionError(
                endpoint_url=f"http://{host}", error=exc
            ) from exc

    async def copy_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``copy_object``: the same answer or the same error."""
        creds = await self.credentials()
        host, raw = self.requests.copy_object(kwargs, creds, time.time())
        return answer(COPY_OBJECT, await self._exchange(host, raw))

    async def head_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``head_object``: the same answer or the same error."""
        assert self._head is not None
        creds = await self.credentials()
        host, raw = self.requests.head_object(kwargs, creds, time.time())
        return answer(self._head, await self._exchange(host, raw, head=True))

    async def delete_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``delete_object``: the same answer or the same error."""
        creds = await self.credentials()
        host, raw = self.requests.delete_object(kwargs, creds, time.time())
        return answer(DELETE_OBJECT, await self._exchange(host, raw))

    async def get_object_into(
        self, sink: bytearray, **kwargs: Any
    ) -> tuple[dict[str, Any], int]:
        """botocore's ``get_object`` answer (without ``Body``) or its error,
        the body written into ``sink``; also how many bytes the body had
        (more than ``len(sink)``: it did not fit, and ``sink`` holds none)."""
        assert self._get is not None
        creds = await self.credentials()
        host, raw = self.requests.get_object(kwargs, creds, time.time())
        response = await self._exchange(host, raw, sink=sink)
        got = answer(self._get, response)
        if response.into_sink >= 0:
            return got, response.into_sink
        body = response.body  # chunked (cut short when too long for the sink)
        if len(body) <= len(sink):
            sink[: len(body)] = body
        return got, len(body)

    async def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``list_objects_v2``: the same page or the same error,
        for about a tenth less CPU a page (most of a page's CPU is reading
        its XML, the same way on both paths)."""
        assert self._list is not None
        creds = await self.credentials()
        host, raw = self.requests.list_objects_v2(kwargs, creds, time.time())
        return answer(self._list, await self._exchange(host, raw))

    async def get_object_tagging(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``get_object_tagging``: the same answer or error."""
        creds = await self.credentials()
        host, raw = self.requests.get_object_tagging(kwargs, creds, time.time())
        return answer(GET_OBJECT_TAGGING, await self._exchange(host, raw))

    async def put_object(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``put_object`` of a body in memory: the same answer or
        error (:meth:`_send_body`)."""
        assert self._put is not None
        return await self._send_body(self._put, self.requests.put_object, kwargs)

    async def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        """botocore's ``upload_part`` of a body in memory (:meth:`_send_body`)."""
        assert self._part is not None
        return await self._send_body(self._part, self.requests.upload_part, kwargs)

    async def _send_body(
        self, op: Operation, build: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """A body sent with its MD5 and checksum, both signed headers, and
        ``UNSIGNED-PAYLOAD`` in the signature: what botocore sends over TLS,
        and over plain HTTP when told not to sign payloads
        (``payload_signing_enabled``), sparing a SHA-256 pass over every
        byte; the signed MD5 still binds the body to the signature."""
        creds = await self.credentials()
        host, raw = build(kwargs, creds, time.time(), UNSIGNED_PAYLOAD)
        return answer(op, await self._exchange(host, raw, body=kwargs["Body"]))

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
