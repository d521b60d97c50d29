"""``bulkcopy pause`` / ``resume`` / ``cancel``: job-level control that every
worker of the job follows (they read the job's status every second or so)."""

from __future__ import annotations

import time
from typing import Any

import click

from engine.cli.app import (
    EXIT_CODES,
    cli,
    client_options,
    db_option,
    log_options,
    run_options,
    source_client_options,
)
from engine.cli.common import EXIT_INTERRUPTED, EXIT_OK, open_repo, run_job, setup
from engine.domain.errors import JobControlRefused, UsageError
from engine.domain.models import JobStatus, TaskStatus
from engine.run.peers import is_live
from engine.store import Repository

# what to do instead, where the status says more than "no"
_REFUSAL_HINTS = {
    ("pause", JobStatus.INGESTING.value): " (its manifest is still being read)",
    ("cancel", JobStatus.INGESTING.value): (
        " (its manifest is still being read: stop the submit, then submit "
        "again with --restart or leave it)"
    ),
    ("resume", JobStatus.CANCELLED.value): (
        " (a cancelled job stays cancelled: `bulkcopy retry` copies what it left)"
    ),
}


def refusal_message(exc: JobControlRefused) -> str:
    """The store's refusal, with what to do instead where that helps."""
    return str(exc) + _REFUSAL_HINTS.get((exc.action, exc.status), "")


def _control_job(
    repo: Repository, job_id: str, action: str
) -> tuple[JobStatus, JobStatus]:
    try:
        return repo.control_job(job_id, action)
    except JobControlRefused as exc:
        raise UsageError(refusal_message(exc)) from None


def _live_workers(repo: Repository, job_id: str) -> int:
    now = time.time()
    return sum(is_live(w, now) for w in repo.workers_of(job_id))


def _wait_until_quiet(repo: Repository, job_id: str, timeout: float) -> bool:
    """Wait until no task of the job is running; whether that happened."""
    deadline = time.monotonic() + timeout
    while repo.counts(job_id).get(TaskStatus.RUNNING):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _control(action: str, job_id: str, db: str | None, wait: float | None) -> None:
    repo = open_repo(db)
    job = repo.get_job(job_id)
    before, after = _control_job(repo, job.id, action)
    live = _live_workers(repo, job.id)
    if before is after:
        click.echo(f"job {job.id} is already {after.value}")
    else:
        click.echo(f"job {job.id}: {before.value} -> {after.value}")
    if live:
        click.echo(
            f"{live} live worker(s) will "
            + ("stop claiming" if action == "pause" else "leave")
            + " within a few seconds, after the copies in flight"
        )
    if wait is not None:
        if _wait_until_quiet(repo, job.id, wait):
            click.echo("no copy of the job is in flight any more")
        else:
            click.echo(f"copies still in flight after {wait:g}s", err=True)
            raise SystemExit(EXIT_INTERRUPTED)
    if action == "pause":
        click.echo(f"continue with: bulkcopy resume {job.id}")
    elif action == "cancel":
        counts = repo.counts(job.id)
        click.echo(
            f"{counts.get(TaskStatus.PENDING)} task(s) never started; copy them "
            f"in a new job with: bulkcopy retry {job.id} --pending"
        )
        kept = repo.open_uploads(job.id)
        if kept:
            # multipart copies interrupted earlier (a pause, a stop) keep
            # their uploads; workers abort only those they were running
            click.echo(
                f"{len(kept)} multipart upload(s) of interrupted copies are "
                f"open; abort them with: bulkcopy cleanup "
                f"s3://{job.dst_bucket}/{job.dst_prefix} --older-than 0s"
            )


def wait_option(f: Any) -> Any:
    return click.option(
        "--wait",
        type=click.FloatRange(0),
        default=None,
        metavar="SECONDS",
        is_flag=False,
        flag_value=600.0,
        help="Also wait (up to SECONDS, default 600) until no copy of the job "
        "is in flight; exit 130 if some still are.",
    )(f)


@cli.command(
    "pause",
    help="""Pause job JOB_ID on every worker.

Workers stop claiming tasks, hand back those they claimed but did not start,
finish the copies in flight (a multipart copy stops between parts and keeps
its upload) and wait.  `bulkcopy resume JOB_ID` continues.""",
)
@click.argument("job_id")
@wait_option
@db_option
def pause_cmd(job_id: str, wait: float | None, db: str | None) -> None:
    _control("pause", job_id, db, wait)


@cli.command(
    "cancel",
    help="""Cancel job JOB_ID on every worker, for good.

Workers stop claiming, finish the copies in flight, abort unfinished
multipart uploads and leave.  Tasks never started stay pending (and are not
in the report's results); `bulkcopy retry JOB_ID --pending` copies them in a
new job.""",
)
@click.argument("job_id")
@wait_option
@db_option
def cancel_cmd(job_id: str, wait: float | None, db: str | None) -> None:
    _control("cancel", job_id, db, wait)


RESUME_HELP = f"""Continue job JOB_ID after `bulkcopy pause`, Ctrl-C, kill -9, a crash.

A paused job is un-paused: if workers are waiting on it they carry on and
this command returns at once.  Otherwise the job runs here, like `bulkcopy
run` (tasks without a final result only).

{EXIT_CODES}"""


@cli.command("resume", help=RESUME_HELP)
@click.argument("job_id")
@run_options
@client_options
@source_client_options
@db_option
@log_options
def resume_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    job = repo.get_job(opts["job_id"])
    if job.status is JobStatus.PAUSED:
        _control_job(repo, job.id, "resume")
        live = _live_workers(repo, job.id)
        if live:
            click.echo(f"job {job.id} resumed: {live} live worker(s) carry on")
            raise SystemExit(EXIT_OK)
        job = repo.get_job(job.id)
    elif job.status is JobStatus.CANCELLED:
        _control_job(repo, job.id, "resume")  # raises: says why and what to do
    raise SystemExit(run_job(repo, job, opts))
