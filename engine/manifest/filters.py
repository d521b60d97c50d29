"""Which manifest rows become tasks: prefix, size, date and storage-class filters.

Pure: a :class:`Filters` looks at a batch of rows and says which to keep.
Prefixes need only keys, so they work on every manifest; the other filters need
the column they test (an S3 Inventory report or a listing has them, an S3 Batch
Operations CSV does not) and refuse a manifest without it.  A row whose value
is unknown (an empty Size cell) does not pass a filter on that value.
Malformed rows are never filtered: they are reported.

Bounds: ``min_size <= size <= max_size``; ``modified_after <= LastModified <
modified_before`` (so two runs split at one instant cover every object once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.domain.errors import UsageError
from engine.manifest.rows import Rows

# storage classes whose objects cannot be copied until restored
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# S3 Intelligent-Tiering's archive tiers (inventory IntelligentTieringAccessTier,
# HeadObject x-amz-archive-status)
ARCHIVE_TIERS = frozenset(
    {"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS", "ARCHIVE_CONFIGURED"}
)


def storage_value(storage_class: str | None, tier: str | None = None) -> str | None:
    """The storage column of a row: the class, with an Intelligent-Tiering
    archive tier after a slash (``INTELLIGENT_TIERING/ARCHIVE_ACCESS``)."""
    if tier and tier in ARCHIVE_TIERS:
        return f"{storage_class or 'INTELLIGENT_TIERING'}/{tier}"
    return storage_class


def storage_class(value: str | None) -> str:
    return (value or "STANDARD").split("/", 1)[0]


def archived(value: str | None) -> bool:
    """Whether an object in this storage must be restored before a copy."""
    return value is not None and (
        value in ARCHIVE_CLASSES or value.split("/", 1)[-1] in ARCHIVE_TIERS
    )


@dataclass(frozen=True, slots=True)
class Filters:
    include_prefixes: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    modified_after: float | None = None  # Unix seconds
    modified_before: float | None = None
    storage_classes: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self != Filters()

    def needs(self) -> list[tuple[str, str]]:
        """``(column, option)`` for each column the set filters read."""
        out = []
        if self.min_size is not None:
            out.append(("sizes", "--min-size"))
        if self.max_size is not None:
            out.append(("sizes", "--max-size"))
        if self.modified_after is not None:
            out.append(("modified", "--modified-after"))
        if self.modified_before is not None:
            out.append(("modified", "--modified-before"))
        if self.storage_classes:
            out.append(("storage", "--source-storage-class"))
        return out

    def check(self, rows: Rows, manifest: str) -> None:
        """Refuse a manifest that lacks a column a filter reads."""
        for column, option in self.needs():
            if getattr(rows, column) is None:
                raise UsageError(
                    f"{option} needs the {_COLUMN_NAMES[column]} of each object, "
                    f"which {manifest} does not give; filter an S3 Inventory report "
                    "or a listing (--from) instead"
                )

    def keep(self, rows: Rows) -> list[int] | None:
        """Indices of the rows to keep, or ``None`` for all of them."""
        if not self.active:
            return None
        keep = []
        inc, exc = self.include_prefixes, self.exclude_prefixes
        lo, hi = self.min_size, self.max_size
        after, before = self.modified_after, self.modified_before
        classes = self.storage_classes
        sizes, modified, storage = rows.sizes, rows.modified, rows.storage
        for i, key in enumerate(rows.keys):
            if i in rows.errors:
                keep.append(i)
                continue
            if inc and not key.startswith(inc):
                continue
            if exc and key.startswith(exc):
                continue
            if sizes is not None and (lo is not None or hi is not None):
                size = sizes[i]
                if size is None:
                    continue
                if (lo is not None and size < lo) or (hi is not None and size > hi):
                    continue
            if modified is not None and (after is not None or before is not None):
                when = modified[i]
                if when is None:
                    continue
                if (after is not None and when < after) or (
                    before is not None and when >= before
                ):
                    continue
            if (
                classes
                and storage is not None
                and storage_class(storage[i]) not in classes
            ):
                continue
            keep.append(i)
        return keep

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, ())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Filters:
        values = dict(data)
        for name in ("include_prefixes", "exclude_prefixes", "storage_classes"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


_COLUMN_NAMES = {
    "sizes": "size",
    "modified": "last-modified date",
    "storage": "storage class",
}
