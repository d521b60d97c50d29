"""HTTP/1.1 on a raw ``asyncio.Protocol``: keep-alive, bodies, delayed answers.

One request at a time per connection, in order (pipelined requests wait in the
buffer).  An answer without a delay is written from ``data_received`` itself,
with no task; an answer with a delay (latency, copy time) or a streamed body
gets one task, so thousands of delayed copies overlap on one event loop.
Bodies are read to their end and hashed (MD5) as they arrive; only small ones
(XML requests) are kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import parse_qsl, urlsplit

from bench.fake.stats import Stats

MAX_HEAD = 64 * 1024
KEEP_BODY = 1024 * 1024  # bodies up to this size are kept (XML); larger are hashed
ZEROS = memoryview(bytes(1024 * 1024))

REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    416: "Requested Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str  # still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    version: str = "HTTP/1.1"
    body: bytes = b""  # the body when at most KEEP_BODY bytes
    body_size: int = 0
    body_md5: str = ""  # hex MD5 of the body as received


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    length: int | None = None  # Content-Length to announce, if not the body's
    zeros: int = 0  # zero bytes streamed after ``body`` (object bodies)
    head: bool = False  # headers only (answers to HEAD)
    delay: float = 0.0  # seconds to wait before answering
    close: bool = False
    done: Callable[[], None] | None = None  # once answered (or the client left)


class App(Protocol):
    def handle(self, request: Request) -> Response: ...


def internal_error() -> Response:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
        b"<Message>fakes3 failed on this request (see its stderr)</Message></Error>"
    )
    return Response(500, [("Content-Type", "application/xml")], body)


def _head_bytes(resp: Response) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}\r\n"]
    lines.extend(f"{k}: {v}\r\n" for k, v in resp.headers)
    if resp.status not in (204, 304):
        length = resp.length if resp.length is not None else len(resp.body) + resp.zeros
        lines.append(f"Content-Length: {length}\r\n")
    if resp.close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class BadRequest(Exception):
    pass


def parse_head(head: bytes) -> Request:
    """The request line and headers (everything before the blank line)."""
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    if not target.startswith("/"):  # absolute form, as sent to a proxy
        split = urlsplit(target)
        headers["host"] = split.netloc
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    path, _, qs = target.partition("?")
    query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
    return Request(method, target, path, query, headers, version)


class Connection(asyncio.Protocol):
    """One client connection."""

    def __init__(
        self,
        app: App,
        stats: Stats,
        tasks: set[asyncio.Task[None]],
        connections: set[Connection],
    ) -> None:
        self.app = app
        self.stats = stats
        self.tasks = tasks  # answers pending on every connection
        self.connections = connections  # every open connection
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.req: Request | None = None
        self.remaining = 0  # Content-Length bytes still to read
        self.chunked = False
        self.chunk_left = 0  # >0: data bytes; -1: the CRLF after data
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.kept = bytearray()
        self.busy = False  # answering (delayed or streaming)
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    # asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        self.stats.connected()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connections.discard(self)
        self.stats.disconnected()
        self.writable.set()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.req is not None and self.remaining and not self.buf:
            # the middle of a large body: hash it without buffering
            take = min(self.remaining, len(data))
            self._feed(memoryview(data)[:take])
            self.remaining -= take
            data = data[take:]
        self.buf += data
        self._advance()

    # reading -------------------------------------------------------------

    def _advance(self) -> None:
        try:
            while not self.busy and not self.closed:
                if self.req is None and not self._read_head():
                    return
                if not self._read_body():
                    return
                req = self.req
                assert req is not None
                req.body = bytes(self.kept) if req.body_size <= KEEP_BODY else b""
                req.body_md5 = self.md5.hexdigest()
                self.req = None
                self._respond(req)
        except BadRequest as exc:
            self._reject(str(exc))

    def _read_head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("request head too large")
            return False
        req = parse_head(bytes(self.buf[:end]))
        del self.buf[: end + 4]
        self.req = req
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.kept = bytearray()
        self.chunked = "chunked" in req.headers.get("transfer-encoding", "").lower()
        self.chunk_left = 0
        try:
            length = int(req.headers.get("content-length", 0))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        self.remaining = 0 if self.chunked else length
        if self.remaining < 0:
            raise BadRequest("bad Content-Length")
        wants_continue = req.headers.get("expect", "").lower() == "100-continue"
        if wants_continue and (self.chunked or self.remaining > len(self.buf)):
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _feed(self, chunk: bytes | bytearray | memoryview) -> None:
        assert self.req is not None
        self.md5.update(chunk)
        self.req.body_size += len(chunk)
        self.stats.bytes_received += len(chunk)
        if len(self.kept) <= KEEP_BODY:
            self.kept += chunk

    def _take(self, n: int) -> None:
        self._feed(self.buf[:n])
        del self.buf[:n]

    def _read_body(self) -> bool:
        if not self.chunked:
            take = min(self.remaining, len(self.buf))
            if take:
                self._take(take)
                self.remaining -= take
            return self.remaining == 0
        while True:  # Transfer-Encoding: chunked
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(self.buf))
                self._take(take)
                self.chunk_left -= take
                if self.chunk_left:
                    return False
                self.chunk_left = -1
            if self.chunk_left == -1:
                if len(self.buf) < 2:
                    return False
                del self.buf[:2]
                self.chunk_left = 0
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                return False
            try:
                size = int(bytes(self.buf[:eol]).split(b";")[0], 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:  # the last chunk: then trailer lines, then a blank line
                after = eol + 2
                if self.buf[after : after + 2] == b"\r\n":
                    del self.buf[: after + 2]
                    return True
                end = self.buf.find(b"\r\n\r\n", after)
                if end < 0:
                    return False  # re-read from the "0" line when more arrives
                del self.buf[: end + 4]
                return True
            del self.buf[: eol + 2]
            self.chunk_left = size

    # answering -----------------------------------------------------------

    def _respond(self, req: Request) -> None:
        try:
            resp = self.app.handle(req)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            resp = internal_error()
        if req.headers.get("connection", "").lower() == "close" or (
            req.version == "HTTP/1.0"
            and req.headers.get("connection", "").lower() != "keep-alive"
        ):
            resp.close = True
        if resp.delay <= 0 and not resp.zeros:
            self._send(resp)
            return
        self.busy = True
        task = asyncio.get_running_loop().create_task(self._send_later(resp))
        self.task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send(self, resp: Response) -> None:
        try:
            head = _head_bytes(resp)
            self._write(head if resp.head else head + resp.body)
        finally:
            if resp.done is not None:
                resp.done()
        if resp.close:
            self._close()

    async def _send_later(self, resp: Response) -> None:
        try:
            if resp.delay > 0:
                await asyncio.sleep(resp.delay)
            if self.closed:
                return
            self._write(_head_bytes(resp) + (b"" if resp.head else resp.body))
            left = 0 if resp.head else resp.zeros
            while left and not self.closed:
                await self.writable.wait()
                n = min(left, len(ZEROS))
                self._write(ZEROS[:n])
                left -= n
        finally:
            if resp.done is not None:
                resp.done()
            self.busy = False
            self.task = None
        if resp.close:
            self._close()
        else:
            self._advance()

    def _write(self, data: bytes | memoryview) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _reject(self, why: str) -> None:
        body = why.encode("latin-1", "replace")
        self._send(Response(400, [("Content-Type", "text/plain")], body, close=True))

    def close(self) -> None:
        """Close the connection now (the server is stopping)."""
        self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
