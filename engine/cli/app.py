"""The ``bulkcopy`` command group and the options its commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from engine import __version__
from engine.domain.units import parse_size
from engine.run.settings import MAX_CONCURRENCY

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
  0    every task succeeded
  1    the job finished, some tasks failed or were skipped (archived
       objects; see `bulkcopy report`)
  2    usage or input error (bad option, malformed manifest, unknown job)
  3    the job could not start (bucket missing, no access, no credentials,
       database unusable or lost for more than two minutes)
  130  stopped by Ctrl-C / SIGTERM before every task finished; resume it
"""

HELP = f"""Copy millions of S3 objects server-side, from a manifest, resumably.

\b
  bulkcopy copy manifests/example.csv --to s3://dst-bucket/prefix/
  bulkcopy move manifests/example.csv --to s3://dst-bucket/prefix/  # copy, delete
  bulkcopy status JOB_ID
  bulkcopy report JOB_ID --out reports/
  bulkcopy resume JOB_ID              # after Ctrl-C, kill -9, power loss

Or in two steps: `bulkcopy submit MANIFEST --to s3://BUCKET[/PREFIX]` prints
the job id; `bulkcopy run JOB_ID` copies.  Jobs live in a database: the SQLite
file ./bulkcopy.db unless --db or BULKCOPY_DB says otherwise.

S3 endpoint and credentials come from the standard AWS chain (AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3, instance roles, ...).

{EXIT_CODES}"""


@click.group(
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="bulkcopy")
def cli() -> None:
    pass


class Size(click.ParamType):  # type: ignore[type-arg]  # generic only in click>=8.2
    """A byte count: ``5242880``, ``5MiB``, ``128M``, ``5GB`` (K/M/G/T are binary)."""

    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SIZE = Size()


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        envvar="BULKCOPY_DB",
        metavar="URL",
        help="Job database: an SQLite path or an SQLAlchemy URL "
        "[env BULKCOPY_DB; default ./bulkcopy.db].",
    )(f)


def log_options(f: F) -> F:
    f = click.option(
        "--log-format",
        type=click.Choice(["auto", "text", "json"]),
        default="auto",
        show_default=True,
        help="Log lines on stderr; auto is JSON when not on a terminal.",
    )(f)
    f = click.option("-v", "--verbose", count=True, help="Also log retries.")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")(f)
    return f


def client_options(f: F) -> F:
    f = click.option(
        "--endpoint-url",
        metavar="URL",
        help="S3 endpoint (default: the AWS chain, e.g. AWS_ENDPOINT_URL_S3).",
    )(f)
    f = click.option("--region", metavar="NAME", help="AWS region.")(f)
    f = click.option(
        "--profile", metavar="NAME", help="AWS profile from ~/.aws/config."
    )(f)
    f = click.option(
        "--addressing-style",
        type=click.Choice(["auto", "path", "virtual"]),
        help="Bucket addressing; S3-compatible servers often need 'path'.",
    )(f)
    f = click.option(
        "--signature-version",
        type=click.Choice(["s3v4", "s3"]),
        help="Request signing: s3v4 (default) or s3 (V2, for old S3-compatible "
        "stores).",
    )(f)
    f = click.option(
        "--content-md5",
        is_flag=True,
        default=None,
        help="Send Content-MD5 on requests with a body (IBM COS buckets with "
        "Immutable Object Storage require it), streamed bodies included: "
        "without it, a stream leaves the MD5 out where a CRC is checked at "
        "both ends.",
    )(f)
    f = click.option(
        "--lean-copy/--no-lean-copy",
        default=None,
        help="CopyObject (and HEADs, deletes, streamed reads and writes, "
        "listing pages) through bulkcopy's lean request path (default: "
        "botocore's request, signed and parsed at a tenth of the CPU; anything "
        "it does not handle goes to botocore) or through botocore itself "
        "(--no-lean-copy, the reference path). Also BULKCOPY_LEAN_COPY=0/1.",
    )(f)
    return f


