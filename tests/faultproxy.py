"""A fault-injecting HTTP/1.1 reverse proxy in front of a real S3 server.

Faults injected here are seen by every HTTP client alike: botocore's
(aiohttp) and the lean CopyObject path (:mod:`engine.s3.wire`), which never
goes through botocore's ``before-send`` hook (:mod:`tests.faults`).

The proxy runs its own event loop in a background thread.  Every request is
read whole (body by Content-Length or chunked; ``Expect: 100-continue``
answered), shown to ``decide(req)``, and either forwarded to the upstream
server or answered with a :data:`Fault`.  Downstream connections are kept
alive even though moto closes its own after every answer, so clients really
reuse connections through the proxy.  Path-style addressing only.

    with FaultProxy(moto.endpoint, decide) as proxy:
        run_job(repo, job, proxy.server)
        assert proxy.requests["CopyObject"] == 3
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from types import TracebackType
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.servers import S3Server

# -- faults -------------------------------------------------------------------


@dataclass(frozen=True)
class Respond:
    """Answer without forwarding (Content-Length framed, connection kept)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reset:
    """Read the request, then close without answering (an RST unless ``rst``
    is false, then a plain FIN)."""

    rst: bool = True


@dataclass(frozen=True)
class Truncate:
    """Forward, then send the head and half the body, and close."""


@dataclass(frozen=True)
class Delay:
    """Sleep, then forward (or apply ``then``)."""

    seconds: float
    then: Fault | None = None


@dataclass(frozen=True)
class AfterUpstream:
    """Forward so the server really does it, then apply ``fault`` instead of
    (or, for faults that send the answer, to) the server's answer."""

    fault: Fault


@dataclass(frozen=True)
class CloseAfterResponse:
    """Forward, answer, then close the connection without announcing it."""


@dataclass(frozen=True)
class Rewrite:
    """Forward, then answer with the body ``edit`` makes of the server's
    (decoded), framed by Content-Length or, with ``chunk``, chunked in pieces
    of that many bytes."""

    edit: Callable[[bytes], bytes] = bytes
    chunk: int = 0


Fault = (
    Respond | Reset | Truncate | Delay | AfterUpstream | CloseAfterResponse | Rewrite
)

# -- requests and responses -----------------------------------------------------


@dataclass
class Request:
    """One request as the client sent it, with the S3 operation it names."""

    method: str
    target: str  # as sent: percent-encoded path and query
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes
    n: int = 0  # times this (operation, key) was seen, this one included

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    @property
    def bucket(self) -> str | None:
        return unquote(self.path.lstrip("/").split("/", 1)[0]) or None

    @property
    def key(self) -> str | None:
        parts = self.path.lstrip("/").split("/", 1)
        return unquote(parts[1]) if len(parts) == 2 and parts[1] else None

    @property
    def user_agent(self) -> str:
        return self.header("user-agent") or ""

    @property
    def operation(self) -> str:
        return operation(
            self.method,
            self.key is not None,
            self.bucket is not None,
            self.query,
            self.header("x-amz-copy-source") is not None,
        )


_BY_SUBRESOURCE: dict[tuple[str, bool], list[tuple[str, str]]] = {
    # (method, names a key): [(query parameter, operation)], first match wins
    ("GET", False): [
        ("list-type", "ListObjectsV2"),
        ("versions", "ListObjectVersions"),
        ("uploads", "ListMultipartUploads"),
        ("location", "GetBucketLocation"),
        ("versioning", "GetBucketVersioning"),
        ("tagging", "GetBucketTagging"),
    ],
    ("GET", True): [
        ("uploadId", "ListParts"),
        ("tagging", "GetObjectTagging"),
        ("acl", "GetObjectAcl"),
        ("retention", "GetObjectRetention"),
        ("legal-hold", "GetObjectLegalHold"),
        ("attributes", "GetObjectAttributes"),
    ],
    ("PUT", False): [
        ("versioning", "PutBucketVersioning"),
        ("tagging", "PutBucketTagging"),
        ("object-lock", "PutObjectLockConfiguration"),
    ],
    ("PUT", True): [
        ("tagging", "PutObjectTagging"),
        ("acl", "PutObjectAcl"),
        ("retention", "PutObjectRetention"),
        ("legal-hold", "PutObjectLegalHold"),
    ],
    ("POST", False): [("delete", "DeleteObjects")],
    ("POST", True): [
        ("uploads", "CreateMultipartUpload"),
        ("uploadId", "CompleteMultipartUpload"),
    ],
    ("DELETE", True): [("uploadId", "AbortMultipartUpload")],
}
_PLAIN = {
    ("GET", False): "ListObjects",
    ("GET", True): "GetObject",
    ("PUT", False): "CreateBucket",
    ("PUT", True): "PutObject",
    ("HEAD", False): "HeadBucket",
    ("HEAD", True): "HeadObject",
    ("DELETE", False): "DeleteBucket",
    ("DELETE", True): "DeleteObject",
}


