"""``--dry-run``: read a source with its filters and count what a job would
hold; nothing is written."""

from __future__ import annotations

from engine.domain.errors import ManifestError
from engine.domain.spec import JobSpec
from engine.domain.transfer import STREAM
from engine.manifest.sources import Source
from engine.store import Repository
from engine.usecases.estimate import Estimate
from engine.usecases.submit import OpenClient, open_reader


async def dry_run(
    source: Source,
    spec: JobSpec,
    *,
    open_client: OpenClient | None = None,
    repo: Repository | None = None,
) -> Estimate:
    """Read ``source`` with its filters and count what a job would hold;
    nothing is written (duplicate rows are counted as objects)."""
    mode = spec.copy.transfer
    # auto streams from a source client of its own (unless it turns out to
    # reach the destination's endpoint with its key: the run decides)
    estimate = Estimate(
        streamed=mode == STREAM or (mode == "auto" and spec.source_client is not None)
    )
    async with open_reader(source, spec, open_client, repo) as reader:
        first = True
        async for rows in reader.batches(None):
            if first:
                source.filters.check(rows, source.location)
                first = False
            estimate.rows += len(rows)
            keep = source.filters.keep(rows)
            if keep is not None:
                estimate.filtered += len(rows) - len(keep)
                rows = rows.take(keep)
            for i, error in rows.errors.items():
                if rows.fatal == i or not source.skip_invalid:
                    raise ManifestError(source.location, rows.lines[i], error)
            estimate.add(rows, spec.copy)
    return estimate
