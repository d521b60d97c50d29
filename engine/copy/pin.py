"""Whether the store holds a copy to the ETag it was pinned to: learned once
a run, before the first copy pinned to a listed ETag.

A listing or an inventory gives each object's size and ETag, and the copy is
pinned to that ETag (``x-amz-copy-source-if-match``) instead of a HEAD's: an
object overwritten since it was listed answers 412 and is HEADed and copied
as it is now.  A store that ignores the header (Ceph RGW 16, moto) would copy
the new object and the listed size and ETag would be recorded for it.  So the
first listed copy of a run is sent once with a pin no object can match: S3
answers 412 and writes nothing; a store that copies anyway has shown that it
ignores the pin, and every listed object is then HEADed before its copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from engine.domain.errors import S3Error
from engine.s3.quirks import Quirks

# no object's ETag (an MD5 of all zeros would need a preimage)
NEVER = '"00000000000000000000000000000000"'


async def honoured(quirks: Quirks, probe: Callable[[], Awaitable[Any]]) -> bool:
    """Whether the store honours a copy-source pin; ``probe`` sends the
    copy pinned to :data:`NEVER` (once a run; the other copies wait for its
    answer).  ``False`` also when this probe itself copied the object: the
    caller HEADs and copies it again."""
    if quirks.copy_source_if_match is None:
        async with quirks.learning:
            if quirks.copy_source_if_match is None:
                try:
                    await probe()
                except S3Error as err:
                    if err.http_status != 412:
                        raise  # not an answer about the pin: the next copy asks
                    quirks.copy_source_if_match = True
                else:
                    quirks.copy_source_if_match = False
    return quirks.copy_source_if_match
