"""An earlier job read back as a manifest (``bulkcopy retry``): its tasks of
some statuses, in its order, with their overrides."""

from __future__ import annotations

from collections.abc import Iterator

from engine.domain.codes import INVALID_ROW
from engine.domain.models import TaskStatus
from engine.domain.records import JobRecord
from engine.manifest.rows import BATCH_ROWS, Rows
from engine.manifest.sources import Source
from engine.store import Repository


def job_source(job: JobRecord, statuses: tuple[TaskStatus, ...]) -> Source:
    """The source of a job re-running ``job``'s tasks of ``statuses`` (versions
    of a key still copied oldest first when ``job`` copied all versions)."""
    return Source(
        kind="job",
        location=f"job:{job.id}",
        statuses=tuple(s.value for s in statuses),
        all_versions=bool(job.source.get("all_versions")),
        delete_markers=bool(job.source.get("delete_markers")),
    )


def job_rows(repo: Repository, source: Source, after_id: int) -> Iterator[Rows]:
    """The tasks of an earlier job to run again, in its order: same source
    objects and overrides (so the same destination keys); rows that were
    malformed in its manifest are not objects and are left out."""
    job_id = source.location.removeprefix("job:")
    statuses = tuple(TaskStatus(s) for s in source.statuses)
    rows = Rows(modified=[])
    for r in repo.iter_results(job_id, statuses=statuses, after_id=after_id):
        if r.error_code == INVALID_ROW:
            continue
        if r.overrides:
            rows.overrides[len(rows)] = r.overrides
        if r.kind:
            rows.kinds[len(rows)] = r.kind
        rows.add(r.line, r.src.bucket, r.src.key, r.src.version_id)
        rows.modified.append(r.last_modified)  # type: ignore[union-attr]
        if len(rows) >= BATCH_ROWS:
            rows.position = {"after_id": r.id}
            yield rows
            rows = Rows(modified=[])
        last = r.id
    if len(rows):
        rows.position = {"after_id": last}
        yield rows
