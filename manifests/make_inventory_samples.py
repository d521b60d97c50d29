"""Write the sample S3 Inventory reports in manifests/inventory-{csv,parquet,orc}/.

    python manifests/make_inventory_samples.py            # rewrites the samples
    python manifests/make_inventory_samples.py --out DIR  # somewhere else

One listing of a versioned bucket ``example-src`` ("include all versions"),
written as S3 writes a report in each format: ``manifest.json`` (and
``manifest.checksum``) beside a ``data/`` folder holding the data file.  The
objects: keys with a space, non-ASCII characters and a ``+``; an object with
two versions; an object written before versioning (empty VersionId: the null
version); a delete marker; a GLACIER object; sizes from 0 bytes to 6 GiB
(above the 5 GiB CopyObject limit).  Timestamps are fixed, so a re-run writes
the same CSV.gz byte for byte (Parquet and ORC files carry the writer's
version, so they are identical for one pyarrow release).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.orc as paorc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
BUCKET = "example-src"
CONFIG_ID = "all-versions"
CREATED = datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
GIB = 1024**3

# (key, version_id, is_latest, is_delete_marker, size, last modified,
#  storage_class, parts): "" is the null version; a delete marker has no size,
#  ETag or storage class; parts > 0 is a multipart upload (ETag "md5-parts")
Row = tuple[str, str, bool, bool, int | None, str, str | None, int]
OBJECTS: list[Row] = [
    ("archive/2019/db-backup.tar", "Ql3d0HF0yvcdPXbHw2pqs6TLmWvq.N_B", True, False,
     734_003_200, "2019-12-31T23:59:59", "GLACIER", 0),
    ("data/versioned.csv", "oZ8vKwZV1L5rcd7qNN_Ck5T3LfBLT9iq", True, False,
     2_048, "2025-06-02T09:30:00", "STANDARD", 0),
    ("data/versioned.csv", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrH", False, False,
     1_024, "2025-06-01T09:30:00", "STANDARD", 0),
    ("docs/annual report 2024.pdf", "tQf2v5Yc8GQ0v1v4Xb0rSxKzq0mUO7zW", True, False,
     1_048_576, "2025-02-14T16:45:10", "STANDARD", 0),
    ("docs/café/menü.txt", "b5Nq2x9Kp3Lr7Tz1Wv4Yd6Fh8Jm0Qs2E", True, False,
     4_321, "2025-03-03T08:00:00", "STANDARD", 0),
    ("empty/.keep", "", True, False,
     0, "2020-05-01T00:00:00", "STANDARD", 0),
    ("logs/2025/01/01/app.log.gz", "Z7r0Yb3Qk9Wm2Xv5Tc8Ln1Pd4Hf6Js0G", True, False,
     5_242_881, "2025-01-02T00:05:00", "STANDARD_IA", 0),
    ("math/1+1=2.txt", "N2p4R6t8V0x2Z4b6D8f0H2j4L6n8P0r2", True, False,
     12, "2025-04-01T12:00:00", "STANDARD", 0),
    ("photos/2024/beach.jpg", "", True, False,
     2_345_678, "2020-08-15T10:20:30", "STANDARD", 0),
    ("tmp/deleted.log", "Yk1Wm3Xo5Zq7Bs9Du1Fw3Hy5Ja7Lc9Ne", True, True,
     None, "2025-07-07T07:07:07", None, 0),
    ("video/raw/take-01.mov", "Jd9Sb7Qz5Xx3Vv1Tt9Rr7Pp5Nn3Ll1Kk", True, False,
     6 * GIB, "2025-05-20T18:00:00", "STANDARD", 48),
]  # fmt: skip

COLUMNS = (
    "bucket",
    "key",
    "version_id",
    "is_latest",
    "is_delete_marker",
    "size",
    "last_modified_date",
    "e_tag",
    "storage_class",
    "is_multipart_uploaded",
)
CSV_SCHEMA = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, "
    "ETag, StorageClass, IsMultipartUploaded"
)
ORC_SCHEMA = (
    "struct<bucket:string,key:string,version_id:string,is_latest:boolean,"
    "is_delete_marker:boolean,size:bigint,last_modified_date:timestamp,"
    "e_tag:string,storage_class:string,is_multipart_uploaded:boolean>"
)
PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key "
    "(UTF8); optional binary version_id (UTF8); optional boolean is_latest; "
    "optional boolean is_delete_marker; optional int64 size; optional int64 "
    "last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); "
    "optional binary storage_class (UTF8); optional boolean "
    "is_multipart_uploaded;}"
)
ARROW_SCHEMA = pa.schema(
    [
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("version_id", pa.string()),
        pa.field("is_latest", pa.bool_()),
        pa.field("is_delete_marker", pa.bool_()),
        pa.field("size", pa.int64()),
        pa.field("last_modified_date", pa.timestamp("ms", tz="UTC")),
        pa.field("e_tag", pa.string()),
        pa.field("storage_class", pa.string()),
        pa.field("is_multipart_uploaded", pa.bool_()),
    ]
)
FORMATS = {"csv": "CSV", "parquet": "Parquet", "orc": "ORC"}
SCHEMAS = {"CSV": CSV_SCHEMA, "Parquet": PARQUET_SCHEMA, "ORC": ORC_SCHEMA}
EXTENSIONS = {"CSV": "csv.gz", "Parquet": "parquet", "ORC": "orc"}


def records() -> list[dict[str, Any]]:
    """The rows of the report, one dict per object version, as typed values."""
    out = []
    for key, version, latest, marker, size, modified, storage, parts in OBJECTS:
        etag = None
        if not marker:
            digest = hashlib.md5(f"{key}\0{version}".encode()).hexdigest()
            etag = f"{digest}-{parts}" if parts else digest
        out.append(
            {
                "bucket": BUCKET,
                "key": key,
                "version_id": version,
                "is_latest": latest,
                "is_delete_marker": marker,
                "size": size,
                "last_modified_date": datetime.fromisoformat(modified).replace(
                    tzinfo=UTC
                ),
                "e_tag": etag,
                "storage_class": storage,
                "is_multipart_uploaded": None if marker else parts > 0,
            }
        )
    return out


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # as S3 writes it: 2025-06-02T09:30:00.000Z
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if name == "key":  # URL-encoded: a space is '+', '+' is %2B
        return quote_plus(value, safe="/")
    return str(value)


def csv_gz(rows: list[dict[str, Any]]) -> bytes:
    """Gzipped CSV as S3 writes it: no header, every field quoted; fixed gzip
    header (no name, mtime 0) so the bytes never change."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        writer.writerow([_csv_cell(c, row[c]) for c in COLUMNS])
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return raw.getvalue()


