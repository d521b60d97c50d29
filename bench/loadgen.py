"""How many requests a second fakes3 answers: a raw HTTP/1.1 keep-alive load.

    python bench/loadgen.py --op copy --connections 32 --seconds 5

Starts fakes3 as a process of its own (one core, one event loop), seeds it, and
drives it from this process with pre-built requests carrying the headers a real
SDK sends (signature, date, content hash, user agent), over ``--connections``
keep-alive connections, one request at a time each.  Prints one JSON line: the
rate seen by the client, and the server's own CPU seconds, so the rate one
server core could sustain (``requests_per_server_cpu_second``) shows whether
the client or the server was the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

if not __package__:  # run as a file (python bench/loadgen.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.endpoint import FakeS3Process

OBJECTS = 10_000
SDK_HEADERS = (
    "User-Agent: Boto3/1.40.61 md/Botocore#1.40.61 ua/2.1 os/linux#6.1 "
    "md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#standard "
    "Botocore/1.40.61\r\n"
    "Accept-Encoding: identity\r\n"
    "X-Amz-Date: 20250101T000000Z\r\n"
    "X-Amz-Content-SHA256: "
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/"
    "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
    "Signature=0f2f6a2c6b0f3c1d8e2b7a9d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70\r\n"
    "amz-sdk-invocation-id: 6d0b5f7e-1111-2222-3333-444455556666\r\n"
    "amz-sdk-request: attempt=1; max=3\r\n"
)


def requests(op: str, host: str) -> Iterator[bytes]:
    """An endless supply of requests for ``op``, cycling over the seeded keys."""
    for n in itertools.cycle(range(OBJECTS)):
        key = f"obj/{n:06d}"
        if op == "head":
            line, extra = f"HEAD /src/{key}", ""
        elif op == "copy":
            line = f"PUT /dst/copy/{key}"
            extra = f"x-amz-copy-source: src/{key}\r\nContent-Length: 0\r\n"
        else:  # list
            line, extra = f"GET /src?list-type=2&prefix=obj/{n // 100:04d}", ""
        yield (f"{line} HTTP/1.1\r\nHost: {host}\r\n{SDK_HEADERS}{extra}\r\n").encode()


class Client(asyncio.Protocol):
    """One keep-alive connection sending a request as soon as the last is answered."""

    def __init__(
        self, source: Iterator[bytes], deadline: float, statuses: Counter[int]
    ) -> None:
        self.source = source
        self.deadline = deadline
        self.statuses = statuses
        self.buf = bytearray()
        self.need = -1  # bytes the current answer has in all, once the head is read
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = next(self.source)
        self.head_request = request.startswith(b"HEAD ")
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[: end + 2]).lower()
                at = head.find(b"content-length: ")
                length = 0
                if at >= 0 and not self.head_request:
                    length = int(head[at + 16 : head.find(b"\r\n", at)])
                self.statuses[int(head[9:12])] += 1
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = -1
            if time.monotonic() >= self.deadline:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(
    host: str, port: int, op: str, connections: int, seconds: float
) -> tuple[Counter[int], float]:
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()
    source = requests(op, f"{host}:{port}")
    started = time.monotonic()
    deadline = started + seconds
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: Client(source, deadline, statuses), host, port
        )
        clients.append(client)
    await asyncio.gather(*(c.done for c in clients))
    return statuses, time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--op", choices=["head", "copy", "list"], default="copy")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    with FakeS3Process(
        ["--seed", f"src/obj/:{OBJECTS}:1KiB", "--bucket", "dst"]
    ) as server:
        server.reset_stats()
        statuses, elapsed = asyncio.run(
            drive(server.host, server.port, args.op, args.connections, args.seconds)
        )
        stats = server.stats()
    total = statuses.total()
    cpu = stats["cpu_seconds"]
    print(
        json.dumps(
            {
                "op": args.op,
                "connections": args.connections,
                "seconds": round(elapsed, 3),
                "requests": total,
                "statuses": dict(statuses),
                "requests_per_second": round(total / elapsed),
                "server_cpu_seconds": cpu,
                "requests_per_server_cpu_second": round(stats["requests_total"] / cpu)
                if cpu
                else None,
            }
        )
    )
    return 0 if set(statuses) <= {200} else 1


if __name__ == "__main__":
    sys.exit(main())
