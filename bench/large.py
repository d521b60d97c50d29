"""Large-object benchmark: one multi-GiB object copied server-side by bulkcopy,
``aws s3 cp`` and boto3's managed ``client.copy()``, against one fake endpoint.

    bash bench/peers.sh                  # once: aws-cli and boto3 in their own venv
    python bench/large.py                # 20 GiB, 3 rounds, 5 ms latency, 1 GiB/s

fakes3 runs as a process of its own with injected latency and a per-request
copy bandwidth, so a part of n bytes takes ``latency + n / bandwidth`` and wall
time depends on the part size and on how many parts a tool keeps in flight.
Each round runs every tool once (the order rotates from round to round) after
zeroing the endpoint's counters; each run is checked with a HEAD of its copy.
The source carries user metadata, a Content-Type and a tag, and the table says
whether each copy kept them.  Prints a table; writes the runs to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a file (python bench/large.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench import endpoint, summary, tools
from bench.endpoint import FakeS3Process
from bench.summary import Run
from bench.tools import BulkcopyOptions, Copy, ToolError
from bench.units import format_size, parse_size

SRC, DST, KEY = "src", "dst", "large/object.bin"
METADATA = {"owner": "bench"}
TAGS = {"project": "bulkcopy-bench"}
CONTENT_TYPE = "application/x-tar"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "large.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--size", default="20GiB", help="size of the object copied")
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool")
    p.add_argument(
        "--tools",
        default=",".join(tools.TOOLS),
        help=f"comma-separated, from {', '.join(tools.TOOLS)}",
    )
    p.add_argument(
        "--latency-ms", type=float, default=5.0, help="fakes3: added to every request"
    )
    p.add_argument(
        "--copy-bandwidth",
        default="1GiB/s",
        help="fakes3: per-request copy speed (a part of n bytes takes n/bandwidth)",
    )
    p.add_argument("--part-size", help="bulkcopy --part-size (default: bulkcopy's)")
    p.add_argument(
        "--multipart-threshold",
        help="bulkcopy --multipart-threshold (default: bulkcopy's, 5GiB)",
    )
    p.add_argument(
        "--part-concurrency",
        type=int,
        help="bulkcopy --part-concurrency (default: bulkcopy's, 16)",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write results here")
    p.add_argument(
        "--peers-venv", type=Path, default=tools.PEERS_VENV, help="aws-cli and boto3"
    )
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed for one run"
    )
    args = p.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(tools.TOOLS)
    if unknown or not args.tools:
        p.error(f"--tools: unknown {sorted(unknown)}; known: {', '.join(tools.TOOLS)}")
    try:
        args.size_bytes = parse_size(args.size)
        parse_size(args.copy_bandwidth)
    except ValueError as exc:
        p.error(str(exc))
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def check_copy(client: Any, key: str, size: int) -> tuple[bool, bool, bool]:
    """Whether the copy at ``key`` has the source's size, metadata and tags."""
    head = client.head_object(Bucket=DST, Key=key)
    tag_set = client.get_object_tagging(Bucket=DST, Key=key)["TagSet"]
    return (
        int(head["ContentLength"]) == size,
        head.get("Metadata") == METADATA and head.get("ContentType") == CONTENT_TYPE,
        {t["Key"]: t["Value"] for t in tag_set} == TAGS,
    )


@dataclass(frozen=True, slots=True)
class Bench:
    """What every run shares."""

    args: argparse.Namespace
    job: Copy
    server: FakeS3Process
    client: Any  # boto3, to reset and check the copies
    workdir: Path
    env: dict[str, str]


def one_run(ctx: Bench, tool: str, round_no: int) -> Run:
    """Copy with ``tool`` once: counters zeroed, timed, checked by a HEAD."""
    args, job = ctx.args, ctx.job
    ctx.client.delete_object(Bucket=DST, Key=job.dst_key(tool))
    argv = tools.command(
        tool, job, ctx.workdir, args.peers_venv, bulkcopy_options(args)
    )
    ctx.server.reset_stats()
    log = ctx.workdir / f"{tool}-{round_no}.log"
    timed = tools.run(argv, ctx.env, log, args.timeout)
    stats = ctx.server.stats()
    size_ok, metadata_kept, tags_kept = check_copy(
        ctx.client, job.dst_key(tool), args.size_bytes
    )
    return Run(
        tool=tool,
        round=round_no,
        wall_s=round(timed.wall, 3),
        client_cpu_s=round(timed.cpu, 3),
        server_cpu_s=round(stats["cpu_seconds"], 3),
        parts=stats["requests"].get("UploadPartCopy", 0),
        max_parts_in_flight=stats["max_in_flight"].get("UploadPartCopy", 0),
        copy_objects=stats["requests"].get("CopyObject", 0),
        requests=stats["requests_total"],
        size_ok=size_ok,
        metadata_kept=metadata_kept,
        tags_kept=tags_kept,
    )


def bulkcopy_options(args: argparse.Namespace) -> BulkcopyOptions:
    return BulkcopyOptions(
        part_size=args.part_size,
        multipart_threshold=args.multipart_threshold,
        part_concurrency=args.part_concurrency,
    )


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = tools.environment(workdir)
    described = tools.describe(args.tools, env, args.peers_venv, bulkcopy_options(args))
    fakes3_args = [
        "--latency-ms",
        str(args.latency_ms),
        "--copy-bandwidth",
        args.copy_bandwidth,
        "--bucket",
        DST,
    ]
    runs: list[Run] = []
    with FakeS3Process(fakes3_args, log=workdir / "fakes3.log") as server:
        server.seed(
            {
                "bucket": SRC,
                "key": KEY,
                "size": args.size_bytes,
                "metadata": METADATA,
                "tags": TAGS,
                "content_type": CONTENT_TYPE,
            }
        )
        shared = Bench(
            args,
            Copy(server.url, SRC, KEY, DST),
            server,
            endpoint.client(server.url),
            workdir,
            env,
        )
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(args.tools)
            for tool in args.tools[shift:] + args.tools[:shift]:
                run = one_run(shared, tool, round_no)
                print(
                    f"round {round_no} {tool}: {run.wall_s:.2f}s, "
                    f"{run.parts} parts, {run.max_parts_in_flight} in flight",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run)
    per_tool = summary.summarize(runs, args.size_bytes)
    for tool, info in described.items():
        per_tool[tool]["config"] = info
    return {
        "benchmark": "large-object server-side copy",
        "command": " ".join(["python", "bench/large.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "size": args.size_bytes,
            "size_human": format_size(args.size_bytes),
            "rounds": args.rounds,
            "latency_ms": args.latency_ms,
            "copy_bandwidth": args.copy_bandwidth,
            "tools": args.tools,
        },
        "tools": per_tool,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
            result = run_bench(args, Path(tmp))
    except ToolError as exc:
        print(f"large.py: {exc}", file=sys.stderr)
        return 1
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    s = result["settings"]
    print(
        f"{s['size_human']} object, {s['rounds']} rounds, fakes3 latency "
        f"{s['latency_ms']:g} ms, copy bandwidth {s['copy_bandwidth']} per request"
    )
    print(summary.table(result["tools"]))
    print(f"(wall s: median over rounds; results in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
