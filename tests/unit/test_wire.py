"""The lean path's HTTP/1.1 client: response parsing and keep-alive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from engine.s3.wire import Pool, Response, ResponseParser, WireError


def parse(chunks: list[bytes], head_only: bool = False) -> Response | None:
    parser = ResponseParser(head_only)
    done = None
    for c in chunks:
        done = parser.feed(c)
    return done


def test_content_length_body_in_pieces() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Amz-Request-Id: r1\r\n\r\n"
        b"hello world"
    )
    for split in range(1, len(raw)):
        got = parse([raw[:split], raw[split:]])
        assert got is not None
        assert (got.status, got.reason, got.body) == (200, "OK", b"hello world")
        assert got.headers["x-amz-request-id"] == "r1"
        assert got.keep_alive


def test_chunked_body_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\n<Copy\r\n"
        b"5\r\n     \r\n"  # S3 sends white space while a long copy runs
        b"0\r\nX-Trailer: t\r\n\r\n"
    )
    for split in range(1, len(raw)):
        got = parse([raw[:split], raw[split:]])
        assert got is not None
        assert got.body == b"<Copy     "


def test_not_complete_until_the_last_byte() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"
    assert parse([raw[:-1]]) is None


def test_head_response_has_no_body_and_repeated_headers_join() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    got = parse([raw], head_only=True)
    assert got is not None
    assert (got.body, got.headers["x-a"]) == (b"", "1, 2")


def test_connection_close_and_http10_are_not_kept() -> None:
    got = parse([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"])
    assert got is not None
    assert not got.keep_alive
    got = parse([b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"])
    assert got is not None
    assert not got.keep_alive


def test_body_until_close() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 500 Oops\r\n\r\n<Error>") is None
    got = parser.eof()
    assert (got.status, got.body, got.keep_alive) == (500, b"<Error>", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_garbage_is_a_wire_error(raw: bytes) -> None:
    with pytest.raises(WireError):
        parse([raw])


def test_truncated_response_is_a_wire_error() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(WireError) as err:
        parser.eof()
    assert err.value.sent


# -- the pool against a real socket ---------------------------------------------

Handler = Callable[[bytes, int], bytes | None]  # (request, n on this conn) -> reply


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A tiny HTTP server; yields its port and the requests per connection."""
    per_conn: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        per_conn.append(0)
        me = len(per_conn) - 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                per_conn[me] += 1
                reply = handler(head, per_conn[me])
                if reply is None:  # hang up without answering
                    return
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield port, per_conn


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REQUEST = b"PUT /b/k HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"


def test_connections_are_reused() -> None:
    async def go() -> list[int]:
        async with server(lambda _req, _n: OK) as (port, per_conn):
            pool = Pool("127.0.0.1", port, tls=False)
            for _ in range(5):
                assert (await pool.request(REQUEST)).body == b"ok"
            pool.close()
            return per_conn

    assert asyncio.run(go()) == [5]


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    """The server answers one request per connection, then hangs up on the
    next without a byte: the pool retries on a fresh connection."""

    async def go() -> list[int]:
        async with server(lambda _req, n: OK if n == 1 else None) as (port, per_conn):
            pool = Pool("127.0.0.1", port, tls=False)
            for _ in range(3):
                assert (await pool.request(REQUEST)).status == 200
            pool.close()
            return per_conn

    assert asyncio.run(go())[-1] == 1


def test_a_fresh_connection_closed_without_answer_is_an_error() -> None:
    async def go() -> None:
        async with server(lambda _req, _n: None) as (port, _):
            pool = Pool("127.0.0.1", port, tls=False)
            await pool.request(REQUEST)

    with pytest.raises(WireError) as err:
        asyncio.run(go())
    assert not err.value.sent


def test_read_timeout() -> None:
    async def go() -> None:
        never = asyncio.Event()

        async def slow(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await never.wait()

        srv = await asyncio.start_server(slow, "127.0.0.1", 0)
        async with srv:
            pool = Pool(
                "127.0.0.1",
                srv.sockets[0].getsockname()[1],
                tls=False,
                read_timeout=0.2,
            )
            try:
                await pool.request(REQUEST)
            finally:
                never.set()

    with pytest.raises(WireError) as err:
        asyncio.run(go())
    assert err.value.timeout


def test_connection_refused() -> None:
    from tests.servers import free_port

    async def go() -> None:
        await Pool("127.0.0.1", free_port(), tls=False).request(REQUEST)

    with pytest.raises(WireError, match="cannot connect") as err:
        asyncio.run(go())
    assert not err.value.sent


# -- a body straight into the caller's buffer (a streamed GetObject) -------------


def test_a_body_goes_into_the_sink_whatever_the_pieces() -> None:
    raw = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 11\r\n\r\nhello world"
    for split in range(1, len(raw)):
        sink = bytearray(11)
        parser = ResponseParser(sink=sink)
        assert parser.feed(raw[:split]) is None
        got = parser.feed(raw[split:])
        assert got is not None
        assert (got.into_sink, got.body, bytes(sink)) == (11, b"", b"hello world")
        assert got.keep_alive


def test_bytes_past_the_body_are_not_the_sinks_and_the_connection_is_dropped() -> None:
    sink = bytearray(4)
    got = ResponseParser(sink=sink).feed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcdHTTP/1.1"
    )
    assert got is not None
    assert bytes(sink) == b"abcd"
    assert not got.keep_alive


