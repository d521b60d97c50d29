"""Per-object overrides: extra, named columns of a CSV manifest.

A manifest whose first line is a header starting ``bucket,key`` may name
more columns; each sets one thing for that row's object only (an empty cell
sets nothing)::

    bucket,key,version_id,dst_key,storage_class,metadata,tags,content_type
    src,a.jpg,,photos/a.jpg,GLACIER_IR,"{""owner"": ""ana""}",,image/jpeg

==================== ======================================================
column               value
==================== ======================================================
version_id           the source version (as the third column of a plain row)
dst_key              the destination key (URL-encoded like key), instead of
                     the --to prefix and --key-template
storage_class        e.g. STANDARD_IA
metadata             a JSON object of strings: the user metadata to set
tags                 a JSON object of strings: the tags to set (at most 10)
content_type         and cache_control, content_disposition, content_encoding,
                     content_language, expires (ISO 8601)
acl                  a canned ACL, e.g. bucket-owner-full-control
==================== ======================================================

An override changes only what it names: the object keeps the rest of its
source's metadata and headers.
"""

from __future__ import annotations

import json
from typing import Any

from engine.domain.errors import UsageError
from engine.domain.keys import MAX_KEY_BYTES
from engine.domain.options import CANNED_ACLS, parse_time

OBJECT_COLUMNS = ("bucket", "key")
OVERRIDE_COLUMNS = (
    "dst_key",
    "storage_class",
    "metadata",
    "tags",
    "content_type",
    "cache_control",
    "content_disposition",
    "content_encoding",
    "content_language",
    "expires",
    "acl",
)
COLUMNS = (*OBJECT_COLUMNS, "version_id", *OVERRIDE_COLUMNS)


def header_columns(fields: list[str]) -> tuple[str, ...] | None:
    """The named columns of a header row, or ``None`` if it is not a header.

    Raises ``ValueError`` for a header that names an unknown column.
    """
    names = tuple(f.strip().lower() for f in fields)
    names = tuple("version_id" if n == "versionid" else n for n in names)
    if names[:2] != OBJECT_COLUMNS:
        return None
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown column {unknown[0]!r} in the header; "
            f"columns are {', '.join(COLUMNS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError("a column is named twice in the header")
    return names


def _string_map(text: str, column: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{column}: expected a JSON object of strings")
    return value


def parse_overrides(cells: dict[str, str]) -> dict[str, Any]:
    """The overrides of one row (column -> cell); ``ValueError`` says what is wrong."""
    out: dict[str, Any] = {}
    for column, cell in cells.items():
        if cell == "":
            continue
        if column == "dst_key":
            if len(cell.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
                raise ValueError(f"dst_key is over the {MAX_KEY_BYTES}-byte S3 limit")
            out[column] = cell
        elif column in ("metadata", "tags"):
            value = _string_map(cell, column)
            if column == "tags" and len(value) > 10:
                raise ValueError("tags: S3 allows at most 10 tags per object")
            out[column] = value
        elif column == "acl":
            if cell not in CANNED_ACLS:
                raise ValueError(f"acl {cell!r} is not a canned ACL")
            out[column] = cell
        elif column == "storage_class":
            if not cell.replace("_", "").isalnum() or cell.upper() != cell:
                raise ValueError(f"storage_class {cell!r} is not a storage class")
            out[column] = cell
        elif column == "expires":
            try:
                parse_time(cell, "expires")
            except UsageError:
                raise ValueError(f"expires {cell!r} is not an ISO 8601 date") from None
            out[column] = cell
        else:
            out[column] = cell
    return out
