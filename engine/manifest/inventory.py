"""S3 Inventory reports as manifests: ``manifest.json`` and its data files.

A report is a ``manifest.json`` naming its ``fileFormat`` (CSV, ORC or
Parquet), its ``fileSchema`` (the columns) and its data ``files``, each with
an ``MD5checksum``.  Every data file is checked against its checksum before a
row of it is used.  CSV files are gzipped, have no header, and URL-encode
keys; ORC and Parquet files hold keys as they are (read with pyarrow, a batch
at a time, so memory does not grow with the report).

By default only current versions are copied (``IsLatest``), and delete
markers never; an empty VersionId is the null version (an object written
before versioning) and is copied as such.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ManifestError
from engine.manifest.csv import decode_key
from engine.models import ManifestEntry, ObjectRef

FORMATS = ("CSV", "ORC", "Parquet")
# CSV fileSchema names (VersionId) -> the snake_case names ORC and Parquet use
_COLUMN = re.compile(r"(?<!^)(?=[A-Z])")


def column_name(name: str) -> str:
    """``LastModifiedDate`` or ``last_modified_date`` -> ``last_modified_date``."""
    name = name.strip()
    if "_" in name or name.islower():
        return name.lower()
    return _COLUMN.sub("_", name).lower()


def schema_columns(file_format: str, schema: str) -> list[str]:
    """The column names of a ``fileSchema``, in order, snake_case."""
    if file_format == "CSV":
        return [column_name(c) for c in schema.split(",")]
    if file_format == "ORC":  # struct<bucket:string,key:string,...>
        inner = schema.strip()
        inner = inner[inner.index("<") + 1 : inner.rindex(">")]
        return [column_name(part.split(":")[0]) for part in inner.split(",")]
    # Parquet: message s3.inventory { required binary bucket (UTF8); ... }
    fields = re.findall(r"(?:required|optional)\s+\w+\s+(\w+)", schema)
    return [column_name(f) for f in fields]


@dataclass(frozen=True, slots=True)
class InventoryManifest:
    path: Path
    file_format: str
    columns: list[str]
    files: list[dict[str, Any]]
    source_bucket: str


def load_inventory_manifest(path: str) -> InventoryManifest:
    """Read and check ``manifest.json``; errors name the file and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(
            path, None, f"not a readable S3 Inventory manifest: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ManifestError(path, None, "an S3 Inventory manifest is a JSON object")
    file_format = data.get("fileFormat")
    if file_format not in FORMATS:
        raise ManifestError(
            path, None, f"fileFormat {file_format!r} is not one of {', '.join(FORMATS)}"
        )
    columns = schema_columns(file_format, str(data.get("fileSchema", "")))
    for needed in ("bucket", "key"):
        if needed not in columns:
            raise ManifestError(
                path, None, f"fileSchema has no {needed.capitalize()} column"
            )
    files = data.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and "key" in f for f in files
    ):
        raise ManifestError(path, None, "files must list objects with a key")
    return InventoryManifest(
        Path(path), file_format, columns, files, str(data.get("sourceBucket", ""))
    )


def locate(manifest: Path, key: str) -> Path:
    """The local copy of data file ``key`` (its key in the inventory bucket).

    Looked for under each folder above the manifest (a synced copy of the
    inventory bucket), then in a ``data/`` folder beside or above it, then
    beside it.
    """
    here = manifest.resolve().parent
    name = key.rsplit("/", 1)[-1]
    candidates = [d / key for d in (here, *here.parents)]
    candidates += [here / "data" / name, here.parent / "data" / name, here / name]
    for c in candidates:
        if c.is_file():
            return c
    raise ManifestError(
        str(manifest),
        None,
        f"data file {key} not found (looked beside the manifest, in data/ and "
        "under the folders above it)",
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _rows_csv(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for n, fields in enumerate(csv.reader(fh), 1):
            yield n, dict(zip(columns, fields, strict=False))


def _rows_columnar(
    path: Path, file_format: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    if file_format == "ORC":
        from pyarrow import orc

        batches = orc.ORCFile(str(path)).read().to_batches(max_chunksize=8192)
    else:
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(str(path)).iter_batches(batch_size=8192)
    n = 0
    for batch in batches:
        names = [column_name(c) for c in batch.schema.names]
        for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
            n += 1
            yield n, dict(zip(names, row, strict=True))


def read_inventory(path: str, *, all_versions: bool = False) -> Iterator[ManifestEntry]:
    """Stream the entries of the S3 Inventory report whose manifest is ``path``.

    ``line`` is the row number within its data file; errors name the data file.
    """
    inv = load_inventory_manifest(path)
    for spec in inv.files:
        data = locate(inv.path, spec["key"])
        want = spec.get("MD5checksum")
        if want and _md5(data) != want:
            raise ManifestError(
                str(data), None, f"MD5 checksum is not the {want} the manifest gives"
            )
        rows = (
            _rows_csv(data, inv.columns)
            if inv.file_format == "CSV"
            else _rows_columnar(data, inv.file_format)
        )
        for n, row in rows:
            entry = _entry(n, row, inv.file_format == "CSV", all_versions)
            if entry is None:
                continue
            if entry.error is not None:
                raise ManifestError(str(data), n, entry.error)
            yield entry


def _entry(
    n: int, row: dict[str, Any], encoded: bool, all_versions: bool
) -> ManifestEntry | None:
    if _truthy(row.get("is_delete_marker")):
        return None
    if not all_versions and "is_latest" in row and not _truthy(row["is_latest"]):
        return None
    bucket, raw_key = str(row.get("bucket") or ""), row.get("key") or ""
    version = row.get("version_id")
    size = row.get("size")
    if not bucket or not raw_key:
        return ManifestEntry(n, ObjectRef(bucket, raw_key), "empty bucket or key")
    try:
        key = decode_key(raw_key) if encoded else str(raw_key)
    except UnicodeDecodeError:
        return ManifestEntry(n, ObjectRef(bucket, raw_key), "key is not UTF-8")
    if "version_id" in row:  # versioned report: an empty id is the null version
        version = version or "null"
    try:
        size_value = int(size) if size not in (None, "") else None
    except ValueError:
        return ManifestEntry(
            n, ObjectRef(bucket, key), f"size {size!r} is not a number"
        )
    return ManifestEntry(n, ObjectRef(bucket, key, version or None), size=size_value)
