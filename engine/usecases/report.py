"""Completion reports: S3 Batch Operations-compatible CSV, a richer JSONL, a summary.

Layout under ``--out DIR`` (the shape S3 Batch Operations writes)::

    DIR/job-<id>/manifest.json            Format Report_CSV_20180820, lists the CSVs
    DIR/job-<id>/results/succeeded.csv    Bucket, Key, VersionId, TaskStatus,
    DIR/job-<id>/results/failed.csv         ErrorCode, HTTPStatusCode, ResultMessage
    DIR/job-<id>/results.jsonl            every recorded field of every task
    DIR/job-<id>/summary.txt              the one-screen summary
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from engine.domain.codes import DESTINATION_EXISTS as EXISTS
from engine.domain.codes import REMOVED
from engine.domain.models import JobCounts, TaskStatus
from engine.domain.records import JobRecord, ResultRow
from engine.manifest.filehash import md5_file
from engine.store import Repository

REPORT_FORMAT = "Report_CSV_20180820"
REPORT_SCHEMA = (
    "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def encode_key(key: str) -> str:
    """URL-encode a key the way manifests and reports carry it.

    ``unquote_plus`` (the manifest reader) gives the key back exactly.
    """
    return quote(key, safe="/")


def _csv_status(status: TaskStatus) -> str:
    """The TaskStatus an S3 Batch Operations report knows: a skipped task
    (not copied, with its reason) is reported failed (except an up-to-date
    destination, see :func:`bops_row`); results.jsonl says skipped."""
    return TaskStatus.FAILED.value if status is TaskStatus.SKIPPED else status.value


def bops_row(row: ResultRow) -> list[str]:
    """One completion-report CSV row, in the declared ``ReportSchema`` order.

    An object skipped because the destination already held it
    (``--skip-existing``) is there: ``succeeded``, with the reason as the
    message (results.jsonl says ``skipped``)."""
    if row.status is TaskStatus.SKIPPED and row.error_code == EXISTS:
        return [
            row.src.bucket,
            encode_key(row.src.key),
            row.src.version_id or "",
            TaskStatus.SUCCEEDED.value,
            "",
            "",
            row.error_message or "",
        ]
    ok = row.status is TaskStatus.SUCCEEDED
    return [
        row.src.bucket,
        encode_key(row.src.key),
        row.src.version_id or "",
        _csv_status(row.status),
        "" if ok else (row.error_code or ""),
        str(row.http_status) if row.http_status is not None else "",
        "Successful" if ok else (row.error_message or ""),
    ]


def jsonl_record(job_id: str, row: ResultRow) -> dict[str, Any]:
    """Every recorded field of one task, for ``results.jsonl``."""
    duration = (
        round(row.finished_at - row.started_at, 6)
        if row.finished_at is not None and row.started_at is not None
        else None
    )
    return {
        "job_id": job_id,
        "line": row.line,
        "source": {
            "bucket": row.src.bucket,
            "key": row.src.key,
            "version_id": row.src.version_id,
        },
        "destination": {"bucket": row.dst_bucket, "key": row.dst_key},
        "status": row.status.value,
        "attempts": row.attempts,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "http_status": row.http_status,
        "source_version_id": row.src_version_id,
        "destination_version_id": row.dst_version_id,
        "etag": row.etag,
        # the source's ETag the copy was pinned to (its HEAD before the copy)
        "source_etag": row.src_etag,
        "bytes": row.bytes,
        "method": row.method,
        "part_count": row.part_count,
        # a move (--delete-source): whether the source is gone, and when
        "source_deleted": row.delete_state in REMOVED
        if row.delete_state is not None
        else None,
        # deleted, gone (not found for its delete: deleted before the run that
        # recorded it was killed), kept (see the error), pending
        "delete_state": row.delete_state,
        "deleted_at": _iso(row.deleted_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "duration_s": duration,
    }


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _moved(job: JobRecord) -> bool:
    """A move's job (``--delete-source``)."""
    return job.spec.copy.delete_source