def source_client_options(f: F) -> F:
    """How to reach the sources when another service (or identity) holds them:
    the copies are then streamed (``--transfer``)."""
    f = click.option(
        "--source-endpoint-url",
        metavar="URL",
        help="S3 endpoint of the sources, when not the destination's: "
        "another service (Ceph, MinIO, IBM COS, another region's endpoint). "
        "Objects are then read from it and written to the destination "
        "(--transfer).",
    )(f)
    f = click.option(
        "--source-region", metavar="NAME", help="AWS region of the sources."
    )(f)
    f = click.option(
        "--source-profile",
        metavar="NAME",
        help="AWS profile the sources are read with (its credentials, and "
        "its endpoint_url if it has one): another account or service.",
    )(f)
    f = click.option(
        "--source-addressing-style",
        type=click.Choice(["auto", "path", "virtual"]),
        help="Bucket addressing at the source's endpoint.",
    )(f)
    return f


def run_options(f: F) -> F:
    f = click.option(
        "--concurrency",
        "-c",
        type=click.IntRange(1, 4096),
        default=None,
        metavar="N",
        help="Requests in flight, fixed at N. Default: adaptive — start at 64 "
        "and double while more in flight brings more copies a second (S3 far "
        "away; fourfold while the requests take no longer for it), settle "
        "where it no longer does (CPU, server or network bound), up to "
        "--max-concurrency; halve when S3 throttles.",
    )(f)
    f = click.option(
        "--max-concurrency",
        type=click.IntRange(1, 4096),
        default=MAX_CONCURRENCY,
        show_default=True,
        metavar="N",
        help="The most requests in flight adaptive concurrency may climb to "
        "(each on a connection of its own).",
    )(f)
    f = click.option(
        "--max-attempts",
        type=click.IntRange(1, 100),
        default=5,
        show_default=True,
        help="Attempts per object before it is recorded as failed "
        "(on top of the SDK's own retries).",
    )(f)
    f = click.option(
        "--part-concurrency",
        type=click.IntRange(1, 1024),
        default=16,
        show_default=True,
        help="UploadPartCopy requests in flight across all large objects; "
        "capped apart from --concurrency so one huge object cannot starve "
        "small ones, nor the reverse.",
    )(f)
    f = click.option(
        "--no-preflight",
        is_flag=True,
        help="Skip the bucket existence and access checks.",
    )(f)
    f = click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar (default: on a terminal).",
    )(f)
    f = click.option(
        "--min-concurrency",
        type=click.IntRange(1, 4096),
        default=1,
        show_default=True,
        metavar="N",
        help="When S3 throttles (SlowDown, 503), the requests in flight halve, "
        "down to N, and climb back one at a time while requests succeed.",
    )(f)
    f = click.option(
        "--max-rps",
        type=click.FloatRange(0.1, None),
        default=None,
        metavar="N",
        help="Start at most N S3 requests a second (all kinds, this process).",
    )(f)
    f = click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        default=None,
        metavar="PORT",
        help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics while "
        "running (tasks, bytes, retries, throttles, errors by code, durations).",
    )(f)
    f = click.option(
        "--metrics-textfile",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="PATH",
        help="Write the same metrics to PATH (node exporter's textfile "
        "collector) every 10 s and at the end: for cron jobs and short runs.",
    )(f)
    f = click.option(
        "--fail-after",
        type=click.IntRange(0),
        default=1000,
        show_default=True,
        metavar="N",
        help="Give up on the job (status failed) once N tasks finished in this "
        "run and more than --fail-ratio of them failed; 0: never.",
    )(f)
    f = click.option(
        "--fail-ratio",
        type=click.FloatRange(0, 100),
        default=50.0,
        show_default=True,
        metavar="PERCENT",
        help="See --fail-after.",
    )(f)
    f = click.option(
        "--fail-burst",
        type=click.IntRange(0),
        default=100,
        show_default=True,
        metavar="N",
        help="Give up on the job when N tasks in a row fail with the same "
        "permanent error (AccessDenied, a KMS error, ...); 0: never. Fix the "
        "cause, then `bulkcopy resume JOB_ID` carries on.",
    )(f)
    return f
