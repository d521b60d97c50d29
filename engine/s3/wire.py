"""A small HTTP/1.1 client for the lean S3 request path: keep-alive
connections on ``asyncio.Protocol``, bodies by Content-Length or chunked.

It does one thing: send a request with an empty or small body and read the
whole answer; a successful answer's body may go straight into a buffer the
caller holds (``sink``: a streamed GetObject's part, copied once).  No
redirects, no proxies, no compression, no ``Expect``; the
caller (``engine.s3.lean``) falls back to botocore for anything else.  The
parsing is split from the I/O (:class:`ResponseParser` is fed bytes and says
when a response is complete) so it can be tested on its own.

Connection-level failures raise :class:`WireError` with ``sent`` telling
whether the request may have reached the server (a reset before any byte of
the answer on a reused connection is retried once here, as every HTTP client
does for idle keep-alive connections the server closed).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast


class WireError(Exception):
    """The connection failed: refused, reset, timed out or spoke nonsense.

    ``sent``: the request may have reached the server (retrying is then only
    safe for idempotent requests, which S3 copies are)."""

    def __init__(self, message: str, *, sent: bool, timeout: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.timeout = timeout


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    # lower-case names; a repeated header keeps its values joined by ", "
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    keep_alive: bool = True
    # every header as sent: (name as the server spelt it, value)
    raw_headers: list[tuple[str, str]] = field(default_factory=list)
    # bytes of the body written into the caller's ``sink`` (-1: none was, the
    # body is in ``body``); a Content-Length larger than the sink: that length,
    # with nothing read (the connection is not reused)
    into_sink: int = -1


class ResponseParser:
    """Incremental HTTP/1.1 response parser: :meth:`feed` bytes until it
    returns a :class:`Response`.  ``head_only`` (a HEAD request): no body.
    ``sink``: a successful (2xx) answer's body is written into it from its
    first byte; one longer than the sink is not read at all (a chunked one is
    cut short); an error's body is kept in ``body`` as usual."""

    MAX_HEAD = 64 * 1024

    def __init__(self, head_only: bool = False, sink: bytearray | None = None) -> None:
        self.head_only = head_only
        self.sink = sink
        self._into = False  # this body goes into the sink
        self._at = 0  # bytes of it written there
        self._buf = bytearray()
        self._response: Response | None = None
        self._length: int | None = None  # body bytes expected (None: chunked/close)
        self._chunked = False
        self._until_close = False
        self._body = bytearray()
        self._chunk_left = -1  # -1: reading a chunk size line
        self._trailers = False
        self.started = False  # any byte of the answer arrived

    def feed(self, data: bytes) -> Response | None:
        self.started = True
        if self._into:
            return self._sink_step(data)
        self._buf += data
        if self._response is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self.MAX_HEAD:
                    raise WireError("response head too large", sent=True)
                return None
            self._head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
            if self._into:
                rest = bytes(self._buf)
                self._buf.clear()
                return self._sink_step(rest)
        return self._body_step()

    def _sink_step(self, data: bytes) -> Response | None:
        """Body bytes into the sink, up to the Content-Length."""
        assert self.sink is not None
        assert self._length is not None
        take = min(len(data), self._length - self._at)
        if take:
            chunk = data if take == len(data) else memoryview(data)[:take]
            self.sink[self._at : self._at + take] = chunk
            self._at += take
        if self._at < self._length:
            return None
        self._buf += data[take:]  # bytes past the answer: not reused
        response = self._finish()
        if response.into_sink < 0:
            response.into_sink = self._at
        return response

    def eof(self) -> Response:
        """The server closed the connection: the response, if it is complete."""
        if self._response is not None and self._until_close:
            self._body += self._buf
            self._buf.clear()
            return self._finish(keep_alive=False)
        raise WireError("connection closed before the response was complete", sent=True)

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise WireError(f"not an HTTP/1.x response: {lines[0][:80]!r}", sent=True)
        try:
            status = int(parts[1])
        except ValueError:
            raise WireError(f"bad status line: {lines[0][:80]!r}", sent=True) from None
        headers: dict[str, str] = {}
        raw: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name, value = name.strip(), value.strip()
            raw.append((name, value))
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        keep = (
            headers.get("connection", "").lower() != "close" and parts[0] != "HTTP/1.0"
        )
        self._response = Response(
            status, parts[2] if len(parts) > 2 else "", headers, raw_headers=raw
        )
        self._response.keep_alive = keep
        if self.head_only or status in (204, 304) or 100 <= status < 200:
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise WireError("bad Content-Length", sent=True) from None
            if self.sink is not None and 200 <= status < 300:
                self._into = True
                if self._length > len(self.sink):  # not read: the caller
                    self._length = 0  # fails it, the connection is dropped
                    self._response.keep_alive = False
                    self._response.into_sink = int(headers["content-length"])
        else:
            self._until_close = True

    def _body_step(self) -> Response | None:
        if self._length is not None:
            if len(self._buf) < self._length:
                return None
            self._body += self._buf[: self._length]
            del self._buf[: self._length]
            return self._finish()
        if self._chunked:
            return self._chunk_step()
        if self._over_sink(len(self._buf)):
            self._body += self._buf
            self._buf.clear()
            return self._finish(keep_alive=False)  # longer than asked: stop
        return None  # until close

    def _over_sink(self, size: int) -> bool:
        """A successful body already longer than the caller's sink: read no
        more of it (the caller fails it as longer than asked)."""
        response = self._response
        return (
            self.sink is not None
            and response is not None
            and 200 <= response.status < 300
            and size > len(self.sink)
        )

    def _chunk_step(self) -> Response | None:
        while True:
            if self._trailers:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    return None
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                if not line:
                    return self._finish()
                continue
            if self._chunk_left < 0:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    return None
                size = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                del self._buf[: end + 2]
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise WireError("bad chunk size", sent=True) from None
                if self._chunk_left == 0:
                    self._trailers = True
                continue
            if len(self._buf) < self._chunk_left + 2:
                return None
            self._body += self._buf[: self._chunk_left]
            del self._buf[: self._chunk_left + 2]
            self._chunk_left = -1
            if self._over_sink(len(self._body)):
                return self._finish(keep_alive=False)  # longer than asked: stop

    def _finish(self, keep_alive: bool = True) -> Response:
        response = self._response
        assert response is not None
        response.body = bytes(self._body)
        response.keep_alive = response.keep_alive and keep_alive and not self._buf
        return response


