"""ETags, one value type whatever the store sent.  Pure.

S3 quotes every ETag (``"9b2cf535f27731c974343645a3985328"``); some stores
do not (Ceph RGW answers CopyObject with a bare hex string), and manifests
(S3 Inventory, listings written by other tools) carry them either way.  Every
ETag that enters bulkcopy from an S3 answer is made quoted by
:func:`normalise_answer` on the one call path (``engine.s3.call``), so the
rest of the engine compares strings; :func:`same` compares two values that
may have been recorded before that (an older job table).
"""

from __future__ import annotations

from typing import Any

# keys of an S3 answer that hold an ETag, or a list of entries that do
_ENTRY_LISTS = ("Parts", "Contents", "Versions")
_RESULTS = ("CopyObjectResult", "CopyPartResult")


def quoted(etag: str | None) -> str:
    """``etag`` as S3 writes it: in double quotes (empty stays empty)."""
    if not etag:
        return ""
    bare = etag.strip('"')
    return f'"{bare}"' if bare else ""


def bare(etag: str | None) -> str:
    """``etag`` without its quotes (for digests and part counts)."""
    return (etag or "").strip('"')


def same(a: str | None, b: str | None) -> bool:
    """Whether two ETags are the same value, quoted or not (empty never is)."""
    x, y = bare(a), bare(b)
    return bool(x) and x == y


def part_count(etag: str | None) -> int | None:
    """The part count of a multipart ETag (``"…-3"``), ``None`` for a single part."""
    _, sep, n = bare(etag).rpartition("-")
    return int(n) if sep and n.isdigit() else None


def _fix(entry: dict[str, Any]) -> None:
    value = entry.get("ETag")
    if (
        isinstance(value, str)
        and value
        and not (value.startswith('"') and value.endswith('"') and len(value) > 1)
    ):
        entry["ETag"] = quoted(value)


def normalise_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """Quote every ETag of a parsed S3 answer, in place; returns it."""
    _fix(answer)
    for name in _RESULTS:
        result = answer.get(name)
        if isinstance(result, dict):
            _fix(result)
    for name in _ENTRY_LISTS:
        entries = answer.get(name)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict):
                    _fix(entry)
    return answer
