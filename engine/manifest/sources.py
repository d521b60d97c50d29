"""Where a job's rows come from, and how to read them again from a checkpoint.

A :class:`Source` is stored with its job, so an interrupted ingest can be
finished by any later command.  Kinds:

``csv``        an S3 Batch Operations CSV (local or ``s3://``)
``inventory``  an S3 Inventory report's ``manifest.json`` (local or ``s3://``)
``report``     a completion report (bulkcopy's or S3 Batch Operations')
``listing``    a listing of ``s3://bucket/prefix`` (``--from``)
``job``        the results of an earlier job (``bulkcopy retry``)

Every reader yields :class:`~engine.manifest.rows.Rows` whose ``position``
hands back to the same reader continues after them.  A manifest's identity
(the S3 ETag, or the SHA-256 of the local file) is taken before it is read,
so a manifest that changed under an interrupted ingest is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.domain.errors import ManifestError, S3Error
from engine.manifest.csv import csv_batches
from engine.manifest.earlier_report import is_report, read_report
from engine.manifest.filehash import sha256_file
from engine.manifest.filters import Filters
from engine.manifest.inventory import (
    file_batches,
    inventory_batches,
    load_inventory_manifest,
)
from engine.manifest.listing import list_batches, parse_location, unreadable
from engine.manifest.rows import Rows, rows_from_entries
from engine.s3.call import invoke_retrying

KINDS = ("csv", "inventory", "report", "listing", "job")


@dataclass(frozen=True, slots=True)
class Source:
    kind: str
    location: str
    all_versions: bool = False
    delete_markers: bool = False
    statuses: tuple[str, ...] = ()  # report, job: the results to take again
    filters: Filters = field(default_factory=Filters)
    skip_invalid: bool = False

    @property
    def needs_dates(self) -> bool:
        """Whether rows need their LastModified: to order versions, or to filter."""
        f = self.filters
        return self.all_versions or (
            f.modified_after is not None or f.modified_before is not None
        )

    @property
    def needs_s3(self) -> bool:
        return self.kind == "listing" or self.location.startswith("s3://")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "location": self.location}
        if self.all_versions:
            out["all_versions"] = True
        if self.delete_markers:
            out["delete_markers"] = True
        if self.statuses:
            out["statuses"] = list(self.statuses)
        if self.filters.active:
            out["filters"] = self.filters.to_dict()
        if self.skip_invalid:
            out["skip_invalid"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(
            kind=data["kind"],
            location=data["location"],
            all_versions=bool(data.get("all_versions")),
            delete_markers=bool(data.get("delete_markers")),
            statuses=tuple(data.get("statuses", ())),
            filters=Filters.from_dict(data.get("filters", {})),
            skip_invalid=bool(data.get("skip_invalid")),
        )

    def describe(self) -> str:
        return {
            "csv": "CSV manifest",
            "inventory": "S3 Inventory report",
            "report": "completion report",
            "listing": "listing",
            "job": "results of job",
        }[self.kind] + f" {self.location}"


def detect_kind(location: str) -> str:
    """What kind of manifest ``location`` is (a local path or an s3:// URI)."""
    if location.startswith("s3://"):
        return "inventory" if location.endswith(".json") else "csv"
    if not os.path.exists(location):
        raise ManifestError(location, None, "no such file")
    if is_report(location):
        return "report"
    if os.path.isdir(location):
        raise ManifestError(
            location,
            None,
            "is a directory, expected a CSV file, an inventory manifest.json or "
            "a completion report",
        )
    if location.endswith(".json"):
        return "inventory"
    return "csv"


def _report_file(location: str) -> str:
    """The file whose checksum identifies a report given as a directory."""
    if os.path.isdir(location):
        return os.path.join(location, "manifest.json")
    return location


class Reader:
    """Reads one source; ``client`` is an S3 client when the source needs one."""

    def __init__(
        self,
        source: Source,
        client: Any = None,
        list_args: dict[str, Any] | None = None,
        job_results: Callable[[int], Iterator[Rows]] | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.list_args = list_args or {}
        # for kind "job": the earlier job's tasks after a task id
        self.job_results = job_results
        self._tmp: str | None = None
        self._etag: str | None = None
        self._fetched: set[str] = set()

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _tmpdir(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="bulkcopy-manifest-")
        return Path(self._tmp)

    async def identity(self) -> str | None:
        """The manifest's ETag (in S3) or SHA-256 (local); ``None`` for a
        listing or an earlier job's results, which have none."""
        s = self.source
        if s.kind in ("listing", "job"):
            return None
        if s.location.startswith("s3://"):
            bucket, key = _split(s.location)
            head = await self._call("HeadObject", "head_object", Bucket=bucket, Key=key)
            self._etag = str(head.get("ETag", ""))
            return "etag:" + self._etag
        path = _report_file(s.location) if s.kind == "report" else s.location
        try:
            return sha256_file(path)
        except FileNotFoundError:
            raise ManifestError(s.location, None, "no such file") from None
        except OSError as exc:
            raise ManifestError(s.location, None, f"cannot read: {exc}") from None

    @property
    def local(self) -> bool:
        """Whether the rows come from local files only (no S3, no database)."""
        return self.source.kind in ("csv", "inventory", "report") and not (
            self.source.needs_s3
        )

    def local_batches(self, position: dict[str, Any] | None) -> Iterator[Rows]:
        """:meth:`batches` of a :attr:`local` source, without an event loop."""
        s = self.source
        pos = position or {}
        if s.kind == "report":
            entries = read_report(s.location, frozenset(s.statuses) or None)
            yield from _skip_entries(rows_from_entries(entries), pos)
        elif s.kind == "csv":
            yield from csv_batches(s.location, int(pos.get("line", 0)))
        else:
            yield from inventory_batches(
                load_inventory_manifest(s.location),
                all_versions=s.all_versions,
                delete_markers=s.delete_markers,
                position=pos,
                dates=s.needs_dates,
            )

    async def batches(self, position: dict[str, Any] | None) -> AsyncIterator[Rows]:
        s = self.source
        pos = position or {}
        if self.local:
            for rows in self.local_batches(pos):
                yield rows
        elif s.kind == "listing":
            async for rows in list_batches(
                self.client,
                s.location,
                all_versions=s.all_versions,
                delete_markers=s.delete_markers,
                position=pos,
                extra=self.list_args,
            ):
                yield rows
        elif s.kind == "job":
            assert self.job_results is not None
            for rows in self.job_results(int(pos.get("after_id", 0))):
                yield rows
        elif s.kind == "csv":
            path = await self._local(s.location, "manifest.csv")
            for rows in csv_batches(path, int(pos.get("line", 0))):
                yield rows
        else:
            async for rows in self._inventory(pos):
                yield rows

    async def _inventory(self, pos: dict[str, Any]) -> AsyncIterator[Rows]:
        s = self.source
        path = await self._local(s.location, "manifest.json")
        inv = load_inventory_manifest(path)
        # in S3: fetch one data file at a time from the inventory's bucket
        bucket = inv.destination_bucket or _split(s.location)[0]
        start_file = int(pos.get("file", 0))
        for fi, entry in enumerate(inv.files):
            if fi < start_file:
                continue
            local = await self._download(
                bucket, entry["key"], self._tmpdir() / f"data-{fi}"
            )
            try:
                for rows in file_batches(
                    inv,
                    fi,
                    local,
                    int(pos.get("row", 0)) if fi == start_file else 0,
                    all_versions=s.all_versions,
                    delete_markers=s.delete_markers,
                    name=f"s3://{bucket}/{entry['key']}",
                    dates=s.needs_dates,
                ):
                    yield rows
            finally:
                local.unlink(missing_ok=True)

    async def _local(self, location: str, name: str) -> str:
        """A local copy of the manifest file (itself when it is local)."""
        if not location.startswith("s3://"):
            return location
        bucket, key = _split(location)
        target = self._tmpdir() / name
        if name not in self._fetched:
            await self._download(bucket, key, target, if_match=self._etag)
            self._fetched.add(name)
        return str(target)

    async def _download(
        self, bucket: str, key: str, target: Path, if_match: str | None = None
    ) -> Path:
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_match:
            args["IfMatch"] = if_match
        where = f"s3://{bucket}/{key}"
        try:
            resp = await invoke_retrying("GetObject", self.client.get_object, **args)
            body = resp["Body"]
            with target.open("wb") as fh, contextlib.closing(body):
                while chunk := await body.read(1 << 20):
                    fh.write(chunk)
        except S3Error as err:
            if err.code == "PreconditionFailed":
                raise ManifestError(
                    where, None, "changed while it was being read"
                ) from None
            raise unreadable(where, "cannot download", err) from None
        return target

    async def _call(self, operation: str, method: str, **args: Any) -> dict[str, Any]:
        try:
            return await invoke_retrying(
                operation, getattr(self.client, method), **args
            )
        except S3Error as err:
            where = f"s3://{args.get('Bucket')}/{args.get('Key', '')}"
            raise unreadable(where, "cannot read", err) from None


def _split(uri: str) -> tuple[str, str]:
    bucket, key = parse_location(uri)
    if not key or key.endswith("/"):
        raise ManifestError(uri, None, "names no object (a manifest is a file)")
    return bucket, key


def _skip_entries(batches: Iterator[Rows], pos: dict[str, Any]) -> Iterator[Rows]:
    """Batches of an entry stream after the first ``pos["entries"]`` rows."""
    done = int(pos.get("entries", 0))
    seen = 0
    for rows in batches:
        first = seen
        seen += len(rows)
        rows.position = {"entries": seen}
        if seen <= done:
            continue
        if first < done:
            rows = rows.take(list(range(done - first, len(rows))))
        yield rows
