"""fakes3 as a child process, and its admin API (``/__stats``, ``/__seed``).

A benchmark runs the endpoint in a process of its own, so the server and the
tool under test do not share an interpreter (nor a GIL).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

FAKES3 = Path(__file__).resolve().parent / "fakes3.py"


def client(url: str, *, virtual: bool = False, config: Config | None = None) -> Any:
    """A boto3 client of the fakes3 endpoint at ``url``: its test keys,
    path-style, or virtual-host (``BUCKET.localhost:PORT``, sent to fakes3
    as an HTTP proxy: no DNS needed); ``config`` merged in (retries, pool)."""
    merged = Config(s3={"addressing_style": "virtual" if virtual else "path"})
    if virtual:
        merged = merged.merge(Config(proxies={"http": url}))
        url = "http://localhost:" + url.rsplit(":", 1)[1]
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=merged if config is None else merged.merge(config),
    )


class FakeS3Process:
    """``python bench/fakes3.py --port 0 ARGS...``, until :meth:`stop`.

    ``prefix`` goes before the command, e.g. ``["taskset", "-c", "1"]`` to pin
    the endpoint to a CPU (a prefix that execs the command keeps :attr:`pid`
    the endpoint's).
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        log: Path | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.args = list(args)
        self.log = log
        self.prefix = list(prefix)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> FakeS3Process:
        stderr = self.log.open("w") if self.log else None
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, str(FAKES3), "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        if stderr is not None:
            stderr.close()  # the child has its own copy
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fakes3 did not start (said {line!r})")
        self.url = line.split(" ", 1)[1]
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """``GET /__stats``."""
        result: dict[str, Any] = self._call("GET", "/__stats")
        return result

    def reset_stats(self) -> None:
        self._call("POST", "/__stats/reset", {})

    def seed(self, *specs: dict[str, Any]) -> int:
        """``POST /__seed`` (see ``bench/fake/admin.py`` for the spec)."""
        return int(self._call("POST", "/__seed", list(specs))["seeded"])

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> FakeS3Process:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
