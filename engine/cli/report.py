"""``bulkcopy report``: write the completion report of a job."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.app import cli, db_option
from engine.usecases.report import write_report


@cli.command(
    "report",
    help="""Write the completion report of job JOB_ID under --out.

\b
OUT/job-<id>/manifest.json          S3 Batch Operations format Report_CSV_20180820
OUT/job-<id>/results/succeeded.csv  Bucket, Key, VersionId, TaskStatus, ErrorCode,
OUT/job-<id>/results/failed.csv       HTTPStatusCode, ResultMessage (keys URL-encoded)
OUT/job-<id>/results.jsonl          every recorded field of every task
OUT/job-<id>/summary.txt            the summary, also printed here
""",
)
@click.argument("job_id")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Report directory.",
)
@click.option("--failed-only", is_flag=True, help="Only failed tasks.")
@db_option
def report_cmd(job_id: str, out: Path, failed_only: bool, db: str | None) -> None:
    from engine.cli.common import open_repo

    repo = open_repo(db)
    files = write_report(repo, job_id, out, failed_only=failed_only)
    click.echo(files.summary.read_text(encoding="utf-8"), nl=False)
    click.echo(f"report     {files.directory}/", err=False)
