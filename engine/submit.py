"""Submit: read a manifest into a new job, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from engine.copy.plan import destination_key, normalize_prefix
from engine.errors import ManifestError
from engine.manifest import open_manifest
from engine.models import Destination
from engine.spec import JobSpec
from engine.store.repo import JobRecord, NewTask, Repository

MAX_TRACKED_SOURCE_BUCKETS = 100


def submit(
    repo: Repository,
    manifest: str,
    destination: Destination,
    spec: JobSpec,
    *,
    skip_invalid: bool = False,
) -> JobRecord:
    """Create a job from ``manifest``: one task per distinct object.

    A malformed row fails the whole submit with ``file:line: reason`` and
    nothing is written, unless ``skip_invalid``: then the row becomes a failed
    task carrying that reason.
    """
    entries = open_manifest(manifest)
    buckets: dict[str, None] = {}

    def new_tasks() -> Iterator[NewTask]:
        for entry in entries:
            if entry.error is not None and (entry.fatal or not skip_invalid):
                raise ManifestError(manifest, entry.line, entry.error)
            if entry.error is None and len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
                buckets.setdefault(entry.src.bucket)
            yield NewTask(
                line=entry.line,
                src=entry.src,
                dst_key=destination_key(destination.prefix, entry.src.key),
                size=entry.size,
                error=entry.error,
            )

    def final_spec() -> dict[str, object]:
        return replace(spec, source_buckets=tuple(buckets)).to_dict()

    return repo.create_job(
        manifest=manifest,
        dst_bucket=destination.bucket,
        dst_prefix=normalize_prefix(destination.prefix),
        spec=final_spec,
        new_tasks=new_tasks(),
    )
