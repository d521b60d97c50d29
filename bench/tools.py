"""The tools a benchmark compares: how each is run, in what environment, with
what settings, and how long and how much CPU one run took.

bulkcopy runs from this repository with this interpreter; the peers (aws-cli,
boto3's managed copy) run from ``bench/.venv-peers`` (``bash bench/peers.sh``),
because awscli pins a botocore the project's aiobotocore cannot use.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
PEERS_VENV = Path(__file__).resolve().parent / ".venv-peers"
PEER_TOOLS = Path(__file__).resolve().parent / "peer_tools.py"
TOOLS = ("bulkcopy", "aws", "boto3")
PEERS = ("aws", "boto3")


class ToolError(Exception):
    """A tool is missing, or a run of it failed."""


@dataclass(frozen=True, slots=True)
class Copy:
    """One object to copy: ``s3://src/key`` to ``s3://dst/<tool>/key``."""

    endpoint_url: str
    src: str
    key: str
    dst: str

    def dst_key(self, tool: str) -> str:
        return f"{tool}/{self.key}"


@dataclass(frozen=True, slots=True)
class BulkcopyOptions:
    """bulkcopy's multipart settings; ``None`` leaves bulkcopy's default."""

    part_size: str | None = None
    multipart_threshold: str | None = None
    part_concurrency: int | None = None

    def args(self) -> list[str]:
        args = []
        if self.multipart_threshold:
            args += ["--multipart-threshold", self.multipart_threshold]
        if self.part_size:
            args += ["--part-size", self.part_size]
        if self.part_concurrency:
            args += ["--part-concurrency", str(self.part_concurrency)]
        return args


@dataclass(frozen=True, slots=True)
class Timed:
    wall: float  # seconds
    cpu: float  # user + system seconds of the tool's process (and its children)


def environment(workdir: Path) -> dict[str, str]:
    """This environment without the user's AWS settings, with test credentials."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKCOPY_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(REPO),
    )
    return env


def peer_binary(venv: Path, name: str) -> Path:
    path = venv / "bin" / name
    if not path.exists():
        raise ToolError(f"{path} not found: run `bash bench/peers.sh` first")
    return path


def command(
    tool: str, job: Copy, workdir: Path, venv: Path, options: BulkcopyOptions
) -> list[str]:
    """The command line that copies ``job`` with ``tool``."""
    dst_key = job.dst_key(tool)
    if tool == "bulkcopy":
        manifest = workdir / "manifest.csv"
        manifest.write_text(f"{job.src},{quote(job.key, safe='/')}\n")
        return [
            sys.executable,
            "-m",
            "engine",
            "copy",
            str(manifest),
            "--to",
            f"s3://{job.dst}/{tool}/",
            "--db",
            str(workdir / "bc.db"),
            "--endpoint-url",
            job.endpoint_url,
            "--addressing-style",
            "path",
            "--no-progress",
            "-q",
            *options.args(),
        ]
    if tool == "aws":
        return [
            str(peer_binary(venv, "aws")),
            "s3",
            "cp",
            f"s3://{job.src}/{job.key}",
            f"s3://{job.dst}/{dst_key}",
            "--endpoint-url",
            job.endpoint_url,
            "--only-show-errors",
        ]
    if tool == "boto3":
        return [
            str(peer_binary(venv, "python")),
            str(PEER_TOOLS),
            "copy",
            "--endpoint-url",
            job.endpoint_url,
            job.src,
            job.key,
            job.dst,
            dst_key,
        ]
    raise ToolError(f"unknown tool {tool!r} (known: {', '.join(TOOLS)})")


def run(argv: list[str], env: dict[str, str], log: Path, timeout: float) -> Timed:
    """Run ``argv`` to the end; its wall time and CPU time (``RUSAGE_CHILDREN``
    deltas: no other child of this process ends meanwhile)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            argv,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ToolError(f"{argv[0]} exited with {proc.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu)


def describe(
    tools: list[str], env: dict[str, str], venv: Path, options: BulkcopyOptions
) -> dict[str, dict[str, Any]]:
    """Each tool's version and the multipart settings it copies with."""
    found: dict[str, dict[str, Any]] = {}
    if "bulkcopy" in tools:
        version = subprocess.run(
            [sys.executable, "-m", "engine", "--version"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        found["bulkcopy"] = {
            "version": version,
            "part_size": options.part_size or "128MiB (default)",
            "part_concurrency": options.part_concurrency or "16 (default)",
            "multipart_threshold": options.multipart_threshold or "5GiB (default)",
        }
    if any(t in PEERS for t in tools):
        out = subprocess.run(
            [str(peer_binary(venv, "python")), str(PEER_TOOLS), "describe"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        peers = json.loads(out)
        found.update({t: peers[t] for t in tools if t in PEERS})
    return found
