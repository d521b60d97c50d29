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

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.checksums import md5_file
from engine.errors import ManifestError
from engine.manifest.csv import decode_key
from engine.manifest.filters import storage_value
from engine.manifest.rows import BATCH_ROWS, DELETE_MARKER, Rows, entries_from_rows
from engine.models import ManifestEntry

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
    # the bucket holding the data files (from ``arn:aws:s3:::name``)
    destination_bucket: str = ""


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
        Path(path),
        file_format,
        columns,
        files,
        str(data.get("sourceBucket", "")),
        str(data.get("destinationBucket", "")).rsplit(":", 1)[-1],
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


def verify_md5(path: Path, want: str | None) -> None:
    """Refuse a data file whose MD5 is not the one its manifest gives."""
    if want and md5_file(path) != want:
        raise ManifestError(
            str(path), None, f"MD5 checksum is not the {want} the manifest gives"
        )


def _arrow_batches(path: Path, inv: InventoryManifest) -> Iterator[Any]:
    """The data file as Arrow record batches, columns snake_case."""
    import pyarrow as pa

    if inv.file_format == "CSV":
        from pyarrow import csv as pacsv

        typed = _csv_types()
        types = {c: typed.get(c, pa.string()) for c in inv.columns}
        reader = pacsv.open_csv(
            pa.input_stream(str(path), compression="gzip"),
            read_options=pacsv.ReadOptions(
                column_names=inv.columns, block_size=1 << 22
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=False,
                true_values=["true", "TRUE", "True"],
                false_values=["false", "FALSE", "False"],
                timestamp_parsers=[pacsv.ISO8601],
            ),
        )
        yield from reader
    elif inv.file_format == "ORC":
        from pyarrow import orc

        f = orc.ORCFile(str(path))
        for i in range(f.nstripes):
            yield f.read_stripe(i)
    else:
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(str(path)).iter_batches(batch_size=BATCH_ROWS)


def _csv_types() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "size": pa.int64(),
        "last_modified_date": pa.timestamp("ms", tz="UTC"),
        "is_latest": pa.bool_(),
        "is_delete_marker": pa.bool_(),
    }


def _column(batch: Any, name: str) -> list[Any] | None:
    i = batch.schema.get_field_index(name)
    return None if i < 0 else batch.column(i).to_pylist()


def _seconds(batch: Any, name: str) -> list[float | None] | None:
    """A timestamp column as Unix seconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    i = batch.schema.get_field_index(name)
    if i < 0:
        return None
    col = batch.column(i)
    if not pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ms", tz="UTC"))
    micros = pc.cast(pc.cast(col, pa.timestamp("us", tz="UTC")), pa.int64())
    return [None if m is None else m / 1e6 for m in micros.to_pylist()]


def inventory_batches(
    inv: InventoryManifest,
    *,
    all_versions: bool = False,
    delete_markers: bool = False,
    position: dict[str, Any] | None = None,
) -> Iterator[Rows]:
    """Stream the rows of a local S3 Inventory report in batches.

    A batch's position is ``{"file": i, "row": n}``: n rows of data file i are
    read; handed back as ``position``, reading continues after them.
    """
    start_file = int((position or {}).get("file", 0))
    start_row = int((position or {}).get("row", 0))
    for fi, entry in enumerate(inv.files):
        if fi >= start_file:
            yield from file_batches(
                inv,
                fi,
                locate(inv.path, entry["key"]),
                start_row if fi == start_file else 0,
                all_versions=all_versions,
                delete_markers=delete_markers,
            )


def file_batches(
    inv: InventoryManifest,
    fi: int,
    path: Path,
    done: int = 0,
    *,
    all_versions: bool = False,
    delete_markers: bool = False,
    name: str | None = None,
) -> Iterator[Rows]:
    """The rows of data file ``fi`` (local copy at ``path``, checked against
    its MD5 first) after its first ``done`` rows.  Errors name the file as
    ``name`` (its S3 address when ``path`` is a downloaded copy)."""
    shown = Path(name) if name else path
    try:
        verify_md5(path, inv.files[fi].get("MD5checksum"))
    except ManifestError as exc:
        raise ManifestError(str(shown), exc.line, exc.reason) from None
    n = 0
    try:
        for batch in _arrow_batches(path, inv):
            first = n
            n += batch.num_rows
            if n <= done:
                continue
            if first < done:
                batch = batch.slice(done - first)
                first = done
            rows = _rows(batch, first, inv, all_versions, delete_markers, shown)
            rows.position = {"file": fi, "row": n}
            yield rows
    except ManifestError:
        raise
    except Exception as exc:  # pyarrow: an unreadable or malformed data file
        raise ManifestError(str(shown), None, f"cannot read: {exc}") from None
    if n < done:
        raise ManifestError(
            str(shown), None, f"has {n} rows, fewer than the {done} already read"
        )


def _rows(
    batch: Any,
    first: int,
    inv: InventoryManifest,
    all_versions: bool,
    delete_markers: bool,
    path: Path,
) -> Rows:
    """One Arrow batch as rows; ``first`` rows of the file come before it."""
    names = [column_name(c) for c in batch.schema.names]
    if names != batch.schema.names:
        batch = batch.rename_columns(names)
    buckets = _column(batch, "bucket") or []
    raw_keys = _column(batch, "key") or []
    versions = _column(batch, "version_id")
    sizes = _column(batch, "size")
    storage = _column(batch, "storage_class")
    tiers = _column(batch, "intelligent_tiering_access_tier")
    latest = _column(batch, "is_latest")
    markers = _column(batch, "is_delete_marker")
    modified = _seconds(batch, "last_modified_date")
    encoded = inv.file_format == "CSV"
    rows = Rows(
        sizes=[] if sizes is not None else None,
        modified=[] if modified is not None else None,
        storage=[] if storage is not None else None,
    )
    for i, raw_key in enumerate(raw_keys):
        line = first + i + 1
        marker = bool(markers[i]) if markers is not None else False
        if marker and not (all_versions and delete_markers):
            continue
        if not all_versions and latest is not None and latest[i] is False:
            continue
        bucket = buckets[i]
        if not bucket or not raw_key:
            raise ManifestError(str(path), line, "empty bucket or key")
        key = raw_key
        if encoded and ("%" in raw_key or "+" in raw_key):
            try:
                key = decode_key(raw_key)
            except UnicodeDecodeError:
                raise ManifestError(str(path), line, "key is not UTF-8") from None
        if marker:
            rows.kinds[len(rows)] = DELETE_MARKER
        rows.lines.append(line)
        rows.buckets.append(bucket)
        rows.keys.append(key)
        # versioned report: an empty id is the null version
        rows.versions.append(None if versions is None else (versions[i] or "null"))
        if sizes is not None:
            rows.sizes.append(sizes[i])  # type: ignore[union-attr]
        if modified is not None:
            rows.modified.append(modified[i])  # type: ignore[union-attr]
        if storage is not None:
            rows.storage.append(  # type: ignore[union-attr]
                storage_value(storage[i], tiers[i] if tiers is not None else None)
            )
    return rows


def read_inventory(
    path: str, *, all_versions: bool = False, delete_markers: bool = False
) -> Iterator[ManifestEntry]:
    """The rows of the local S3 Inventory report ``path`` one at a time."""
    inv = load_inventory_manifest(path)
    return entries_from_rows(
        inventory_batches(inv, all_versions=all_versions, delete_markers=delete_markers)
    )