def test_a_body_larger_than_the_sink_is_not_read_and_an_error_stays_in_body() -> None:
    """A store that ignores Range (or an object overwritten since it was
    listed) may answer gigabytes: they are not read, only counted."""
    sink = bytearray(3)
    got = parse_into(sink, b"HTTP/1.1 200 OK\r\nContent-Length: 4000000000\r\n\r\nab")
    assert (got.into_sink, got.body, sink) == (4000000000, b"", bytearray(3))
    assert not got.keep_alive
    error = b"<Error><Code>PreconditionFailed</Code></Error>"
    got = parse_into(
        bytearray(100),
        b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: %d\r\n\r\n%s"
        % (len(error), error),
    )
    assert (got.into_sink, got.body) == (-1, error)


def parse_into(sink: bytearray, raw: bytes) -> Response:
    got = ResponseParser(sink=sink).feed(raw)
    assert got is not None
    return got


def test_a_large_body_arrives_whole_through_a_slow_reader() -> None:
    """A body of many pieces is written as the socket takes it (the server
    reads slowly) and arrives byte for byte; the next request on the same
    connection still works."""
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB

    async def go() -> bytes:
        got = bytearray()

        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                while length:
                    piece = await r.read(min(length, 256 * 1024))
                    got.extend(piece)
                    length -= len(piece)
                    await asyncio.sleep(0.001)
                w.write(OK)
                await w.drain()
            w.close()

        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with srv:
            pool = Pool("127.0.0.1", srv.sockets[0].getsockname()[1], tls=False)
            head = (
                f"PUT /b/k HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
            )
            assert (await pool.request(head.encode(), body=body)).body == b"ok"
            assert (await pool.request(REQUEST)).body == b"ok"
            pool.close()
        return bytes(got)

    assert asyncio.run(go()) == body


def test_a_kept_connection_does_not_keep_the_callers_buffer() -> None:
    """A part's buffer is free once its answer is read: the pooled
    connection holds no reference to it (it would keep a whole part alive
    until the connection's next request)."""
    import sys

    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

    async def go() -> tuple[int, int]:
        sink = bytearray(5)
        before = sys.getrefcount(sink)
        async with server(lambda _req, _n: reply) as (port, _):
            pool = Pool("127.0.0.1", port, tls=False)
            got = await pool.request(REQUEST, sink=sink)
            assert (got.into_sink, sink) == (5, bytearray(b"hello"))
            after = sys.getrefcount(sink)
            pool.close()
        return before, after

    before, after = asyncio.run(go())
    assert after == before


def test_an_answer_before_the_whole_body_leaves_the_connection_unused() -> None:
    """A server that answers (503) before it has read a large body leaves
    half a request on the connection: the next request goes on a fresh one,
    not after the old body's remaining bytes."""
    body = b"x" * (8 * 1024 * 1024)
    slow_down = b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\n\r\n"

    async def go() -> tuple[int, int, list[int]]:
        async with server(lambda req, _n: slow_down if b"PUT" in req else OK) as (
            port,
            per_conn,
        ):
            pool = Pool("127.0.0.1", port, tls=False)
            head = (
                f"PUT /b/k HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
            )
            first = await pool.request(head.encode(), body=body)
            second = await pool.request(b"GET /b/k HTTP/1.1\r\nhost: x\r\n\r\n")
            pool.close()
            return first.status, second.status, list(per_conn)

    first, second, per_conn = asyncio.run(go())
    assert (first, second) == (503, 200)
    assert len(per_conn) == 2  # the GET went on a connection of its own


def test_a_slow_answer_that_keeps_coming_is_not_cut_off() -> None:
    """The read timeout is an idle timeout: a body that keeps arriving,
    slower than the timeout in all, is read whole."""

    async def go() -> bytes:
        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.readuntil(b"\r\n\r\n")
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
            for _ in range(10):
                await asyncio.sleep(0.1)
                w.write(b"x")
                await w.drain()
            w.close()

        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with srv:
            port = srv.sockets[0].getsockname()[1]
            # a byte every 0.1 s, 1 s in all: room for a loaded machine's
            # stalls between bytes, none for a timeout of the whole answer
            pool = Pool("127.0.0.1", port, tls=False, read_timeout=0.5)
            got = await pool.request(REQUEST)
            pool.close()
        return got.body

    assert asyncio.run(go()) == b"x" * 10


def test_a_body_without_a_length_stops_once_longer_than_the_sink() -> None:
    """A successful body read until close, or chunked, is not read past the
    sink's size (the caller fails it as longer than asked); an error's body
    is read whole."""
    sink = bytearray(4)
    parser = ResponseParser(sink=sink)
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\nab") is None
    got = parser.feed(b"cdefgh")
    assert got is not None
    assert (got.body, got.keep_alive) == (b"abcdefgh", False)
    chunked = ResponseParser(sink=bytearray(4)).feed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n"
    )
    assert chunked is not None
    assert (chunked.body, chunked.keep_alive) == (b"abcdef", False)
    error = b"<Error><Code>SlowDown</Code></Error>"
    failed = ResponseParser(sink=bytearray(4))
    assert failed.feed(b"HTTP/1.1 503 Slow Down\r\n\r\n" + error) is None
    assert failed.eof().body == error
