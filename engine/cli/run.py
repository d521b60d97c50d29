"""``bulkcopy run`` / ``bulkcopy resume``: execute a submitted job."""

from __future__ import annotations

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
from engine.cli.common import open_repo, run_job, setup

RUN_HELP = f"""Run job JOB_ID until every task has a result.

Copies only tasks without a final result, so it also resumes a job stopped by
Ctrl-C, SIGTERM, kill -9 or a power loss.  Other workers may share the job
(`bulkcopy worker`, another run): this one claims tasks beside them and, with
nothing left to claim, waits for their last tasks (or takes them over once
their lease expires).  Ctrl-C once finishes the requests
in flight and records them; twice stops at once.  The endpoint and client
options default to those the job was submitted with.

{EXIT_CODES}"""


def _run(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    job = repo.get_job(opts["job_id"])
    raise SystemExit(run_job(repo, job, opts))


cli.command("run", help=RUN_HELP)(
    click.argument("job_id")(
        run_options(client_options(source_client_options(db_option(log_options(_run)))))
    )
)
