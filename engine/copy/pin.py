"""Whether the store holds a copy to the ETag it was pinned to: learned once
a run, by the first copy pinned to a listed ETag.

A listing or an inventory gives each object's size and ETag, and the copy is
pinned to that ETag (``x-amz-copy-source-if-match``) instead of a HEAD's: an
object overwritten since it was listed answers 412 and is HEADed and copied
as it is now.  A store that ignores the header (Ceph RGW 16, moto, rclone)
would copy the new object, and the listed size and ETag would be recorded
for it.  So the first listed copy of a run is sent once pinned to an ETag no
object has: S3 answers 412 and writes nothing, and the copy is sent again
pinned to the listed ETag; a store that copies anyway has shown that it
ignores the pin, and every listed object is then HEADed before its copy (the
probe's own copy is kept when the HEAD shows the listed object is still
there).  A listed *version* needs none of this: a version never changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from engine.domain.errors import S3Error
from engine.s3.quirks import Quirks

# no object's ETag (an MD5 of all zeros would need a preimage)
NEVER = '"00000000000000000000000000000000"'

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Learned(Generic[T]):
    """Whether the store holds copies to their pin; ``copied``: the answer
    of the probe that the store carried out anyway (this task's copy, of
    whatever the source was then)."""

    honoured: bool
    copied: T | None = None


async def learn(quirks: Quirks, probe: Callable[[], Awaitable[T]]) -> Learned[T]:
    """Whether the store honours a copy-source pin; ``probe`` sends this
    task's copy pinned to :data:`NEVER` (once a run: the other copies wait
    for its answer)."""
    if quirks.copy_source_if_match is None:
        async with quirks.learning:
            if quirks.copy_source_if_match is None:
                try:
                    copied = await probe()
                except S3Error as err:
                    if err.http_status != 412:
                        raise  # not an answer about the pin: the next copy asks
                    quirks.copy_source_if_match = True
                else:
                    quirks.copy_source_if_match = False
                    return Learned(False, copied)
    return Learned(quirks.copy_source_if_match)
