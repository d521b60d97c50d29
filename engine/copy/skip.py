"""``--skip-existing``: whether the destination already holds the source's
object, decided from the two HEADs.  Pure.

* ``never``: always copy (the default);
* ``same-etag``: skip when the destination holds the same content by the one
  rule of :func:`engine.domain.content.same_content` (ETag, else a shared
  checksum); the size alone when the two HEADs cannot tell;
* ``same-size``: skip when the sizes are equal;
* ``newer``: skip when the destination is at least as new as the source.

A skipped object is recorded as ``skipped`` with
:data:`~engine.domain.codes.DESTINATION_EXISTS` and the
reason: counted and reported, but not a failure (exit 0).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.domain.content import same_content


def skip_reason(
    policy: str,
    src: dict[str, Any],
    dst: dict[str, Any] | None,
    *,
    strict: bool = False,
) -> str | None:
    """Why the copy is not needed, or ``None`` to copy (``dst`` is the
    destination's HEAD, ``None`` when it does not exist).

    ``strict`` (a move, which deletes the source of a skipped object): only
    ``same-etag`` with content the two HEADs vouch for skips; the size alone never
    vouches for a destination the source is deleted for."""
    if policy == "never" or dst is None:
        return None
    src_size, dst_size = src.get("ContentLength"), dst.get("ContentLength")
    same_size = src_size is not None and src_size == dst_size
    if strict and policy != "same-etag":
        raise ValueError(f"--skip-existing {policy} cannot vouch for a move")
    if policy == "same-size":
        return (
            f"destination exists with the same size ({dst_size} bytes)"
            if same_size
            else None
        )
    if policy == "same-etag":
        if not same_size:
            return None
        verdict = same_content(src, dst)
        if verdict.same is True:
            return f"destination exists with the same {verdict.by} {dst.get('ETag')}"
        if verdict.same is False or strict:
            return None
        return (
            f"destination exists with the same size ({dst_size} bytes; "
            "ETags not comparable)"
        )
    if policy == "newer":
        s, d = src.get("LastModified"), dst.get("LastModified")
        if isinstance(s, datetime) and isinstance(d, datetime) and d >= s:
            return f"destination is as new or newer ({d.isoformat()})"
        return None
    raise ValueError(f"unknown --skip-existing policy {policy!r}")
