"""``bulkcopy cleanup``: abort stale multipart uploads under a destination prefix."""

from __future__ import annotations

from typing import Any

import click
import structlog

from engine.cli.app import cli, client_options, log_options
from engine.cli.common import client_overrides, setup
from engine.domain.errors import S3Error, UsageError
from engine.domain.models import Destination
from engine.domain.spec import ClientSettings
from engine.run import loop
from engine.s3.client import open_client
from engine.usecases.cleanup import abort_upload, parse_age, stale_uploads

log = structlog.get_logger("bulkcopy")


@cli.command(
    "cleanup",
    help="""Abort multipart uploads under s3://BUCKET[/PREFIX] older than --older-than.

An interrupted large copy keeps its upload so that `resume` can continue it;
uploads that will never be resumed cost storage until aborted. This lists them
(ListMultipartUploads) and aborts those initiated before the cut-off. Use
--dry-run to only list them. Exit code 1 if some could not be aborted.
""",
)
@click.argument("target", metavar="s3://BUCKET[/PREFIX]")
@click.option(
    "--older-than", default="24h", show_default=True, help="Age like 90s, 30m, 24h, 7d."
)
@click.option("--dry-run", is_flag=True, help="List, do not abort.")
@client_options
@log_options
def cleanup_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    dest = Destination.parse(opts["target"])
    try:
        age = parse_age(opts["older_than"])
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from exc
    settings = client_overrides(ClientSettings(), **opts)

    async def go() -> int:
        failed = 0
        async with open_client(settings) as client:
            uploads = await stale_uploads(client, dest.bucket, dest.prefix, age, None)
            for u in uploads:
                click.echo(f"{u.initiated.isoformat()}  {u.upload_id}  {u.key}")
                if opts["dry_run"]:
                    continue
                try:
                    await abort_upload(client, dest.bucket, u)
                except S3Error as err:
                    failed += 1
                    log.warning(
                        "abort_failed",
                        key=u.key,
                        upload_id=u.upload_id,
                        code=err.code,
                        detail=err.message,
                    )
            log.info(
                "cleanup_done",
                bucket=dest.bucket,
                prefix=dest.prefix,
                found=len(uploads),
                aborted=0 if opts["dry_run"] else len(uploads) - failed,
                dry_run=opts["dry_run"],
            )
        return 1 if failed else 0

    raise SystemExit(loop.run(go()))
