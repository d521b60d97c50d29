"""Synthetic manifests for the ingest benchmark: one object listing written as
an S3 Inventory report (CSV.gz, Parquet, ORC) and as an S3 Batch Operations CSV.

Rows are made a chunk at a time with pyarrow compute (no Python loop per row),
so generating 10,000,000 rows never holds more than one chunk.  Row ``i`` is a
pure function of ``i``: every format lists the same objects, in the same order,
and a re-run writes the same rows.  Keys are 30 to 120 characters under nested
prefixes; about 1% have spaces, ``+`` or non-ASCII characters in their name.

Inventory data files are split every ``rows_per_file`` rows and listed in
``manifest.json`` with their size and ``MD5checksum``, laid out as S3 writes a
report::

    example-src/bench-ingest/data/<uuid>.csv.gz
    example-src/bench-ingest/2026-01-01T00-00Z/manifest.json
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq

GENERATOR_VERSION = 2  # bump when the rows change, so caches are rebuilt
BUCKET = "example-src"
CONFIG_ID = "bench-ingest"
REPORT_TIME = "2026-01-01T00-00Z"
CREATION_MS = "1767225600000"  # 2026-01-01T00:00:00Z
CHUNK_ROWS = 131_072
FORMATS = ("inventory-csv", "parquet", "orc", "bops-csv")
INVENTORY = {"inventory-csv": "CSV", "parquet": "Parquet", "orc": "ORC"}
EXTENSION = {"CSV": "csv.gz", "Parquet": "parquet", "ORC": "orc"}

CSV_SCHEMA = "Bucket, Key, Size, LastModifiedDate, StorageClass, ETag"
ORC_SCHEMA = (
    "struct<bucket:string,key:string,size:bigint,last_modified_date:timestamp,"
    "storage_class:string,e_tag:string>"
)
PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key "
    "(UTF8); optional int64 size; optional int64 last_modified_date "
    "(TIMESTAMP_MILLIS); optional binary storage_class (UTF8); optional binary "
    "e_tag (UTF8);}"
)
FILE_SCHEMA = {"CSV": CSV_SCHEMA, "ORC": ORC_SCHEMA, "Parquet": PARQUET_SCHEMA}
COLUMNAR = pa.schema(
    [
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("last_modified_date", pa.timestamp("ms", tz="UTC")),
        pa.field("storage_class", pa.string()),
        pa.field("e_tag", pa.string()),
    ]
)

# the CSV data files hold text only
CSV_COLUMNS = pa.schema([(name, pa.string()) for name in COLUMNAR.names])

# Vocabularies: every size is a power of two, so a field is (hash >> s) & (n - 1).
TOPS = [
    "data",
    "logs/app",
    "media/images",
    "backups/postgres",
    "exports/reports/finance",
    "user-content/uploads",
    "ml/datasets/train",
    "archive/2019",
]
_DAY0 = dt.date(2021, 1, 1)
DATES = [(_DAY0 + dt.timedelta(days=d)).strftime("%Y/%m/%d") for d in range(1024)]
MIDS: list[str | None] = [
    None,
    None,
    None,
    None,
    "shard-07",
    "eu-west-1",
    "tenant-4f3a9c",
    "hourly/13",
    "customer-acme-corporation/projects",
    "raw",
    "processed/v2",
    "team-analytics/quarterly-reviews/drafts",
    "node-17/segment-0003",
    "tmp",
    "partition=2024-06/bucket=031",
    "thumbnails/256x256",
]
STEMS = [
    "img",
    "part",
    "events",
    "report",
    "object",
    "snapshot",
    "IMG_2041",
    "invoice",
    "chunk",
    "dump",
    "frame",
    "record",
    "audio-track",
    "model-checkpoint",
    "export",
    "doc",
]
# the ~1% of names a naive reader gets wrong: spaces, '+', non-ASCII
SPECIAL_STEMS = [
    "my file",
    "café menu",
    "a+b",
    "naïve résumé",
    "日本語 ファイル",
    "Q1 report+final",
    "photo (1)",
    "über straße",
    "100% done",
    "x+y=z",
    "Ελληνικά",
    "emoji 🚀 launch",
    "two  spaces",
    "#hash & amp",
    "ñandú",
    "C++ notes",
]
EXTS = ["jpg", "json.gz", "parquet", "log", "pdf", "csv", "bin", "txt"]
STORAGE = ["STANDARD"] * 12 + ["STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR"] * 1
STORAGE.append("DEEP_ARCHIVE")
ETAGS = [hashlib.md5(str(n).encode()).hexdigest() for n in range(1024)]
SPECIAL_PER_1024 = 10  # rows with a special name: 10 in 1024, about 1%
MIN_KEY, MAX_KEY = 30, 120


U64 = pa.uint64()
_WORDS: dict[str, list[str | None]] = {
    "tops": list(TOPS),
    "dates": list(DATES),
    "mids": MIDS,
    "stems": list(STEMS),
    "special": list(SPECIAL_STEMS),
    "exts": list(EXTS),
}
# each vocabulary as it is (Parquet, ORC) and URL-encoded (the CSV formats)
_V = {name: pa.array(words, pa.string()) for name, words in _WORDS.items()}
_ENC = {
    name: pa.array(
        [None if w is None else quote_plus(w, safe="/") for w in words], pa.string()
    )
    for name, words in _WORDS.items()
}
_V["storage"] = pa.array(STORAGE)
_V["etags"] = pa.array(ETAGS)
assert all(len(v) & (len(v) - 1) == 0 for v in _V.values())


def _mix(i: pa.Array) -> pa.Array:
    """splitmix64's finaliser over uint64 (pyarrow's multiply wraps)."""
    x = pc.multiply(
        pc.add(i, pa.scalar(0x5EED, U64)), pa.scalar(0x9E3779B97F4A7C15, U64)
    )
    x = pc.bit_wise_xor(x, pc.shift_right(x, pa.scalar(31, U64)))
    x = pc.multiply(x, pa.scalar(0xBF58476D1CE4E5B9, U64))
    return pc.bit_wise_xor(x, pc.shift_right(x, pa.scalar(29, U64)))


def _bits(x: pa.Array, shift: int, n: int) -> pa.Array:
    """``(x >> shift) & (n - 1)``: an index into a vocabulary of ``n`` values."""
    return pc.bit_wise_and(
        pc.shift_right(x, pa.scalar(shift, U64)), pa.scalar(n - 1, U64)
    )


def _pick(x: pa.Array, shift: int, vocab: str) -> pa.Array:
    values = _V[vocab]
    return values.take(_bits(x, shift, len(values)))


def rows(start: int, count: int) -> pa.Table:
    """Rows ``start`` to ``start + count - 1``: the inventory columns, plus
    ``key_encoded`` (URL-encoded, for the CSV formats) and ``special``."""
    i = pa.array(range(start, start + count), U64)
    x = _mix(i)
    special = pc.less(_bits(x, 50, 1024), pa.scalar(SPECIAL_PER_1024, U64))
    number = pc.utf8_lpad(pc.cast(i, pa.string()), width=9, padding="0")
    index = {
        "tops": _bits(x, 0, len(TOPS)),
        "dates": _bits(x, 3, len(DATES)),
        "mids": _bits(x, 13, len(MIDS)),
        "stems": _bits(x, 17, len(STEMS)),
        "special": _bits(x, 21, len(SPECIAL_STEMS)),
        "exts": _bits(x, 40, len(EXTS)),
    }

    def key(vocab: dict[str, pa.Array]) -> pa.Array:
        word = {name: vocab[name].take(at) for name, at in index.items()}
        stem = pc.if_else(special, word["special"], word["stems"])
        name = pc.binary_join_element_wise(stem, number, "-")
        name = pc.binary_join_element_wise(name, word["exts"], ".")
        return pc.binary_join_element_wise(
            word["tops"], word["dates"], word["mids"], name, "/", null_handling="skip"
        )

    y = _mix(x)  # the other columns, independent of the key
    seconds = pc.add(
        pc.cast(_bits(y, 0, 1 << 27), pa.int64()), pa.scalar(1_600_000_000)
    )
    size = pc.multiply(  # 0 B to 8 MiB
        pc.cast(_bits(y, 41, 1 << 20), pa.int64()),
        pc.cast(pc.add(_bits(y, 61, 8), pa.scalar(1, U64)), pa.int64()),
    )
    return pa.table(
        {
            "bucket": pa.repeat(pa.scalar(BUCKET), count),
            "key": key(_V),
            "size": size,
            "last_modified_date": pc.multiply(seconds, pa.scalar(1000)).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            "storage_class": _pick(y, 27, "storage"),
            "e_tag": _pick(y, 31, "etags"),
            "key_encoded": key(_ENC),
            "special": special,
        }
    )


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Writer:
    """Writes one format's files, a chunk at a time."""

    def begin_file(self, number: int) -> None: ...

    def write(self, table: pa.Table) -> None: ...

    def end_file(self) -> None: ...

    def finish(self) -> Path:
        raise NotImplementedError


