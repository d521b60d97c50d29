"""What a store was found not to do, learned during a run.  One home for each.

bulkcopy defends against a store's gaps where it can check the outcome (the
copy's properties are confirmed, a multipart copy's source is HEADed again
after its parts, ETags are quoted on the way in: ``engine.copy.confirm``,
``engine.copy.multipart``, ``engine.domain.etag``).  What cannot be checked after
the fact is learned from the store's own answer and kept here for the rest
of the run, so the engine stops asking for what the store refuses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class Quirks:
    """Store behaviours found during one run (every flag starts as S3 does)."""

    # DeleteObject with If-Match (a move's delete of an unversioned source
    # bound to the ETag copied): LocalStack answers 501 NotImplemented and
    # deletes nothing.  Without it the source is HEADed just before an
    # unconditional delete (a window of one round trip).
    conditional_delete: bool = True
    # CopyObject's x-amz-copy-source-if-match, which pins a copy to the ETag
    # a listing gave (no HEAD): Ceph RGW 16 and moto ignore it and copy what
    # is there.  None until a run's first listed copy has asked
    # (engine.copy.pin); when ignored, each listed object is HEADed first.
    copy_source_if_match: bool | None = None
    # PutObject's metadata and content headers (a streamed copy): the store
    # keeps what it is sent.  None until a streamed copy that carried some
    # has been HEADed (engine.copy.confirm.confirm_copy); ``put_kept``: the
    # properties (Metadata, ContentType, ...) seen kept, and a copy promising
    # only those is not HEADed again.  False (a HEAD found one dropped):
    # every copy is HEADed from then on.
    put_keeps_properties: bool | None = None
    put_kept: set[str] = field(default_factory=set)
    # x-amz-checksum-*: the store keeps the checksums it is sent (Ceph RGW
    # keeps none).  False once a copy that should carry its source's
    # algorithm showed none at all (engine.copy.confirm.confirm_copy): the
    # source's algorithm is then not promised, only --checksum-algorithm's.
    keeps_checksums: bool = True
    # a streamed body's answer carries the checksum it was sent with (the
    # store checked it; Ceph RGW answers none): None until the first answer,
    # then True until one answer shows none (False for the rest of the run).
    # True lets a body whose source has a
    # whole-object CRC go without its MD5 (engine.copy.stream.with_md5).
    answers_checksums: bool | None = None
    learning: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def found(self) -> list[str]:
        """What this run found the store not to do (for the run's log)."""
        named = (
            ("DeleteObject If-Match", self.conditional_delete),
            ("x-amz-copy-source-if-match", self.copy_source_if_match),
            ("PutObject metadata and content headers", self.put_keeps_properties),
            ("x-amz-checksum-* (no checksums kept)", self.keeps_checksums),
        )
        return [name for name, value in named if value is False]


def refuses_condition(code: str | None, http_status: int | None) -> bool:
    """Whether an answer says the store does not implement what was asked
    (a condition, a subresource such as tagging) rather than that it failed."""
    return code == "NotImplemented" or http_status == 501
