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
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.domain import etag
from engine.domain.errors import ManifestError
from engine.domain.models import ManifestEntry
from engine.manifest.csv import decode_key
from engine.manifest.filehash import md5_file
from engine.manifest.filters import storage_value
from engine.manifest.rows import BATCH_ROWS, DELETE_MARKER, Rows, entries_from_rows

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


Columns = dict[str, list[Any]]  # snake_case column name -> values, one batch


def _batches(
    path: Path, inv: InventoryManifest, dates: bool = True
) -> Iterator[Columns]:
    """The data file's rows, a few thousand at a time, column by column."""
    if inv.file_format == "CSV":
        yield from _csv_batches(path, inv.columns, dates)
    else:
        for batch in _arrow_batches(path, inv):
            yield _arrow_columns(batch, dates)


def _csv_batches(
    path: Path, columns: list[str], dates: bool = True
) -> Iterator[Columns]:
    """A gzipped CSV data file (no header), with the typed columns converted:
    Size to int, LastModifiedDate to Unix seconds, the flags to bool."""
    width = len(columns)
    n = 0
    for text in _gunzip_text(path):
        rows = _split_quoted(text, width)
        if rows is None:  # not every field plainly quoted: the csv module
            chunk = list(csv.reader(text.splitlines(keepends=True)))
            bad = next((i for i, r in enumerate(chunk) if len(r) != width), None)
            if bad is not None:
                raise ValueError(
                    f"row {n + bad + 1} has {len(chunk[bad])} columns, the "
                    f"fileSchema names {width}"
                )
            rows = [list(c) for c in zip(*chunk, strict=True)] if chunk else []
        if not rows or not rows[0]:
            continue
        n += len(rows[0])
        cols: Columns = dict(zip(columns, rows, strict=True))
        if not dates:
            cols.pop("last_modified_date", None)
        for name, convert in _CSV_CONVERT.items():
            if name in cols:
                cols[name] = [convert(v) if v else None for v in cols[name]]
        if "bucket" in cols:  # one string object per bucket: smaller batches
            seen: dict[str, str] = {}
            cols["bucket"] = [seen.setdefault(b, b) for b in cols["bucket"]]
        yield cols


def _split_quoted(text: str, width: int) -> list[list[str]] | None:
    """The columns of CSV lines whose every field is quoted and holds no
    quote or newline (what S3 writes: keys are URL-encoded), split in one
    pass; ``None`` when ``text`` is not all like that."""
    lines = text.count("\n")
    if (
        not lines
        or not text.startswith('"')
        or not text.endswith('"\n')
        or text.count('"') != 2 * width * lines
        or "\r" in text
    ):
        return None
    flat = text[1:-2].replace('"\n"', '","').split('","')
    if len(flat) != width * lines:
        return None
    return [flat[i::width] for i in range(width)]


def _gunzip_text(path: Path) -> Iterator[str]:
    """A gzip file's text (all its members) in pieces of whole lines,
    decompressed with zlib a quarter megabyte at a time."""
    inflate = zlib.decompressobj(wbits=47)
    rest = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 18):
            data = rest + inflate.decompress(chunk)
            while inflate.eof and inflate.unused_data:  # the next gzip member
                more = inflate.unused_data
                inflate = zlib.decompressobj(wbits=47)
                data += inflate.decompress(more)
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut].decode("utf-8")
    rest += inflate.flush()
    if rest:
        yield rest.decode("utf-8") + ("" if rest.endswith(b"\n") else "\n")


