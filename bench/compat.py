"""Which clients can copy through fakes3: each copies a prefix between two buckets.

    bash bench/peers.sh          # for aws and s5cmd
    python bench/compat.py       # prints one line per client

The source prefix holds small objects with awkward keys (spaces, ``+``,
unicode, nested folders: listings must encode them right) and one object over
the 5 GiB CopyObject limit (a client must switch to UploadPartCopy).  Each
client copies the prefix to ``dst/<client>/`` its own usual way; the copy is
then listed and compared with the source, key by key and size by size.
boto3 runs once with path-style and once with virtual-host addressing
(through fakes3 as an HTTP proxy, so ``BUCKET.localhost`` needs no DNS).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

if not __package__:  # run as a file (python bench/compat.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiobotocore.session import get_session
from botocore.config import Config

from bench import endpoint, tools
from bench.endpoint import FakeS3Process

SRC, DST, PREFIX = "src", "dst", "compat/"
SMALL_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%41.txt",
    "unicode/café/日本.txt",
    "dir/sub/deep/file.bin",
]
LARGE_KEY = "large.bin"
LARGE_SIZE = 6 * 1024**3
PART = 1024**3  # aiobotocore's hand-made multipart copy
CLIENTS = (
    "boto3-path",
    "boto3-virtual",
    "aiobotocore",
    "bulkcopy",
    "aws",
    "s5cmd",
    "rclone",
)


def listing(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = int(obj["Size"])
    return found


def copy_with_boto3(url: str, dst_prefix: str, virtual: bool) -> None:
    """List, then the managed ``client.copy()`` per object."""
    client = endpoint.client(url, virtual=virtual)
    for key in listing(client, SRC, PREFIX):
        client.copy({"Bucket": SRC, "Key": PREFIX + key}, DST, dst_prefix + key)


async def _copy_with_aiobotocore(url: str, dst_prefix: str) -> None:
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    ) as client:
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=SRC, Prefix=PREFIX):
            for obj in page.get("Contents", []):
                dst = {"Bucket": DST, "Key": dst_prefix + obj["Key"][len(PREFIX) :]}
                source = {"Bucket": SRC, "Key": obj["Key"]}
                if obj["Size"] <= PART:
                    await client.copy_object(**dst, CopySource=source)
                    continue
                up = await client.create_multipart_upload(**dst)
                parts = []
                for n, first in enumerate(range(0, obj["Size"], PART), 1):
                    last = min(first + PART, obj["Size"]) - 1
                    resp = await client.upload_part_copy(
                        **dst,
                        UploadId=up["UploadId"],
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=f"bytes={first}-{last}",
                    )
                    etag = resp["CopyPartResult"]["ETag"]
                    parts.append({"PartNumber": n, "ETag": etag})
                await client.complete_multipart_upload(
                    **dst, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
                )


def commands(url: str, dst_prefix: str, client: str, workdir: Path) -> list[str]:
    """The command line copying the prefix with an external client."""
    venv = tools.PEERS_VENV
    if client == "bulkcopy":
        manifest = workdir / "manifest.csv"
        rows = [*SMALL_KEYS, LARGE_KEY]
        manifest.write_text(
            "".join(f"{SRC},{quote(PREFIX + k, safe='/')}\n" for k in rows)
        )
        return [
            sys.executable,
            "-m",
            "engine",
            "copy",
            str(manifest),
            "--to",
            f"s3://{DST}/{client}/",
            "--db",
            str(workdir / "bc.db"),
            "--endpoint-url",
            url,
            "--addressing-style",
            "path",
            "--no-progress",
            "-q",
        ]
    if client == "aws":
        return [
            str(tools.peer_binary(venv, "aws")),
            "s3",
            "cp",
            "--recursive",
            f"s3://{SRC}/{PREFIX}",
            f"s3://{DST}/{dst_prefix}",
            "--endpoint-url",
            url,
            "--only-show-errors",
        ]
    if client == "s5cmd":
        return [
            str(tools.peer_binary(venv, "s5cmd")),
            "--endpoint-url",
            url,
            "cp",
            f"s3://{SRC}/{PREFIX}*",
            f"s3://{DST}/{dst_prefix}",
        ]
    if client == "rclone":
        rclone = shutil.which("rclone") or "rclone"
        return [rclone, "copy", f"s3:{SRC}/{PREFIX}", f"s3:{DST}/{dst_prefix}"]
    raise ValueError(client)


def rclone_env(url: str) -> dict[str, str]:
    """One rclone remote ``s3`` for both buckets (so copies are server-side)."""
    return {
        "RCLONE_CONFIG": os.devnull,
        "RCLONE_CONFIG_S3_TYPE": "s3",
        "RCLONE_CONFIG_S3_PROVIDER": "Other",
        "RCLONE_CONFIG_S3_ENDPOINT": url,
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "test",
        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "test",
        "RCLONE_CONFIG_S3_FORCE_PATH_STYLE": "true",
    }


def run_client(client: str, url: str, workdir: Path) -> str | None:
    """Copy the prefix with ``client``; an error message, or ``None``."""
    dst_prefix = f"{client}/"
    in_process: dict[str, Callable[[], None]] = {
        "boto3-path": lambda: copy_with_boto3(url, dst_prefix, virtual=False),
        "boto3-virtual": lambda: copy_with_boto3(url, dst_prefix, virtual=True),
        "aiobotocore": lambda: asyncio.run(_copy_with_aiobotocore(url, dst_prefix)),
    }
    try:
        if client in in_process:
            in_process[client]()
            return None
        env = {**tools.environment(workdir), **rclone_env(url)}
        argv = commands(url, dst_prefix, client, workdir)
    except Exception as exc:  # a report, not a crash: the next client runs
        return f"{type(exc).__name__}: {exc}"
    proc = subprocess.run(
        argv,
        cwd=tools.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"exit {proc.returncode}: " + " / ".join(lines[-3:])
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated subset"
    )
    args = p.parse_args()
    wanted = [c for c in args.clients.split(",") if c]
    failures = 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-compat-") as tmp,
        FakeS3Process(["--bucket", DST], log=Path(tmp) / "fakes3.log") as server,
    ):
        server.seed(
            *(
                {"bucket": SRC, "key": PREFIX + k, "size": 1000 + i}
                for i, k in enumerate(SMALL_KEYS)
            ),
            {"bucket": SRC, "key": PREFIX + LARGE_KEY, "size": LARGE_SIZE},
        )
        checker = endpoint.client(server.url)
        want = listing(checker, SRC, PREFIX)
        for client in wanted:
            server.reset_stats()
            error = run_client(client, server.url, Path(tmp))
            stats = server.stats()
            # bulkcopy puts each object at PREFIX + its source key
            landing = f"{client}/{PREFIX}" if client == "bulkcopy" else f"{client}/"
            got = listing(checker, DST, landing)
            missing = sorted(set(want) - set(got))
            wrong = sorted(k for k in got if k in want and got[k] != want[k])
            extra = sorted(set(got) - set(want))
            ok = not (error or missing or wrong or extra)
            failures += not ok
            ops = ", ".join(f"{op} {n}" for op, n in stats["requests"].items())
            print(
                f"{'ok  ' if ok else 'FAIL'} {client:14} {len(got)}/{len(want)} "
                f"objects  [{ops}]"
            )
            for what, keys in (
                ("missing", missing),
                ("wrong size", wrong),
                ("unexpected", extra),
            ):
                if keys:
                    print(f"     {what}: {keys}")
            if error:
                print(f"     {error}")
            if stats["errors"]:
                print(f"     errors answered: {stats['errors']}")
        log = (Path(tmp) / "fakes3.log").read_text().strip()
        if log:
            print("fakes3 stderr:\n" + log)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
