"""Is this object the same as that one?  The one rule, used by
``--skip-existing`` (:mod:`engine.copy.skip`), a move's check before it
deletes its source (:mod:`engine.copy.move`) and ``verify``
(:mod:`engine.copy.check`).  Pure.

Two objects (their HEAD answers, read with ``ChecksumMode=ENABLED``) have the
same content when their sizes are equal and, first that applies:

1. both ETags are MD5s of the body (single part, not SSE-KMS / SSE-C): equal;
2. both carry a whole-object checksum of one algorithm (strongest first): equal;
3. both ETags are multipart ETags of the same part count (not SSE-KMS /
   SSE-C): equal (same parts, same bytes; unequal means other bytes or
   another part layout, and is taken as different: a check may fail for
   nothing, a source is never deleted for it).

When none applies the two answers cannot tell (``same is None``); each
caller says what that means for it (a move falls back to the source ETag its
copy was pinned to; ``same-etag`` skips on the size alone, never for a move).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the checksum algorithms S3 knows (``--checksum-algorithm``)
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
# the order in which a shared checksum is looked for: strongest first
STRONGEST_FIRST = ("SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32")

_KMS = ("aws:kms", "aws:kms:dsse")


@dataclass(frozen=True, slots=True)
class Sameness:
    """``same``: True, False or None (cannot tell); ``by``: what decided it
    ("size and ETag", "size and SHA256 checksum"); ``difference``: what
    differs, when it does."""

    same: bool | None
    by: str = ""
    difference: str = ""


def _etag(head: dict[str, Any]) -> str:
    return str(head.get("ETag") or "")


def encrypted_etag(head: dict[str, Any]) -> bool:
    """SSE-KMS and SSE-C objects have ETags that are no MD5 of the body."""
    return head.get("ServerSideEncryption") in _KMS or bool(
        head.get("SSECustomerAlgorithm")
    )


def md5_etag(head: dict[str, Any]) -> str | None:
    """The ETag if it is the MD5 of the body (single part, not KMS/SSE-C)."""
    etag = _etag(head)
    if not etag or "-" in etag or encrypted_etag(head):
        return None
    return etag


def _multipart_etag(head: dict[str, Any]) -> tuple[str, str] | None:
    """A multipart ETag (MD5 of the parts' MD5s) and its part count."""
    etag = _etag(head).strip('"')
    if "-" not in etag or encrypted_etag(head):
        return None
    digest, _, count = etag.rpartition("-")
    return digest, count


def whole_object_checksum(head: dict[str, Any], alg: str) -> str | None:
    """The object's ``alg`` checksum if it is of the whole body, so equal
    bodies have equal values whatever their part layout.  A multipart
    object's checksum is of its parts (``COMPOSITE``; ``…-N`` on S3) unless
    its ``ChecksumType`` says ``FULL_OBJECT``; a store that tells neither
    (moto) is not taken at its word for a multipart object."""
    value = head.get(f"Checksum{alg}")
    if not value:
        return None
    kind = head.get("ChecksumType")
    if kind == "FULL_OBJECT":
        return str(value)
    if kind == "COMPOSITE" or "-" in str(value):
        return None
    if "-" in _etag(head):  # multipart, type not told
        return None
    return str(value)


def same_size(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both sizes known and equal."""
    n = a.get("ContentLength")
    return n is not None and n == b.get("ContentLength")


def same_content(
    a: dict[str, Any], b: dict[str, Any], *, sizes: bool = True
) -> Sameness:
    """Whether ``a`` and ``b`` hold the same bytes (see the module's rule);
    ``sizes=False``: the caller has compared the sizes itself."""
    if sizes and not same_size(a, b):
        return Sameness(
            False,
            "size",
            f"size {a.get('ContentLength')} != {b.get('ContentLength')}",
        )
    x, y = md5_etag(a), md5_etag(b)
    if x is not None and y is not None:
        if x.strip('"') == y.strip('"'):
            return Sameness(True, "size and ETag")
        return Sameness(False, "ETag", f"ETag {x} != {y}")
    for alg in STRONGEST_FIRST:
        x, y = whole_object_checksum(a, alg), whole_object_checksum(b, alg)
        if x and y:
            if x == y:
                return Sameness(True, f"size and {alg} checksum")
            return Sameness(False, f"{alg} checksum", f"checksum {alg} {x} != {y}")
    m, n = _multipart_etag(a), _multipart_etag(b)
    if m is not None and n is not None and m[1] == n[1]:
        if m[0] == n[0]:
            return Sameness(True, "size and multipart ETag")
        return Sameness(False, "ETag", f"ETag {_etag(a)} != {_etag(b)}")
    return Sameness(None)