class _BopsWriter(_Writer):
    """``bucket,key`` rows, keys URL-encoded, no header, one file."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "manifest.csv"
        self._schema = pa.schema([("bucket", pa.string()), ("key", pa.string())])
        self._writer = pacsv.CSVWriter(
            str(self.path),
            self._schema,
            write_options=pacsv.WriteOptions(
                include_header=False, quoting_style="none"
            ),
        )

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(
            pa.table([table["bucket"], table["key_encoded"]], schema=self._schema)
        )

    def finish(self) -> Path:
        self._writer.close()
        return self.path


class _InventoryWriter(_Writer):
    """An S3 Inventory report: data files under ``data/``, then manifest.json."""

    def __init__(self, folder: Path, file_format: str) -> None:
        self.file_format = file_format
        self.base = folder / BUCKET / CONFIG_ID
        (self.base / "data").mkdir(parents=True)
        self.files: list[dict[str, Any]] = []
        self._path: Path | None = None
        self._raw: BinaryIO | None = None
        self._gzip: gzip.GzipFile | None = None
        self._writer: Any = None

    def begin_file(self, number: int) -> None:
        name = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.file_format}/{number}")
        self._path = self.base / "data" / f"{name}.{EXTENSION[self.file_format]}"
        if self.file_format == "CSV":
            # gzip level 1: pyarrow's own gzip stream is several times slower
            self._raw = self._path.open("wb")
            self._gzip = gzip.GzipFile(
                filename="", fileobj=self._raw, mode="wb", compresslevel=1, mtime=0
            )
            self._writer = pacsv.CSVWriter(
                self._gzip,
                CSV_COLUMNS,
                write_options=pacsv.WriteOptions(
                    include_header=False, quoting_style="all_valid"
                ),
            )
        elif self.file_format == "Parquet":
            self._writer = pq.ParquetWriter(str(self._path), COLUMNAR)
        else:
            # ZLIB, ORC's usual codec (Hive's default); pyarrow's default is none
            self._writer = paorc.ORCWriter(str(self._path), compression="zlib")

    def write(self, table: pa.Table) -> None:
        if self.file_format == "CSV":
            # as S3 writes it: every field quoted, keys URL-encoded
            self._writer.write_table(
                pa.table(
                    [
                        table["bucket"],
                        table["key_encoded"],
                        table["size"].cast(pa.string()),
                        pc.strftime(
                            table["last_modified_date"], format="%Y-%m-%dT%H:%M:%SZ"
                        ),
                        table["storage_class"],
                        table["e_tag"],
                    ],
                    schema=CSV_COLUMNS,
                )
            )
        else:
            self._writer.write(table.select(COLUMNAR.names).cast(COLUMNAR))

    def end_file(self) -> None:
        self._writer.close()
        if self._gzip is not None and self._raw is not None:
            self._gzip.close()
            self._raw.close()
            self._gzip = self._raw = None
        assert self._path is not None
        self.files.append(
            {
                "key": self._path.relative_to(self.base.parents[1]).as_posix(),
                "size": self._path.stat().st_size,
                "MD5checksum": md5_of(self._path),
            }
        )

    def finish(self) -> Path:
        dated = self.base / REPORT_TIME
        dated.mkdir()
        path = dated / "manifest.json"
        manifest = {
            "sourceBucket": BUCKET,
            "destinationBucket": "arn:aws:s3:::example-inventory",
            "version": "2016-11-30",
            "creationTimestamp": CREATION_MS,
            "fileFormat": self.file_format,
            "fileSchema": FILE_SCHEMA[self.file_format],
            "files": self.files,
        }
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        (dated / "manifest.checksum").write_text(md5_of(path) + "\n")
        return path


@dataclass
class Generated:
    """One format's manifest, as written (kept in ``complete.json`` beside it)."""

    format: str
    manifest: Path
    rows: int
    data_files: int
    bytes: int
    special_rows: int
    sample_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "manifest": str(self.manifest)}


