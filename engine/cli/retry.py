"""``bulkcopy retry``: a new job from the failures of an earlier one."""

from __future__ import annotations

from typing import Any

import click
import structlog

from engine.cli.app import cli, db_option, log_options
from engine.cli.common import open_repo, setup
from engine.domain.models import Destination, TaskStatus
from engine.run import loop
from engine.usecases.earlier_job import job_source
from engine.usecases.submit import submit_source

log = structlog.get_logger("bulkcopy")


@cli.command(
    "retry",
    help="""Create a new job from the failed tasks of job JOB_ID; print its id.

The new job copies the same source objects to the same destination keys with
the same options.  Rows that were malformed in the old job's manifest are left
out (fix the manifest instead).  --skipped also takes the tasks that were
skipped (e.g. archived objects restored since); --pending the tasks a
cancelled job never started.  Run it with `bulkcopy run` or `bulkcopy worker`.
""",
)
@click.argument("job_id")
@click.option(
    "--failed/--no-failed",
    default=True,
    show_default=True,
    help="Take the failed tasks.",
)
@click.option("--skipped", is_flag=True, help="Also take the skipped tasks.")
@click.option(
    "--pending",
    is_flag=True,
    help="Also take the tasks never started (of a cancelled job).",
)
@db_option
@log_options
def retry_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    old = repo.get_job(opts["job_id"])
    statuses = tuple(
        s
        for s, wanted in (
            (TaskStatus.FAILED, opts["failed"]),
            (TaskStatus.SKIPPED, opts["skipped"]),
            (TaskStatus.PENDING, opts["pending"]),
        )
        if wanted
    )
    if not statuses:
        raise click.UsageError(
            "nothing to retry: give --failed, --skipped or --pending"
        )
    spec = old.spec
    destination = Destination(old.dst_bucket, old.dst_prefix)
    job = loop.run(submit_source(repo, job_source(old, statuses), destination, spec))
    log.info(
        "job_submitted",
        job_id=job.id,
        retry_of=old.id,
        tasks=job.total_tasks,
        destination=f"s3://{job.dst_bucket}/{job.dst_prefix}",
    )
    click.echo(job.id)
