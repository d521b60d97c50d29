"""A batch of manifest rows, column by column.

Readers fill a :class:`Rows` a few thousand rows at a time; the ingest filters
it, maps destination keys and inserts it in one statement.  Columns are plain
lists (cheap to append to and to hand to ``executemany``); the rare row-level
extras (an error, overrides, a delete marker) live in dicts keyed by the row's
index in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.domain.models import ManifestEntry, ObjectRef

BATCH_ROWS = 10_000
DELETE_MARKER = "delete_marker"


@dataclass(slots=True)
class Rows:
    """Rows read from a manifest, and where the reader is after them.

    ``position`` is the reader's checkpoint after the last row of the batch
    (JSON-able): handed back to the reader, it continues after that row.
    ``sizes``, ``modified``, ``storage`` and ``etags`` are ``None`` when the
    manifest does not carry that column.
    """

    lines: list[int] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    versions: list[str | None] = field(default_factory=list)
    sizes: list[int | None] | None = None
    modified: list[float | None] | None = None  # LastModified, Unix seconds
    storage: list[str | None] | None = None  # storage class (archive tier noted)
    # the object's ETag (quoted), where the manifest says it (a listing, an
    # inventory with the ETag field): with the size, the copy needs no HEAD
    etags: list[str | None] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    position: dict[str, Any] = field(default_factory=dict)
    # index of an error row after which nothing can be trusted (an
    # unterminated quote): it fails the submit even with --skip-invalid
    fatal: int | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def src(self, i: int) -> ObjectRef:
        return ObjectRef(self.buckets[i], self.keys[i], self.versions[i])

    def add(
        self,
        line: int,
        bucket: str,
        key: str,
        version: str | None = None,
        *,
        error: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Append one row (the slow, general way; readers' hot loops append
        to the columns directly)."""
        i = len(self.keys)
        self.lines.append(line)
        self.buckets.append(bucket)
        self.keys.append(key)
        self.versions.append(version)
        if error is not None:
            self.errors[i] = error
        if overrides:
            self.overrides[i] = overrides

    def take(self, keep: list[int]) -> Rows:
        """A batch of the rows at indices ``keep`` (in order), same position."""

        def pick(col: list[Any] | None) -> list[Any] | None:
            return None if col is None else [col[i] for i in keep]

        new_index = {old: new for new, old in enumerate(keep)}

        def remap(extra: dict[int, Any]) -> dict[int, Any]:
            return {new_index[i]: v for i, v in extra.items() if i in new_index}

        return Rows(
            lines=[self.lines[i] for i in keep],
            buckets=[self.buckets[i] for i in keep],
            keys=[self.keys[i] for i in keep],
            versions=[self.versions[i] for i in keep],
            sizes=pick(self.sizes),
            modified=pick(self.modified),
            storage=pick(self.storage),
            etags=pick(self.etags),
            errors=remap(self.errors),
            overrides=remap(self.overrides),
            kinds=remap(self.kinds),
            position=self.position,
            fatal=new_index.get(self.fatal) if self.fatal is not None else None,
        )


def rows_from_entries(
    entries: Iterable[ManifestEntry],
) -> Iterator[Rows]:
    """Batch a stream of :class:`ManifestEntry` (readers that yield one row
    at a time).  The position after each batch is its last row's line."""
    batch = Rows(sizes=[])
    for e in entries:
        batch.add(e.line, e.src.bucket, e.src.key, e.src.version_id, error=e.error)
        if e.overrides:
            batch.overrides[len(batch) - 1] = e.overrides
        assert batch.sizes is not None
        batch.sizes.append(e.size)
        if len(batch) >= BATCH_ROWS:
            batch.position = {"line": e.line}
            yield _sized(batch)
            batch = Rows(sizes=[])
    if len(batch):
        batch.position = {"line": batch.lines[-1]}
        yield _sized(batch)


def _sized(batch: Rows) -> Rows:
    """No size column at all when no entry gave a size (so a size filter is
    refused rather than leaving every row out)."""
    if batch.sizes is not None and all(s is None for s in batch.sizes):
        batch.sizes = None
    return batch


def entries_from_rows(batches: Iterable[Rows]) -> Iterator[ManifestEntry]:
    """The rows of ``batches`` one at a time (for tests and small callers)."""
    for rows in batches:
        for i in range(len(rows)):
            yield ManifestEntry(
                rows.lines[i],
                rows.src(i),
                rows.errors.get(i),
                size=None if rows.sizes is None else rows.sizes[i],
                overrides=rows.overrides.get(i),
                fatal=rows.fatal == i,
            )