# a large body is written this much at a time, each piece once the socket
# has taken the last (so the transport never holds a second copy of it)
BODY_PIECE = 1 << 20


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self._writable: asyncio.Future[None] | None = None  # set while paused
        self.active = 0.0  # loop time of the last byte read or piece written

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    async def write_body(self, body: bytes | bytearray | memoryview) -> bool:
        """Write ``body`` a piece at a time, waiting while the socket is
        full; stops early if the answer came first (an error) or the
        connection went.  ``False`` when it stopped early: the connection
        then holds half a request and must not be used again."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        view = memoryview(body)
        for at in range(0, len(view), BODY_PIECE):
            if self.closed or (self.waiter is not None and self.waiter.done()):
                return False
            self.transport.write(view[at : at + BODY_PIECE])
            self.active = loop.time()
            writable = self._writable
            if writable is not None:
                waits: list[asyncio.Future[Any]] = [writable]
                if self.waiter is not None:
                    waits.append(self.waiter)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.active = asyncio.get_running_loop().time()
        if self.parser is None or self.waiter is None or self.waiter.done():
            self.closed = True  # bytes nobody asked for: do not reuse
            if self.transport is not None:
                self.transport.close()
            return
        try:
            done = self.parser.feed(data)
        except WireError as exc:
            self.waiter.set_exception(exc)
            self.closed = True
            return
        if done is not None:
            self.waiter.set_result(done)

    def eof_received(self) -> bool | None:
        self._lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        waiter, parser = self.waiter, self.parser
        if waiter is None or waiter.done() or parser is None:
            return
        if not parser.started:
            waiter.set_exception(
                WireError(f"connection closed: {exc or 'EOF'}", sent=False)
            )
            return
        try:
            waiter.set_result(parser.eof())
        except WireError as err:
            waiter.set_exception(err)


class Pool:
    """Keep-alive connections to one host (``host:port``, TLS or not)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_idle: int = 256,
    ) -> None:
        self.host, self.port = host, port
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: deque[_Connection] = deque()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname if self.ssl else None,
                )
        except TimeoutError:
            raise WireError(
                f"connect to {self.host}:{self.port} timed out",
                sent=False,
                timeout=True,
            ) from None
        except OSError as exc:
            raise WireError(
                f"cannot connect to {self.host}:{self.port}: {exc}", sent=False
            ) from exc
        return conn

    async def request(
        self,
        data: bytes,
        *,
        head: bool = False,
        body: bytes | bytearray | memoryview = b"",
        sink: bytearray | None = None,
    ) -> Response:
        """Send one serialized request (its head ``data``, then ``body``) and
        return the whole response (its body into ``sink`` where it fits:
        :class:`ResponseParser`)."""
        reused = bool(self._idle)
        try:
            return await self._once(data, head, body, sink)
        except WireError as exc:
            if reused and not exc.sent:  # an idle connection the server closed
                return await self._once(data, head, body, sink, fresh=True)
            raise

    async def _once(
        self,
        data: bytes,
        head: bool,
        body: bytes | bytearray | memoryview,
        sink: bytearray | None,
        fresh: bool = False,
    ) -> Response:
        conn = None
        while self._idle and not fresh:
            candidate = self._idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        if conn is None:
            conn = await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        conn.parser = ResponseParser(head_only=head, sink=sink)
        conn.waiter = waiter
        transport = conn.transport
        assert transport is not None
        conn.active = loop.time()
        timer = _IdleTimer(loop, self.read_timeout, conn, waiter)
        whole = True
        try:
            if len(body) <= 64 * 1024:
                transport.write(data + bytes(body))  # one segment
            else:
                transport.write(data)
                whole = await conn.write_body(body)
            response = await waiter
        except BaseException:
            transport.abort()  # what is left unsent is dropped, not flushed
            raise
        finally:
            timer.cancel()
            # an idle connection keeps no parser: it would keep the caller's
            # sink (a whole part) alive until the connection's next request
            conn.waiter = None
            conn.parser = None
        # an answer that came before the whole body went (an early error)
        # leaves half a request on the connection: not to be used again
        reuse = response.keep_alive and whole and not conn.closed
        if reuse and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        elif whole:
            transport.close()
        else:
            transport.abort()
        return response

    def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()


class _IdleTimer:
    """Fails ``waiter`` once its connection has neither read a byte nor
    written a piece for ``timeout`` seconds (botocore's read timeout is such
    an idle timeout: a large part that keeps moving is not cut off)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        conn: _Connection,
        waiter: asyncio.Future[Response],
    ) -> None:
        self.loop, self.timeout, self.conn, self.waiter = loop, timeout, conn, waiter
        self.handle = loop.call_later(timeout, self._check)

    def _check(self) -> None:
        if self.waiter.done():
            return
        idle = self.loop.time() - self.conn.active
        if idle < self.timeout:
            self.handle = self.loop.call_later(self.timeout - idle, self._check)
            return
        self.waiter.set_exception(WireError("read timed out", sent=True, timeout=True))

    def cancel(self) -> None:
        self.handle.cancel()