def _iso_seconds(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()  # "…T01:02:03.000Z"


def _flag(value: str) -> bool:
    return value.lower() == "true"


_CSV_CONVERT: dict[str, Callable[[str], Any]] = {
    "size": int,
    "last_modified_date": _iso_seconds,
    "is_latest": _flag,
    "is_delete_marker": _flag,
}


def _arrow_batches(path: Path, inv: InventoryManifest) -> Iterator[Any]:
    """An ORC or Parquet data file as Arrow record batches of at most
    BATCH_ROWS rows, single-threaded and through small buffers: memory stays
    flat however big the file (a whole stripe or row group is never held)."""
    if inv.file_format == "ORC":
        import pyarrow.dataset as ds

        yield from ds.dataset(str(path), format="orc").to_batches(
            batch_size=BATCH_ROWS, use_threads=False
        )
    else:
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(
            str(path), buffer_size=1 << 20, pre_buffer=False
        ).iter_batches(batch_size=BATCH_ROWS, use_threads=False)


def _arrow_columns(batch: Any, dates: bool = True) -> Columns:
    """An Arrow batch as Python lists, timestamps as Unix seconds."""
    import pyarrow as pa

    cols: Columns = {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(col.type):
            if not dates:
                continue
            micros = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            cols[column_name(name)] = [
                None if m is None else m / 1e6 for m in micros.to_pylist()
            ]
        else:
            cols[column_name(name)] = col.to_pylist()
    return cols


def inventory_batches(
    inv: InventoryManifest,
    *,
    all_versions: bool = False,
    delete_markers: bool = False,
    position: dict[str, Any] | None = None,
    dates: bool = True,
) -> Iterator[Rows]:
    """Stream the rows of a local S3 Inventory report in batches.

    A batch's position is ``{"file": i, "row": n}``: n rows of data file i are
    read; handed back as ``position``, reading continues after them.
    ``dates=False`` skips LastModifiedDate (parsing it is a fifth of the
    reading) when nothing needs it.
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
                dates=dates,
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
    dates: bool = True,
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
        for cols in _batches(path, inv, dates):
            first = n
            n += len(cols["key"])
            if n <= done:
                continue
            if first < done:
                cols = {k: v[done - first :] for k, v in cols.items()}
                first = done
            rows = _rows(cols, first, inv, all_versions, delete_markers, shown)
            rows.position = {"file": fi, "row": n}
            yield rows
    except ManifestError:
        raise
    except Exception as exc:  # an unreadable or malformed data file
        raise ManifestError(str(shown), None, f"cannot read: {exc}") from None
    if n < done:
        raise ManifestError(
            str(shown), None, f"has {n} rows, fewer than the {done} already read"
        )


def _rows(
    cols: Columns,
    first: int,
    inv: InventoryManifest,
    all_versions: bool,
    delete_markers: bool,
    path: Path,
) -> Rows:
    """One batch's columns as rows; ``first`` rows of the file come before it."""
    buckets = cols.get("bucket") or []
    raw_keys = cols.get("key") or []
    versions = cols.get("version_id")
    sizes = cols.get("size")
    storage = cols.get("storage_class")
    tiers = cols.get("intelligent_tiering_access_tier")
    latest = cols.get("is_latest")
    markers = cols.get("is_delete_marker")
    modified = cols.get("last_modified_date")
    etags = cols.get("e_tag")
    n = len(raw_keys)
    keep: list[int] | None = None  # None: every row
    if markers is not None or (latest is not None and not all_versions):
        keep = [
            i
            for i in range(n)
            if not (markers is not None and markers[i] and not delete_markers)
            and (all_versions or latest is None or latest[i] is not False)
            and not (markers is not None and markers[i] and not all_versions)
        ]

    def pick(col: list[Any] | None) -> list[Any] | None:
        if col is None or keep is None:
            return col
        return [col[i] for i in keep]

    lines = [first + i + 1 for i in (keep if keep is not None else range(n))]
    buckets, raw_keys = pick(buckets) or [], pick(raw_keys) or []
    if not (all(buckets) and all(raw_keys)):
        bad = next(
            i
            for i, (b, k) in enumerate(zip(buckets, raw_keys, strict=True))
            if not b or not k
        )
        raise ManifestError(str(path), lines[bad], "empty bucket or key")
    keys = raw_keys
    if inv.file_format == "CSV":  # URL-encoded
        try:
            keys = [decode_key(k) if "%" in k or "+" in k else k for k in raw_keys]
        except UnicodeDecodeError:
            bad = next(i for i, k in enumerate(raw_keys) if not _decodes(k))
            raise ManifestError(str(path), lines[bad], "key is not UTF-8") from None
    picked_versions = pick(versions)
    storage = pick(storage)
    if storage is not None and tiers is not None:
        in_tier = zip(storage, pick(tiers) or [], strict=True)
        storage = [storage_value(c, t) for c, t in in_tier]
    rows = Rows(
        lines=lines,
        buckets=buckets,
        keys=keys,
        # versioned report: an empty id is the null version
        versions=[None] * len(keys)
        if picked_versions is None
        else [v or "null" for v in picked_versions],
        sizes=pick(sizes),
        modified=pick(modified),
        storage=storage,
        etags=None
        if etags is None
        else [etag.quoted(e) if e else None for e in pick(etags) or []],
    )
    picked_markers = pick(markers)
    if picked_markers is not None:
        rows.kinds = {i: DELETE_MARKER for i, m in enumerate(picked_markers) if m}
    return rows


def _decodes(key: str) -> bool:
    try:
        decode_key(key)
    except UnicodeDecodeError:
        return False
    return True


def read_inventory(
    path: str, *, all_versions: bool = False, delete_markers: bool = False
) -> Iterator[ManifestEntry]:
    """The rows of the local S3 Inventory report ``path`` one at a time."""
    inv = load_inventory_manifest(path)
    return entries_from_rows(
        inventory_batches(inv, all_versions=all_versions, delete_markers=delete_markers)
    )