def summary_text(
    job: JobRecord, counts: JobCounts, errors: list[tuple[str, int]]
) -> str:
    """The one-screen summary of a job: what happened, what failed and why."""
    lines = [
        f"job        {job.id}  ({job.status.value})",
        f"manifest   {job.manifest}",
        f"to         s3://{job.dst_bucket}/{job.dst_prefix}",
        f"tasks      {counts.total}"
        + (
            f"  ({job.duplicate_rows} duplicate rows merged)"
            if job.duplicate_rows
            else ""
        ),
    ]
    for status in TaskStatus:
        n = counts.get(status)
        if n or status.final:
            lines.append(f"  {status.value:<10} {n}")
    lines.append(f"copied     {human_bytes(counts.bytes_done)}")
    if _moved(job):
        lines.append(f"moved      {counts.sources_deleted} sources deleted")
    if counts.first_started_at and counts.last_finished_at:
        elapsed = max(counts.last_finished_at - counts.first_started_at, 1e-9)
        lines.append(
            f"rate       {counts.finished / elapsed:.1f} objects/s, "
            f"{human_bytes(counts.bytes_done / elapsed)}/s"
        )
    if errors:
        lines.append("failures by error code:")
        lines.extend(f"  {code or '(none)':<24} {n}" for code, n in errors)
    if job.message:
        lines.append(f"note       {job.message}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    directory: Path
    manifest: Path
    csv_files: dict[str, Path]
    jsonl: Path
    summary: Path
    rows: int


def write_report(
    repo: Repository, job_id: str, out: Path, failed_only: bool = False
) -> ReportFiles:
    """Write the completion report of a job under ``out/job-<id>/``."""
    job = repo.get_job(job_id)
    base = out / f"job-{job.id}"
    results_dir = base / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    statuses = (
        [TaskStatus.FAILED]
        if failed_only
        else [TaskStatus.SUCCEEDED, TaskStatus.FAILED]
    )
    paths = {s.value: results_dir / f"{s.value}.csv" for s in statuses}
    wanted = (TaskStatus.FAILED, TaskStatus.SKIPPED) if failed_only else ()
    handles = {s: p.open("w", newline="", encoding="utf-8") for s, p in paths.items()}
    writers = {s: csv.writer(h, lineterminator="\n") for s, h in handles.items()}
    jsonl = base / "results.jsonl"
    rows = 0
    try:
        with jsonl.open("w", encoding="utf-8") as jf:
            for row in repo.iter_results(job.id, statuses=wanted):
                rows += 1
                jf.write(json.dumps(jsonl_record(job.id, row), ensure_ascii=False))
                jf.write("\n")
                line = bops_row(row)
                w = writers.get(line[3])  # an up-to-date skip is "succeeded"
                if w is not None:
                    w.writerow(line)
    finally:
        for h in handles.values():
            h.close()
    manifest = {
        "Format": REPORT_FORMAT,
        "ReportCreationDate": _iso(time.time()),
        "Results": [
            {
                "TaskExecutionStatus": status,
                "Bucket": "",
                "MD5Checksum": md5_file(path),
                "Key": f"job-{job.id}/results/{path.name}",
            }
            for status, path in paths.items()
        ],
        "ReportSchema": REPORT_SCHEMA,
    }
    manifest_path = base / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    summary = base / "summary.txt"
    summary.write_text(
        summary_text(
            job,
            repo.counts(job.id, sources_deleted=_moved(job)),
            repo.error_counts(job.id),
        ),
        encoding="utf-8",
    )
    return ReportFiles(base, manifest_path, paths, jsonl, summary, rows)


def errors_by_code(repo: Repository, job_id: str) -> dict[str, dict[str, int]]:
    """The failed and skipped tasks' error codes, most frequent first."""
    out = {}
    for status in (TaskStatus.FAILED, TaskStatus.SKIPPED):
        found = repo.error_counts(job_id, status=status)
        if found:
            out[status.value] = dict(found)
    return out
