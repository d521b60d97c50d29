"""A GetObject's body read into a buffer the caller holds, through botocore
(the lean path writes it there itself: :mod:`engine.s3.lean`)."""

from __future__ import annotations

from typing import Any

# what botocore's stream is read by
CHUNK = 1 << 20


async def read_into(
    client: Any, sink: bytearray, **kwargs: Any
) -> tuple[dict[str, Any], int]:
    """``client.get_object(**kwargs)``'s answer (its ``Body`` read and
    closed), the body written into ``sink``; also how many bytes it had (more
    than ``len(sink)``: it did not fit, and the read stopped there)."""
    resp: dict[str, Any] = await client.get_object(**kwargs)
    stream = resp.pop("Body")
    at = 0
    try:
        async for chunk in stream.iter_chunks(CHUNK):
            end = at + len(chunk)
            if end > len(sink):
                return resp, end
            sink[at:end] = chunk
            at = end
    finally:
        stream.close()
    return resp, at
