"""A listing of a source prefix as a manifest: ``--from s3://bucket/prefix/``.

ListObjectsV2 (current versions) or, with ``--all-versions``,
ListObjectVersions, one page per batch.  Each batch's position is where the
next page starts (the continuation token and the last key, or the key and
version-id markers), so an ingest killed mid-listing resumes at the page
after the last one it stored.  A continuation token the server no longer
accepts falls back to StartAfter the last key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from engine.domain import etag
from engine.domain.classify import cannot_start
from engine.domain.errors import BulkcopyError, JobCannotStart, ManifestError, S3Error
from engine.manifest.rows import DELETE_MARKER, Rows
from engine.s3.call import invoke_retrying


def unreadable(where: str, what: str, err: S3Error) -> BulkcopyError:
    """The error for an input in S3 that cannot be read: the job cannot start
    (exit 3) when the bucket is missing or access is refused, else the
    manifest is unusable (exit 2)."""
    message = f"{what}: {err.code}: {err.message}"
    if cannot_start(err.code, err.http_status):
        return JobCannotStart(f"{where}: {message}")
    return ManifestError(where, None, message)


PAGE = 1000


def parse_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix)."""
    if not uri.startswith("s3://"):
        raise ManifestError(uri, None, "--from must be an s3://BUCKET[/PREFIX] URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ManifestError(uri, None, "--from has no bucket")
    return bucket, prefix


def _seconds(when: Any) -> float | None:
    return when.timestamp() if isinstance(when, datetime) else None


async def list_batches(
    client: Any,
    uri: str,
    *,
    all_versions: bool = False,
    delete_markers: bool = False,
    position: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    page_size: int = PAGE,
) -> AsyncIterator[Rows]:
    """Stream the objects under ``uri`` in pages; ``extra`` goes on every
    list call (ExpectedBucketOwner, RequestPayer)."""
    bucket, prefix = parse_location(uri)
    pos = dict(position or {})
    row = int(pos.get("row", 0))
    if pos.get("done"):
        return
    page_at = _versions_page if all_versions else _objects_page

    def fetch(at: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        return asyncio.ensure_future(
            page_at(client, bucket, prefix, at, extra, page_size)
        )

    # one page ahead: the next page is asked for before this one is stored,
    # so a listing goes at the pace of the slower of the two, not of their
    # sum (copies that share the event loop slow every step of it)
    ahead = fetch(pos)
    try:
        while True:
            try:
                page = await ahead
            except S3Error as err:
                raise unreadable(uri, "cannot list", err) from None
            after = pos.get("after")
            rows, pos = _page_rows(page, bucket, row, all_versions, delete_markers)
            row += len(rows)
            pos["row"] = row
            if not all_versions and not pos.get("after"):
                pos["after"] = after
            rows.position = pos
            if pos.get("done"):
                yield rows
                return
            ahead = fetch(dict(pos))
            yield rows
    finally:
        if not ahead.done():
            ahead.cancel()
        elif not ahead.cancelled():
            ahead.exception()  # read: a page no one waits for fails quietly


def _page_args(
    bucket: str, prefix: str, extra: dict[str, Any] | None, page_size: int
) -> dict[str, Any]:
    return {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size, **(extra or {})}


async def _objects_page(
    client: Any,
    bucket: str,
    prefix: str,
    pos: dict[str, Any],
    extra: dict[str, Any] | None,
    page_size: int,
) -> dict[str, Any]:
    args = _page_args(bucket, prefix, extra, page_size)
    if pos.get("token"):
        try:
            return await invoke_retrying(
                "ListObjectsV2",
                client.list_objects_v2,
                ContinuationToken=pos["token"],
                **args,
            )
        except S3Error as err:
            if err.code != "InvalidArgument" or not pos.get("after"):
                raise
    if pos.get("after"):
        args["StartAfter"] = pos["after"]
    return await invoke_retrying("ListObjectsV2", client.list_objects_v2, **args)


async def _versions_page(
    client: Any,
    bucket: str,
    prefix: str,
    pos: dict[str, Any],
    extra: dict[str, Any] | None,
    page_size: int,
) -> dict[str, Any]:
    args = _page_args(bucket, prefix, extra, page_size)
    if pos.get("key_marker"):
        args["KeyMarker"] = pos["key_marker"]
        if pos.get("version_marker"):
            args["VersionIdMarker"] = pos["version_marker"]
    return await invoke_retrying(
        "ListObjectVersions", client.list_object_versions, **args
    )


def _page_rows(
    page: dict[str, Any],
    bucket: str,
    row: int,
    all_versions: bool,
    delete_markers: bool,
) -> tuple[Rows, dict[str, Any]]:
    """One listing page as rows, and the position after it."""
    sizes: list[int | None] = []
    modified: list[float | None] = []
    storage: list[str | None] = []
    etags: list[str | None] = []
    if all_versions:
        items = [(v, False) for v in page.get("Versions", [])]
        if delete_markers:
            items += [(m, True) for m in page.get("DeleteMarkers", [])]
        # one key's versions newest first, as S3 lists them; LastModified has
        # one-second resolution, so within a second the latest one leads
        items.sort(
            key=lambda x: (
                x[0]["Key"],
                -(_seconds(x[0].get("LastModified")) or 0),
                not x[0].get("IsLatest"),
            )
        )
    else:
        items = [(o, False) for o in page.get("Contents", [])]
    rows = Rows(sizes=sizes, modified=modified, storage=storage, etags=etags)
    for n, (item, marker) in enumerate(items, row + 1):
        if marker:
            rows.kinds[len(rows)] = DELETE_MARKER
        rows.lines.append(n)
        rows.buckets.append(bucket)
        rows.keys.append(item["Key"])
        rows.versions.append(item.get("VersionId") if all_versions else None)
        sizes.append(item.get("Size", 0 if marker else None))
        modified.append(_seconds(item.get("LastModified")))
        storage.append(item.get("StorageClass"))
        found = item.get("ETag")
        etags.append(etag.quoted(found) if found and not marker else None)
    if all_versions:
        done = not page.get("IsTruncated")
        pos = {
            "key_marker": page.get("NextKeyMarker"),
            "version_marker": page.get("NextVersionIdMarker"),
        }
    else:
        done = not page.get("IsTruncated")
        pos = {
            "token": page.get("NextContinuationToken"),
            "after": rows.keys[-1] if len(rows) else None,
        }
    if done:
        pos = {"done": True}
    return rows, pos
