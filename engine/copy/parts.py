"""The pure pieces of a multipart copy: whether the source changed under
it, the ETag its completed object should have, the part list Complete sends,
and which failure of a group of part copies to act on."""

from __future__ import annotations

import hashlib
from typing import Any

from engine.copy.upload import Interrupted
from engine.domain import etag
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord


def source_changed(began: dict[str, Any], now: dict[str, Any]) -> str | None:
    """How the source's HEAD ``now`` differs from the one its copy ``began``
    with (ETag, size, last modified, version id); ``None``: the same object."""
    if not etag.same(began.get("ETag"), now.get("ETag")):
        return f"ETag {began.get('ETag')} is now {now.get('ETag')}"
    if began.get("ContentLength") != now.get("ContentLength"):
        return f"size {began.get('ContentLength')} is now {now.get('ContentLength')}"
    for name in ("LastModified", "VersionId"):
        if began.get(name) != now.get(name):
            return f"{name} {began.get(name)} is now {now.get(name)}"
    return None


def expected_etag(etags: list[str]) -> str:
    """The ETag S3 gives a completed multipart object with these part ETags."""
    digest = hashlib.md5(usedforsecurity=False)
    for value in etags:
        digest.update(bytes.fromhex(etag.bare(value)))
    return f'"{digest.hexdigest()}-{len(etags)}"'


def part_entry(part: PartRecord) -> dict[str, Any]:
    """One part in CompleteMultipartUpload's list, with its checksum if any."""
    entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
    if part.sum is not None:
        algorithm, value = part.sum
        entry[f"Checksum{algorithm}"] = value
    return entry


def first_failure(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error to act on from a failed group of part copies.

    ``Interrupted`` wins (the run is stopping), then a fatal S3 error (it
    decides whether to abort), then whatever came first.
    """
    flat: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        e = stack.pop()
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        else:
            flat.append(e)
    for e in flat:
        if isinstance(e, Interrupted):
            return e
    for e in flat:
        if isinstance(e, S3Error) and e.disposition is Disposition.FATAL:
            return e
    return flat[0]
