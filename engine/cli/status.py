"""``bulkcopy status`` and ``bulkcopy jobs``: what the job table says."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from engine.cli.app import cli, db_option
from engine.domain.models import JobCounts, TaskStatus
from engine.domain.records import JobRecord, WorkerRecord
from engine.run.peers import is_live
from engine.usecases.report import errors_by_code, human_bytes


def worker_dicts(found: list[WorkerRecord], now: float) -> list[dict[str, Any]]:
    """Each worker of the job: where it runs, what it did, how fast, and
    whether it is live (not stopped, heartbeats coming, its process there
    when it runs on this host)."""
    out = []
    for w in found:
        end = w.stopped_at or now
        elapsed = end - w.started_at
        out.append(
            {
                "id": w.id,
                "host": w.hostname,
                "pid": w.pid,
                "live": is_live(w, now),
                "state": w.state,
                # requests in flight it allows now (lower: S3 throttled it)
                "concurrency": w.concurrency,
                "tasks_done": w.tasks_done,
                "bytes_done": w.bytes_done,
                "objects_per_second": (
                    round(w.tasks_done / elapsed, 2) if elapsed > 0 else None
                ),
                "started_at": datetime.fromtimestamp(w.started_at, UTC).isoformat(),
                "heartbeat_age_seconds": round(now - w.heartbeat_at, 1),
            }
        )
    return out


def status_dict(
    job: JobRecord,
    counts: JobCounts,
    now: float,
    found: list[WorkerRecord] | None = None,
    errors: dict[str, dict[str, int]] | None = None,
    uploads_left_open: int = 0,
) -> dict[str, Any]:
    """Everything ``status --json`` prints; rate and ETA from this run's pace."""
    rate = None
    bytes_rate = None
    eta = None
    since = job.run_started_at or counts.first_started_at
    if since and counts.last_finished_at:
        elapsed = (
            max(
                counts.last_finished_at,
                now if job.status.value == "running" else counts.last_finished_at,
            )
            - since
        )
        if elapsed > 0:
            rate = counts.finished / elapsed
            bytes_rate = counts.bytes_done / elapsed
            if rate > 0 and counts.remaining:
                eta = counts.remaining / rate
    return {
        "job_id": job.id,
        "status": job.status.value,
        "message": job.message,
        "manifest": job.manifest,
        "destination": f"s3://{job.dst_bucket}/{job.dst_prefix}",
        "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
        "tasks": counts.total,
        "counts": {s.value: counts.get(s) for s in TaskStatus},
        "bytes": counts.bytes_done,
        # a move (--delete-source): None for a copy job
        "sources_deleted": counts.sources_deleted
        if job.spec.copy.delete_source
        else None,
        "objects_per_second": round(rate, 2) if rate is not None else None,
        "bytes_per_second": round(bytes_rate) if bytes_rate is not None else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "duplicate_rows": job.duplicate_rows,
        "invalid_rows": job.invalid_rows,
        "filtered_rows": job.filtered_rows,
        "source": job.source,
        # while the manifest is being read: rows read so far and where
        "ingest": job.ingest_state,
        "priority": job.priority,
        "workers": worker_dicts(found or [], now),
        # error codes of the failed and skipped tasks: {"failed": {code: n}}
        "errors": errors or {},
        # multipart uploads of ended tasks whose abort failed (the next run
        # aborts them; `bulkcopy cleanup` too)
        "uploads_left_open": uploads_left_open,
    }


# a job in one of these may still change; --watch stops at any other
_MOVING = ("ingesting", "submitted", "running", "paused")


