"""``bulkcopy worker``: join jobs in a shared job database and copy their tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from engine.cli.app import (
    cli,
    client_options,
    db_option,
    log_options,
    run_options,
    source_client_options,
)
from engine.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    MetricsSink,
    exit_code,
    log,
    log_errors,
    make_worker,
    open_repo,
    setup,
)
from engine.cli.render import Renderer
from engine.domain.liveness import LEASE_SECONDS
from engine.domain.models import JobStatus
from engine.domain.records import JobRecord
from engine.run import loop
from engine.run.scheduler import Outcome, Plan, Scheduler
from engine.run.signals import stop_on_signals
from engine.run.worker import Worker

WORKER_HELP = """Work on the jobs in the job database, alongside other workers.

\b
  bulkcopy worker --db postgresql://bulkcopy@db/bulkcopy
  bulkcopy worker --db "$DB" --job JOB_ID      # only this job, until it is done
  bulkcopy worker --db "$DB" --follow          # keep waiting for new jobs

Run as many worker processes, on as many hosts, as the buckets can take: they
share the job table (PostgreSQL for several hosts; an SQLite file serves the
processes of one host).  Each worker claims tasks in batches under a lease it
keeps extending; a worker that dies (kill -9, lost host) leaves its tasks to
the others once the lease (--lease, default 120 s) runs out.

Without --job a worker joins the submitted and running jobs by priority
(`submit --priority`), then age, and leaves when none has work left (with
--follow it waits for new ones).  With --job it works on those jobs only and
stays until each is done, also while one is paused or still being submitted.
`bulkcopy pause|resume|cancel JOB_ID` reach every worker within a second or
two.  SIGTERM / Ctrl-C: finish the copies in flight, record them, leave.

\b
Exit codes:
  0    no work left for this worker (with --job: every task of the jobs
       succeeded; 1 if some failed or were skipped, or a job was cancelled)
  2    usage error (bad option, unknown job)
  3    the database cannot be used, or a job cannot start
  130  stopped by SIGTERM / Ctrl-C before its work was done
"""


@cli.command("worker", help=WORKER_HELP)
@click.option(
    "--job",
    "job_ids",
    multiple=True,
    metavar="JOB_ID",
    help="Work on this job only (repeatable); default: any runnable job.",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Leave after working on this many jobs (0: no limit).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="When no job is runnable, wait for new ones instead of leaving "
    "(a long-running service).",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="Seconds between looks for work while there is none.",
)
@click.option(
    "--lease",
    type=click.FloatRange(5),
    default=LEASE_SECONDS,
    show_default=True,
    help="Seconds a claim lasts without a heartbeat; a dead worker's tasks "
    "go to others after this.",
)
@run_options
@client_options
@source_client_options
@db_option
@log_options
def worker_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    if opts["progress"] is None:
        opts["progress"] = False  # a worker is a service: log lines
    repo = open_repo(opts["db"])
    job_ids = tuple(repo.get_job(j).id for j in opts["job_ids"])  # unknown: exit 2
    plan = Plan(
        job_ids=job_ids,
        max_jobs=opts["max_jobs"],
        follow=opts["follow"],
        poll=opts["poll"],
    )

    sinks: list[MetricsSink] = []

    async def go() -> Outcome:
        with Renderer(progress=opts["progress"]) as renderer:
            sink = MetricsSink(opts, renderer)
            sinks.append(sink)

            def new_worker(
                job: JobRecord, other_work: Callable[[str], bool] | None
            ) -> Worker:
                return make_worker(
                    repo, job, opts, sink, other_work, stop_marks_job=False
                )

            scheduler = Scheduler(repo, plan, new_worker, renderer)
            with stop_on_signals(scheduler):
                return await scheduler.run()

    try:
        outcome = loop.run(go())
    finally:
        for sink in sinks:
            sink.write()
    log.info(
        "worker_finished",
        jobs=[job_id for job_id, _ in outcome.jobs],
        stopped=outcome.stopped,
    )
    if outcome.stopped:
        raise SystemExit(EXIT_INTERRUPTED)
    if job_ids:
        for j in job_ids:
            log_errors(repo, j, repo.counts(j))
        codes = [
            EXIT_SOME_FAILED
            if repo.job_status(j) in (JobStatus.CANCELLED, JobStatus.FAILED)
            else exit_code(repo.counts(j))
            for j in job_ids
        ]
        raise SystemExit(max(codes, default=EXIT_OK))
    raise SystemExit(EXIT_OK)