def cache_dir(root: Path, n_rows: int, rows_per_file: int) -> Path:
    return root / f"rows-{n_rows}-per-file-{rows_per_file}-v{GENERATOR_VERSION}"


def _load(folder: Path) -> Generated | None:
    try:
        data = json.loads((folder / "complete.json").read_text())
    except (OSError, ValueError):
        return None
    data["manifest"] = folder / data["manifest"]
    return Generated(**data)


def _file_ranges(n_rows: int, rows_per_file: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, rows_per_file):
        yield start, min(start + rows_per_file, n_rows)


def generate(
    root: Path, n_rows: int, rows_per_file: int, formats: list[str]
) -> dict[str, Generated]:
    """The manifests of ``n_rows`` rows in each of ``formats``, generated once
    under ``root`` (a format whose ``complete.json`` is missing is rebuilt)."""
    if n_rows < 1 or rows_per_file < 1:
        raise ValueError("rows and rows per file must be at least 1")
    base = cache_dir(root, n_rows, rows_per_file)
    done = {f: g for f in formats if (g := _load(base / f)) is not None}
    todo = [f for f in formats if f not in done]
    if not todo:
        return done
    writers: dict[str, _Writer] = {}
    for fmt in todo:
        folder = base / fmt
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        writers[fmt] = (
            _InventoryWriter(folder, INVENTORY[fmt])
            if fmt in INVENTORY
            else _BopsWriter(folder)
        )
    special = 0
    first_key = last_key = odd_key = ""
    for number, (first, end) in enumerate(_file_ranges(n_rows, rows_per_file)):
        for w in writers.values():
            w.begin_file(number)
        for start in range(first, end, CHUNK_ROWS):
            table = rows(start, min(CHUNK_ROWS, end - start))
            keys, odd = table["key"], pc.indices_nonzero(table["special"])
            special += len(odd)
            first_key = first_key or keys[0].as_py()
            last_key = keys[-1].as_py()
            if not odd_key and len(odd):
                odd_key = keys[odd[0].as_py()].as_py()
            for w in writers.values():
                w.write(table)
        for w in writers.values():
            w.end_file()
    # keys the benchmark looks up after a submit: first, first special, last
    samples = list(dict.fromkeys(k for k in (first_key, odd_key, last_key) if k))
    for fmt, w in writers.items():
        folder = base / fmt
        manifest = w.finish()
        g = Generated(
            format=fmt,
            manifest=manifest,
            rows=n_rows,
            data_files=len(w.files) if isinstance(w, _InventoryWriter) else 1,
            bytes=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
            special_rows=special,
            sample_keys=samples,
        )
        record = {**g.to_dict(), "manifest": manifest.relative_to(folder).as_posix()}
        (folder / "complete.json").write_text(json.dumps(record, indent=2) + "\n")
        done[fmt] = g
    return done