def operation(
    method: str, has_key: bool, has_bucket: bool, query: dict[str, str], copy: bool
) -> str:
    """The S3 operation a path-style request names (``Unknown`` otherwise)."""
    if not has_bucket:
        return "ListBuckets" if method == "GET" else "Unknown"
    if method == "PUT" and has_key and "partNumber" in query:
        return "UploadPartCopy" if copy else "UploadPart"
    if method == "PUT" and has_key and copy:
        return "CopyObject"
    for param, name in _BY_SUBRESOURCE.get((method, has_key), []):
        if param in query:
            return name
    return _PLAIN.get((method, has_key), "Unknown")


@dataclass
class Response:
    """An upstream answer: head parsed, body kept as framed on the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw_body: bytes  # as framed (chunked stays chunked)
    body: bytes = b""  # decoded

    def head(self, close: bool = False) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [
            f"{k}: {v}"
            for k, v in self.headers
            if k.lower() not in ("connection", "keep-alive")
        ]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def canned(fault: Respond) -> Response:
    headers = {"Content-Type": "application/xml", **fault.headers}
    headers["Content-Length"] = str(len(fault.body))
    return Response(
        fault.status,
        _REASONS.get(fault.status, "Fault"),
        list(headers.items()),
        fault.body,
        fault.body,
    )


_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """A chunked body: (decoded, as framed)."""
    body, raw = bytearray(), bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        raw += line
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = await reader.readuntil(b"\r\n")
                raw += trailer
                if trailer == b"\r\n":
                    return bytes(body), bytes(raw)
        chunk = await reader.readexactly(size + 2)
        body += chunk[:-2]
        raw += chunk


async def _read_response(reader: asyncio.StreamReader, head_only: bool) -> Response:
    status_line, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    parts = status_line.split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    length = _get(headers, "content-length")
    chunked = "chunked" in (_get(headers, "transfer-encoding") or "").lower()
    if head_only or status in (204, 304) or 100 <= status < 200:
        raw = b""
    elif chunked:
        body, raw = await _read_chunked(reader)
        return Response(status, reason, headers, raw, body)
    elif length is not None:
        raw = await reader.readexactly(int(length))
    else:  # until close: framed again by length for the client
        raw = await reader.read()
        headers.append(("Content-Length", str(len(raw))))
    return Response(status, reason, headers, raw, raw)


def rewritten(response: Response, fault: Rewrite) -> Response:
    """``response`` with the body ``fault`` makes of it, framed again."""
    body = fault.edit(response.body)
    headers = [
        (k, v)
        for k, v in response.headers
        if k.lower() not in ("content-length", "transfer-encoding")
    ]
    if not fault.chunk:
        headers.append(("Content-Length", str(len(body))))
        return Response(response.status, response.reason, headers, body, body)
    headers.append(("Transfer-Encoding", "chunked"))
    pieces = [body[i : i + fault.chunk] for i in range(0, len(body), fault.chunk)]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return Response(response.status, response.reason, headers, raw, body)


# -- the proxy ------------------------------------------------------------------


@dataclass
class ProxiedServer(S3Server):
    """The upstream server as reached through the proxy (what ``run_job``
    and ``client_settings`` take); ``stop`` leaves the upstream running."""

    def stop(self) -> None:
        pass


Decide = Callable[[Request], Fault | None]


class _Closed(Exception):
    """This downstream connection is over."""


class FaultProxy:
    """A reverse proxy to ``upstream`` that answers what ``decide`` says; a
    context manager (start on enter, stop on exit).

    Counters: ``requests`` (per operation), ``faults`` (per fault type, the
    outermost), ``connections`` (downstream connections accepted), ``seen``
    (per (operation, key), what ``Request.n`` counts) and ``log`` (every
    request with the fault it got).  An error in ``decide`` or in the proxy
    itself is raised again on exit.
    """

    def __init__(self, upstream: S3Server, decide: Decide | None = None) -> None:
        self.upstream = upstream
        url = urlsplit(upstream.endpoint)
        self.up_host = url.hostname or "127.0.0.1"
        self.up_port = url.port or 80
        self.decide: Decide = decide or (lambda _req: None)
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.seen: Counter[tuple[str, str | None]] = Counter()
        self.log: list[tuple[Request, Fault | None]] = []
        self.connections = 0
        self.errors: list[BaseException] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    @property
    def server(self) -> S3Server:
        """An ``S3Server`` whose endpoint is this proxy (for ``run_job``)."""
        values = {f.name: getattr(self.upstream, f.name) for f in fields(S3Server)}
        values.update(name=f"{values['name']}+faults", endpoint=self.endpoint)
        return ProxiedServer(**values)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> FaultProxy:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(
            target=loop.run_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None and self.errors:
            raise self.errors[0]

    # -- one downstream connection ----------------------------------------------

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self._writers.add(writer)
        up = _Upstream(self.up_host, self.up_port)
        try:
            while True:
                req = await self._read_request(reader, writer)
                if req is None:
                    break
                key = (req.operation, req.key)
                self.requests[req.operation] += 1
                self.seen[key] += 1
                req.n = self.seen[key]
                fault = self.decide(req)
                self.log.append((req, fault))
                if fault is not None:
                    self.faults[type(fault).__name__] += 1
                await self._serve(req, fault, writer, up, None)
                if (req.header("connection") or "").lower() == "close":
                    break
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self._writers.discard(writer)
            up.close()
            writer.transport.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed its idle connection
        request_line, headers = _parse_head(head)
        method, target, _version = request_line.split(" ", 2)
        if (_get(headers, "expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in (_get(headers, "transfer-encoding") or "").lower():
            body, _ = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(_get(headers, "content-length") or 0))
        return Request(method, target, headers, body)

    async def _serve(
        self,
        req: Request,
        fault: Fault | None,
        writer: asyncio.StreamWriter,
        up: _Upstream,
        answer: Response | None,
    ) -> None:
        if isinstance(fault, Delay):
            await asyncio.sleep(fault.seconds)
            await self._serve(req, fault.then, writer, up, answer)
        elif isinstance(fault, AfterUpstream):
            await self._serve(req, fault.fault, writer, up, await up.forward(req))
        elif isinstance(fault, Reset):
            if fault.rst:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                writer.transport.abort()
            raise _Closed
        elif isinstance(fault, Respond):
            response = canned(fault)
            body = b"" if req.method == "HEAD" else response.raw_body  # no body
            writer.write(response.head() + body)
            await writer.drain()
        else:
            response = answer or await up.forward(req)
            if isinstance(fault, Rewrite):
                response = rewritten(response, fault)
            if isinstance(fault, Truncate):
                writer.write(
                    response.head() + response.raw_body[: len(response.raw_body) // 2]
                )
                await writer.drain()
                raise _Closed
            writer.write(response.head() + response.raw_body)
            await writer.drain()
            if isinstance(fault, CloseAfterResponse):
                raise _Closed


class _Upstream:
    """The connection to the upstream server for one downstream connection
    (opened again whenever the server closed it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def forward(self, req: Request) -> Response:
        drop = {
            "connection",
            "keep-alive",
            "expect",
            "transfer-encoding",
            "content-length",
        }
        lines = [f"{req.method} {req.target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in req.headers if k.lower() not in drop]
        if req.body or req.method in ("PUT", "POST") or req.header("content-length"):
            lines.append(f"Content-Length: {len(req.body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + req.body
        for fresh in (False, True):
            reader, writer = await self._connect(fresh)
            writer.write(data)
            try:
                await writer.drain()
                response = await _read_response(reader, req.method == "HEAD")
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                if fresh or (
                    isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                ):
                    raise
                continue  # a kept connection the server had closed
            closing = (_get(response.headers, "connection") or "").lower() == "close"
            if closing or not any(
                k.lower() in ("content-length", "transfer-encoding")
                for k, _ in response.headers
            ):
                self.close()
            return response
        raise AssertionError("unreachable")

    async def _connect(
        self, fresh: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._conn is not None and (fresh or self._conn[0].at_eof()):
            self.close()
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].transport.close()
            self._conn = None


@contextlib.contextmanager
def fault_proxy(
    upstream: S3Server, decide: Decide | None = None
) -> Iterator[FaultProxy]:
    """:class:`FaultProxy` as a context manager function (for fixtures)."""
    with FaultProxy(upstream, decide) as proxy:
        yield proxy
