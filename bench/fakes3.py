"""A fast fake S3 endpoint for benchmarks: virtual objects, no signatures.

Objects have a size, ETag, properties, tags and part layout but no bytes, so a
5 TiB object costs nothing; GET answers zeros.  Latency and a per-request copy
bandwidth can be injected, so wall time depends on what a client keeps in flight.

As a process (prints ``READY http://127.0.0.1:PORT`` on stdout when listening)::

    python bench/fakes3.py --port 0 --latency-ms 5 --copy-bandwidth 1GiB/s \\
        --seed src/small/:10000:4KiB --seed-object src/big.bin:20GiB --bucket dst

In a test or a script, from a thread::

    with FakeS3(latency_ms=5) as s3:
        s3.seed_object("src", "big.bin", 20 * 1024**3)
        client = boto3.client("s3", endpoint_url=s3.url, ...)

``GET /__stats`` answers the counters as JSON (requests by operation, the most
requests of each operation in flight at once); ``POST /__stats/reset`` zeroes
them; ``POST /__seed`` creates objects from JSON (see ``bench/fake/admin.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

if not __package__:  # run as a file (python bench/fakes3.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake.admin import apply_seed
from bench.fake.env import Env
from bench.fake.http import Connection
from bench.fake.s3api import S3Api
from bench.fake.stats import Stats
from bench.fake.store import Store
from bench.units import parse_size

T = TypeVar("T")


class FakeS3:
    """The fake endpoint: serve it on a running loop, or ``start()`` a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        copy_bandwidth: float | None = None,
        region: str = "us-east-1",
        domain: str = "localhost",
        log: TextIO = sys.stderr,
        count_copies: bool = False,
        content_etags: bool = False,
        checksums: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.store = Store(content_etags, checksums)
        self.stats = Stats(count_copies)
        self.env = Env(self.store, self.stats, region, copy_bandwidth)
        self.api = S3Api(self.env, latency=latency_ms / 1000, domain=domain, log=log)
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # on the caller's event loop ------------------------------------------

    async def serve(self) -> None:
        """Start listening on the running loop (``port`` 0 picks a free port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self.api, self.stats, self._tasks, self._connections),
            self.host,
            self.port,
            backlog=1024,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._loop = loop

    async def aclose(self) -> None:
        """Stop listening, drop every answer still pending, close connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self._connections):
            conn.close()
        await asyncio.sleep(0)  # let the transports finish closing

    # in a thread of its own ----------------------------------------------

    def start(self) -> FakeS3:
        """Serve from a background thread; returns once listening."""
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.aclose())
                loop.close()

        self._thread = threading.Thread(target=run, name="fakes3", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # seeding and counters (safe from any thread) --------------------------

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = self._loop
        if (
            loop is None
            or not loop.is_running()
            or threading.current_thread() is self._thread
        ):
            return fn(*args)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

    def seed(self, spec: dict[str, Any]) -> int:
        """Create buckets and objects without requests (see ``fake/admin.py``)."""
        return self._call(apply_seed, self.store, spec)

    def create_bucket(self, bucket: str) -> None:
        self.seed({"bucket": bucket})

    def seed_prefix(self, bucket: str, prefix: str, count: int, size: int) -> None:
        self.seed({"bucket": bucket, "prefix": prefix, "count": count, "size": size})

    def seed_object(self, bucket: str, key: str, size: int, **props: Any) -> None:
        """One object; ``props``: metadata, tags, content_type, headers, part_size."""
        self.seed({"bucket": bucket, "key": key, "size": size, **props})

    def snapshot(self) -> dict[str, Any]:
        """The counters ``GET /__stats`` answers with."""
        return self._call(self.stats.snapshot)

    def reset_stats(self) -> None:
        self._call(self.stats.reset)


# command line ----------------------------------------------------------------


def _seed_prefix(spec: str) -> dict[str, Any]:
    """``BUCKET/PREFIX:COUNT:SIZE``."""
    try:
        path, count, size = spec.rsplit(":", 2)
        bucket, _, prefix = path.partition("/")
        if not bucket:
            raise ValueError("no bucket")
        return {
            "bucket": bucket,
            "prefix": prefix,
            "count": int(count),
            "size": parse_size(size),
        }
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: expected BUCKET/PREFIX:COUNT:SIZE ({exc})"
        ) from None


def _seed_object(spec: str) -> dict[str, Any]:
    """``BUCKET/KEY:SIZE``."""
    try:
        path, size = spec.rsplit(":", 1)
        bucket, _, key = path.partition("/")
        if not bucket or not key:
            raise ValueError("no bucket or key")
        return {"bucket": bucket, "key": key, "size": parse_size(size)}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: expected BUCKET/KEY:SIZE ({exc})"
        ) from None


def _rate(text: str) -> float:
    try:
        return float(parse_size(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fakes3",
        description="A fast fake S3 endpoint with virtual objects (no signatures).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every S3 request"
    )
    p.add_argument(
        "--copy-bandwidth",
        type=_rate,
        default=None,
        metavar="BYTES_PER_S",
        help="a CopyObject/UploadPartCopy of n bytes takes n/BYTES_PER_S more "
        "seconds (per request: concurrent copies overlap), e.g. 1GiB/s",
    )
    p.add_argument("--region", default="us-east-1")
    p.add_argument(
        "--domain",
        default="localhost",
        help="virtual-host addressing: Host BUCKET.DOMAIN[:PORT] names the bucket",
    )
    p.add_argument(
        "--bucket", action="append", default=[], metavar="NAME", help="create a bucket"
    )
    p.add_argument(
        "--count-copies",
        action="store_true",
        help="count copies per destination key (/__stats 'copies': keys "
        "written more than once)",
    )
    p.add_argument(
        "--content-etags",
        action="store_true",
        help="seeded objects (and copies) get the ETag of the zeros GetObject "
        "serves: the MD5 for a single-part object, of the parts' MD5s for a "
        "multipart one (so clients that check what they read pass); costs a "
        "hash of each distinct size, about 2 s a GiB",
    )
    p.add_argument(
        "--checksums",
        action="store_true",
        help="objects have checksums, as on S3 since 2025: a seeded one the "
        "FULL_OBJECT CRC64NVME of its zeros (about 0.1 s a GiB), a written one "
        "the checksum it was sent with (answered back, not computed), an "
        "upload's made from its parts'; HEAD and whole GETs answer with them "
        "under x-amz-checksum-mode: ENABLED",
    )
    p.add_argument(
        "--seed",
        type=_seed_prefix,
        action="append",
        default=[],
        metavar="BUCKET/PREFIX:COUNT:SIZE",
        help="COUNT objects named PREFIX000000, PREFIX000001, ...",
    )
    p.add_argument(
        "--seed-object",
        type=_seed_object,
        action="append",
        default=[],
        metavar="BUCKET/KEY:SIZE",
        help="one object, e.g. src/big.bin:20GiB",
    )
    return p


async def _serve(s3: FakeS3) -> None:
    await s3.serve()
    print(f"READY {s3.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await s3.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    s3 = FakeS3(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        copy_bandwidth=args.copy_bandwidth,
        region=args.region,
        domain=args.domain,
        count_copies=args.count_copies,
        content_etags=args.content_etags,
        checksums=args.checksums,
    )
    for bucket in args.bucket:
        s3.create_bucket(bucket)
    for spec in [*args.seed, *args.seed_object]:
        s3.seed(spec)
    run: Callable[[Any], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found,unused-ignore]  # optional

        run = uvloop.run
    run(_serve(s3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
