"""``bulkcopy verify``: check the recorded copies of a job against their sources."""

from __future__ import annotations

from typing import Any

import click
import structlog

from engine.cli.app import (
    cli,
    client_options,
    db_option,
    log_options,
    source_client_options,
)
from engine.cli.common import client_overrides, open_repo, setup, source_overrides
from engine.run import loop
from engine.run.jobclient import open_job_client, open_source
from engine.usecases.verify import verify_job

log = structlog.get_logger("bulkcopy")


@cli.command(
    "verify",
    help="""Check every succeeded copy of job JOB_ID against its source.

Compares size, the ETag where both ETags mean the same thing (else a checksum
both objects carry), user metadata, content headers and tags. A copy that
differs, or that can no longer be read, is recorded as failed with
VerificationFailed and the difference; `bulkcopy report` then lists it.

Exit code 0 when every copy matches, 1 when some do not.
""",
)
@click.argument("job_id")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1024),
    default=32,
    show_default=True,
    help="Objects checked at once.",
)
@client_options
@source_client_options
@db_option
@log_options
def verify_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    job = repo.get_job(opts["job_id"])
    spec = job.spec
    settings = client_overrides(spec.client, **opts)
    source = source_overrides(spec.source_client, **opts)

    async def go() -> tuple[int, list[tuple[int, str, str]]]:
        async with (
            open_job_client(spec, settings) as (client, requests),
            open_source(spec, client, source) as reader,
        ):
            return await verify_job(
                client,
                repo,
                job.id,
                opts["concurrency"],
                requests.keys,
                source_client=reader.client,
            )

    checked, failures = loop.run(go())
    for task_id, _code, message in failures[:20]:
        log.warning("verification_failed", task=task_id, detail=message)
    log.info("verify_done", job_id=job.id, checked=checked, mismatched=len(failures))
    click.echo(
        f"verified {checked} copies: {checked - len(failures)} match, "
        f"{len(failures)} differ"
    )
    raise SystemExit(1 if failures else 0)
