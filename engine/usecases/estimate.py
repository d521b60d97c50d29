"""``submit --dry-run``: what a job would hold and roughly how many requests it takes.

Pure arithmetic over rows; nothing is written.  Requests per object follow
what the copy does: HeadObject of the source (with --stat-source), then one
CopyObject, or for an object above the multipart threshold
CreateMultipartUpload + one UploadPartCopy per part + CompleteMultipartUpload
(+ GetObjectTagging with --preserve-tags); a delete marker is one
DeleteObject; --verify adds a HeadObject of the copy.  Objects whose size the
manifest does not give are counted as CopyObject copies.

A streamed job (``--transfer stream``, or ``auto`` with a source client of
its own) reads and writes instead: an object whose size the manifest gives
and that fits one PutObject is one GetObject and one PutObject (its GET is
its HEAD); one of unknown size is HEADed first; one above a part's size is a
HeadObject, CreateMultipartUpload, a GetObject and an UploadPart per part,
CompleteMultipartUpload and the copy's HeadObject; each with
GetObjectTagging under --preserve-tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.domain.plan import (
    part_size_for,
    stream_in_parts,
    stream_part_size,
    use_multipart,
)
from engine.domain.spec import CopyOptions
from engine.manifest.filters import archived, storage_class
from engine.manifest.rows import Rows


@dataclass(slots=True)
class Estimate:
    rows: int = 0  # read from the manifest
    filtered: int = 0  # left out by the filters
    invalid: int = 0
    objects: int = 0
    delete_markers: int = 0
    sized: int = 0  # objects whose size the manifest gives
    bytes: int = 0
    multipart: int = 0
    parts: int = 0
    archived: int = 0  # in GLACIER / DEEP_ARCHIVE / an archive tier
    requests: int = 0
    by_storage_class: dict[str, int] = field(default_factory=dict)
    streamed: bool = False  # read and written, not copied by the store

    def add(self, rows: Rows, copy: CopyOptions) -> None:
        """Count the rows of one batch (already filtered)."""
        sizes, storage = rows.sizes, rows.storage
        # a move always HEADs; a stream HEADs as its size says (below)
        stat = (copy.stat_source or copy.delete_source) and not self.streamed
        per_object = (
            (1 if stat else 0)
            + (1 if copy.verify else 0)
            + (1 if copy.skip_existing != "never" else 0)  # HEAD the destination
            # a move: HEAD the copy, then DeleteObject
            + (2 if copy.delete_source else 0)
        )
        for i in range(len(rows)):
            if i in rows.errors:
                self.invalid += 1
                continue
            if i in rows.kinds:
                self.delete_markers += 1
                self.requests += 2 if copy.delete_source else 1
                continue
            self.objects += 1
            self.requests += per_object
            if storage is not None:
                cls = storage_class(storage[i])
                self.by_storage_class[cls] = self.by_storage_class.get(cls, 0) + 1
                if archived(storage[i]):
                    self.archived += 1
            size = sizes[i] if sizes is not None else None
            if self.streamed:
                self._stream(size, copy)
                continue
            if size is None:
                self.requests += 1
                continue
            self.sized += 1
            self.bytes += size
            if use_multipart(size, copy.multipart_threshold):
                parts = -(-size // part_size_for(size, copy.part_size))
                self.multipart += 1
                self.parts += parts
                # a multipart copy always HEADs its source
                head = 0 if stat else 1
                self.requests += head + 2 + parts + (1 if copy.preserve_tags else 0)
            else:
                self.requests += 1

    def _stream(self, size: int | None, copy: CopyOptions) -> None:
        """The requests of one streamed object (see the module's doc)."""
        tags = 1 if copy.preserve_tags else 0
        if size is None:
            self.requests += 3 + tags  # HEAD, GET, PUT
            return
        self.sized += 1
        self.bytes += size
        if not stream_in_parts(size, copy.multipart_threshold, copy.part_size):
            listed = copy.skip_existing == "never"  # else HEADed first
            self.requests += (2 if listed else 3) + tags
            return
        parts = -(-size // part_size_for(size, stream_part_size(copy.part_size)))
        self.multipart += 1
        self.parts += parts
        self.requests += 4 + 2 * parts + tags

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "filtered": self.filtered,
            "invalid": self.invalid,
            "objects": self.objects,
            "delete_markers": self.delete_markers,
            "objects_with_size": self.sized,
            "bytes": self.bytes,
            "multipart": self.multipart,
            "parts": self.parts,
            "archived": self.archived,
            "requests": self.requests,
            "transfer": "stream" if self.streamed else "server",
            "by_storage_class": dict(sorted(self.by_storage_class.items())),
        }