def write_report(folder: Path, file_format: str) -> Path:
    """One report in ``folder``: ``data/<uuid>.<ext>``, ``manifest.json``,
    ``manifest.checksum``.  Returns the manifest's path."""
    rows = records()
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{BUCKET}/{CONFIG_ID}/{file_format}")
    data = folder / "data" / f"{name}.{EXTENSIONS[file_format]}"
    data.parent.mkdir(parents=True, exist_ok=True)
    for old in data.parent.iterdir():
        if old != data:
            old.unlink()
    if file_format == "CSV":
        data.write_bytes(csv_gz(rows))
    else:
        table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
        if file_format == "Parquet":
            pq.write_table(table, str(data))
        else:
            paorc.write_table(table, str(data), compression="zlib")
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": "arn:aws:s3:::example-inventory",
        "version": "2016-11-30",
        "creationTimestamp": str(int(CREATED.timestamp() * 1000)),
        "fileFormat": file_format,
        "fileSchema": SCHEMAS[file_format],
        "files": [
            {
                "key": f"{BUCKET}/{CONFIG_ID}/data/{data.name}",
                "size": data.stat().st_size,
                "MD5checksum": hashlib.md5(data.read_bytes()).hexdigest(),
            }
        ],
    }
    path = folder / "manifest.json"
    text = json.dumps(manifest, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    (folder / "manifest.checksum").write_text(
        hashlib.md5(text.encode()).hexdigest() + "\n"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE, help="where inventory-*/ go")
    args = p.parse_args(argv)
    for suffix, file_format in FORMATS.items():
        path = write_report(args.out / f"inventory-{suffix}", file_format)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
