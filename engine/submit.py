"""Submit: read a manifest into a new job, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from engine.copy.keys import normalize_prefix
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

    A malformed row, or one whose destination key cannot be made, fails the
    whole submit with ``file:line: reason`` and nothing is written, unless
    ``skip_invalid``: then the row becomes a failed task carrying that reason.
    Two source objects mapped to one destination key fail the submit.
    """
    entries = open_manifest(manifest)
    mapping = replace(spec.keys, prefix=destination.prefix)
    buckets: dict[str, None] = {}
    own_keys = False  # some row names its own dst_key

    def new_tasks() -> Iterator[NewTask]:
        nonlocal own_keys
        for entry in entries:
            error = entry.error
            dst_key = normalize_prefix(destination.prefix) + entry.src.key
            if error is None:
                given = (entry.overrides or {}).get("dst_key")
                own_keys = own_keys or given is not None
                try:
                    dst_key = given or mapping.destination(entry.src)
                except ValueError as exc:
                    error = str(exc)
            if error is not None and (entry.fatal or not skip_invalid):
                raise ManifestError(manifest, entry.line, error)
            if error is None and len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
                buckets.setdefault(entry.src.bucket)
            yield NewTask(
                line=entry.line,
                src=entry.src,
                dst_key=dst_key,
                size=entry.size,
                error=error,
                overrides=entry.overrides,
            )

    def final_spec() -> dict[str, object]:
        return replace(spec, keys=mapping, source_buckets=tuple(buckets)).to_dict()

    def may_collide() -> bool:
        return own_keys or len(buckets) > 1 or not mapping.injective

    return repo.create_job(
        manifest=manifest,
        dst_bucket=destination.bucket,
        dst_prefix=normalize_prefix(destination.prefix),
        spec=final_spec,
        new_tasks=new_tasks(),
        check_collisions=may_collide,
    )