@cli.command(
    "status",
    help="Counts by status, bytes, rate and ETA of job JOB_ID, its live "
    "workers, and the failed and skipped tasks by error code.",
)
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option(
    "--all-workers", is_flag=True, help="List stopped workers too, not only live ones."
)
@click.option(
    "--watch",
    is_flag=True,
    help="Show it again every --every seconds until the job is no longer "
    "running or paused (Ctrl-C leaves). With --json: one line each time.",
)
@click.option(
    "--every",
    type=click.FloatRange(0.2),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: seconds between updates.",
)
@db_option
def status_cmd(
    job_id: str,
    as_json: bool,
    all_workers: bool,
    watch: bool,
    every: float,
    db: str | None,
) -> None:
    from engine.cli.common import open_repo

    repo = open_repo(db)
    job = repo.get_job(job_id)
    while True:
        job = repo.get_job(job.id)
        data = status_dict(
            job,
            repo.counts(job.id, sources_deleted=job.spec.copy.delete_source),
            time.time(),
            repo.workers_of(job.id),
            errors_by_code(repo, job.id),
            len(repo.open_uploads(job.id, of_final_tasks=True)),
        )
        if watch and not as_json and sys.stdout.isatty():
            click.clear()
        _show(data, job, as_json, all_workers)
        if not watch or data["status"] not in _MOVING:
            return
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return


def _show(
    data: dict[str, Any], job: JobRecord, as_json: bool, all_workers: bool
) -> None:
    if as_json:
        click.echo(json.dumps(data), nl=True)
        sys.stdout.flush()
        return
    click.echo(f"job        {data['job_id']}  ({data['status']})")
    if data["message"]:
        click.echo(f"message    {data['message']}")
    click.echo(f"manifest   {data['manifest']}")
    click.echo(f"to         {data['destination']}")
    click.echo(f"tasks      {data['tasks']}")
    if job.ingest_state is not None:
        read = job.ingest_state.get("totals", {}).get("read", 0)
        click.echo(
            f"ingest     {read:,} manifest rows read so far; the same submit "
            f"command (or `bulkcopy run {job.id}`) finishes it"
        )
    for name, n in data["counts"].items():
        click.echo(f"  {name:<10} {n}")
    click.echo(f"copied     {human_bytes(data['bytes'])}")
    if data["sources_deleted"] is not None:
        click.echo(f"moved      {data['sources_deleted']} sources deleted")
    if data["objects_per_second"] is not None:
        click.echo(
            f"rate       {data['objects_per_second']} objects/s, "
            f"{human_bytes(data['bytes_per_second'] or 0)}/s"
        )
    if data["eta_seconds"] is not None:
        click.echo(f"eta        {data['eta_seconds']} s")
    live = [w for w in data["workers"] if w["live"]]
    if data["workers"]:
        click.echo(
            f"workers    {len(live)} live of {len(data['workers'])} "
            "(add --all-workers to list the stopped ones)"
            if len(live) < len(data["workers"]) and not all_workers
            else f"workers    {len(live)} live of {len(data['workers'])}"
        )
    for w in data["workers"] if all_workers else live:
        rate = w["objects_per_second"]
        click.echo(
            f"  {w['host']}:{w['pid']:<8} {w['state'] or '':<8} "
            f"{w['tasks_done']:>10,} done  "
            f"{(str(rate) + ' obj/s') if rate is not None else '':>14}  "
            f"{human_bytes(w['bytes_done'])}  "
            + (f"c={w['concurrency']}  " if w["concurrency"] is not None else "")
            + f"heartbeat {w['heartbeat_age_seconds']:g}s ago"
        )
    if data["uploads_left_open"]:
        click.echo(
            f"open       {data['uploads_left_open']} multipart upload(s) of ended "
            "tasks could not be aborted; the next run retries, or: bulkcopy "
            f"cleanup {data['destination']} --older-than 0s"
        )
    for status, codes in data["errors"].items():
        click.echo(f"{status} by error code")
        for code, n in codes.items():
            click.echo(f"  {code or '(none)':<28} {n:>10,}")


@cli.command("jobs", help="List jobs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, for scripts.")
@click.option("--limit", type=int, default=50, show_default=True)
@db_option
def jobs_cmd(as_json: bool, limit: int, db: str | None) -> None:
    from engine.cli.common import open_repo

    repo = open_repo(db)
    for job in repo.list_jobs(limit):
        row = {
            "job_id": job.id,
            "status": job.status.value,
            "tasks": job.total_tasks,
            "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
            "manifest": job.manifest,
            "destination": f"s3://{job.dst_bucket}/{job.dst_prefix}",
        }
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(
                f"{row['job_id']}  {row['status']:<9} {row['tasks']:>10} tasks  "
                f"{row['manifest']} -> {row['destination']}"
            )
