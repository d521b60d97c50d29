"""S3 Inventory reports (CSV.gz, ORC, Parquet) as manifests, with generated fixtures."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest
from pyarrow import orc
from pyarrow import parquet as pq

from engine.domain.errors import ManifestError
from engine.domain.models import Destination, ObjectRef
from engine.domain.spec import JobSpec
from engine.manifest.inventory import read_inventory, schema_columns
from engine.store import Repository
from engine.usecases.submit import submit

# bucket, key, version_id, is_latest, is_delete_marker, size
ROWS: list[tuple[str, str, str, bool, bool, int]] = [
    ("src", "a.txt", "v2", True, False, 10),
    ("src", "a.txt", "v1", False, False, 9),
    ("src", "spaces and+plus/é.txt", "", True, False, 3),  # the null version
    ("src", "gone.txt", "v9", True, True, 0),  # a delete marker
]
CSV_SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"
ORC_SCHEMA = (
    "struct<bucket:string,key:string,version_id:string,is_latest:boolean,"
    "is_delete_marker:boolean,size:bigint>"
)
PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key "
    "(UTF8); optional binary version_id (UTF8); optional boolean is_latest; "
    "optional boolean is_delete_marker; optional int64 size; }"
)


def _table() -> pa.Table:
    names = ["bucket", "key", "version_id", "is_latest", "is_delete_marker", "size"]
    return pa.table({n: [r[i] for r in ROWS] for i, n in enumerate(names)})


def _write_csv_gz(path: Path) -> None:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    for b, k, v, latest, marker, size in ROWS:
        w.writerow(
            [b, quote(k, safe="/"), v, str(latest).lower(), str(marker).lower(), size]
        )
    path.write_bytes(gzip.compress(text.getvalue().encode()))


def make_report(tmp_path: Path, fmt: str, **changes: Any) -> Path:
    """A report laid out as S3 writes it: manifest.json in a dated folder, data/."""
    root = tmp_path / "inv" / "src" / "daily"
    (root / "data").mkdir(parents=True)
    dated = root / "2026-11-20T01-00Z"
    dated.mkdir()
    ext = {"CSV": "csv.gz", "ORC": "orc", "Parquet": "parquet"}[fmt]
    data = root / "data" / f"part-0.{ext}"
    if fmt == "CSV":
        _write_csv_gz(data)
    elif fmt == "ORC":
        orc.write_table(_table(), str(data))
    else:
        pq.write_table(_table(), str(data))
    schema = {"CSV": CSV_SCHEMA, "ORC": ORC_SCHEMA, "Parquet": PARQUET_SCHEMA}[fmt]
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "fileFormat": fmt,
        "fileSchema": schema,
        "files": [
            {
                "key": f"src/daily/data/part-0.{ext}",
                "size": data.stat().st_size,
                "MD5checksum": hashlib.md5(data.read_bytes()).hexdigest(),
            }
        ],
    }
    manifest.update(changes)
    path = dated / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("fmt", ["CSV", "ORC", "Parquet"])
def test_latest_versions_without_delete_markers(tmp_path: Path, fmt: str) -> None:
    """Each format gives the current versions, keys decoded, empty id as 'null'."""
    entries = list(read_inventory(str(make_report(tmp_path, fmt))))
    assert [(e.src, e.size) for e in entries] == [
        (ObjectRef("src", "a.txt", "v2"), 10),
        (ObjectRef("src", "spaces and+plus/é.txt", "null"), 3),
    ]
    assert all(e.error is None for e in entries)


def test_schema_columns_of_each_format() -> None:
    want = ["bucket", "key", "version_id", "is_latest", "is_delete_marker", "size"]
    assert schema_columns("CSV", CSV_SCHEMA) == want
    assert schema_columns("ORC", ORC_SCHEMA) == want
    assert schema_columns("Parquet", PARQUET_SCHEMA) == want
    assert schema_columns("CSV", "Bucket, Key, ETag, LastModifiedDate")[2:] == [
        "e_tag",
        "last_modified_date",
    ]


def test_checksum_mismatch_names_the_data_file(tmp_path: Path) -> None:
    path = make_report(tmp_path, "CSV")
    data = json.loads(path.read_text())
    data["files"][0]["MD5checksum"] = "0" * 32
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"part-0\.csv\.gz.*MD5 checksum"):
        list(read_inventory(str(path)))


def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    path = make_report(tmp_path, "Parquet")
    next((tmp_path / "inv").rglob("part-0.parquet")).unlink()
    with pytest.raises(ManifestError, match=r"data file .*part-0\.parquet not found"):
        list(read_inventory(str(path)))


def test_schema_without_key_column_is_refused(tmp_path: Path) -> None:
    path = make_report(tmp_path, "CSV", fileSchema="Bucket, VersionId, Size")
    with pytest.raises(ManifestError, match="no Key column"):
        list(read_inventory(str(path)))


@pytest.mark.parametrize("bad", ["JSON", None])
def test_unknown_file_format_is_refused(tmp_path: Path, bad: str | None) -> None:
    path = make_report(tmp_path, "CSV", fileFormat=bad)
    with pytest.raises(ManifestError, match="fileFormat"):
        list(read_inventory(str(path)))


def test_not_json_names_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match=r"manifest\.json: not a readable"):
        list(read_inventory(str(path)))


def test_an_inventory_submits_as_a_job(tmp_path: Path, repo: Repository) -> None:
    """`bulkcopy submit …/manifest.json`: one task per current object, sizes kept."""
    path = make_report(tmp_path, "ORC")
    job = submit(repo, str(path), Destination.parse("s3://dst/copy/"), JobSpec())
    rows = list(repo.iter_results(job.id))
    assert [(r.src.key, r.src.version_id, r.dst_key) for r in rows] == [
        ("a.txt", "v2", "copy/a.txt"),
        ("spaces and+plus/é.txt", "null", "copy/spaces and+plus/é.txt"),
    ]
    assert job.spec.source_buckets == ("src",)
