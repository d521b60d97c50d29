"""Per-object overrides: named manifest columns, each changing one thing for a row."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.domain.errors import ManifestError
from engine.domain.models import Destination, ManifestEntry, ObjectRef, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.manifest.csv import read_csv_manifest
from engine.manifest.overrides import header_columns, parse_overrides
from engine.store import Repository
from engine.usecases.submit import submit

WriteManifest = Callable[..., str]


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty job database per module, to copy from."""
    path = tmp_path_factory.mktemp("migrated") / "db.sqlite"
    Repository(str(path)).close()
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_db: Path) -> str:
    """A fresh job database for each test: a copy of the migrated one (fast)."""
    path = tmp_path / "db.sqlite"
    shutil.copyfile(migrated_db, path)
    return str(path)


def read(write_manifest: WriteManifest, content: str) -> list[ManifestEntry]:
    return list(read_csv_manifest(write_manifest(content)))


def one_row(write_manifest: WriteManifest, header: str, row: str) -> ManifestEntry:
    """The single entry of a manifest with ``header`` and one ``row``."""
    entries = read(write_manifest, f"{header}\n{row}\n")
    assert len(entries) == 1
    return entries[0]


def cell(value: Any) -> str:
    """A CSV cell holding ``value`` as JSON, quotes doubled."""
    return '"' + json.dumps(value).replace('"', '""') + '"'


def do_submit(
    repo: Repository, path: str, prefix: str = "", *, skip_invalid: bool = False
) -> JobRecord:
    return submit(
        repo, path, Destination("dst", prefix), JobSpec(), skip_invalid=skip_invalid
    )


# -- the header ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "columns"),
    [
        (["bucket", "key"], ("bucket", "key")),
        ([" Bucket ", "KEY", "VersionId"], ("bucket", "key", "version_id")),
        (
            ["bucket", "key", "dst_key", "storage_class", "acl"],
            ("bucket", "key", "dst_key", "storage_class", "acl"),
        ),
    ],
)
def test_header_names_its_columns(fields: list[str], columns: tuple[str, ...]) -> None:
    """A first row starting bucket,key is a header, case and spaces aside."""
    assert header_columns(fields) == columns


@pytest.mark.parametrize(
    "fields", [["b", "k"], ["key", "bucket"], ["bucket"], ["my-bucket", "key"]]
)
def test_a_row_not_starting_bucket_key_is_no_header(fields: list[str]) -> None:
    """Only bucket,key (in that order) makes a header; anything else is data."""
    assert header_columns(fields) is None


def test_unknown_header_column_is_refused_naming_it() -> None:
    """A header naming a column bulkcopy does not know is an error naming it."""
    with pytest.raises(ValueError, match=r"^unknown column 'colour' in the header"):
        header_columns(["bucket", "key", "colour"])


def test_column_named_twice_is_refused() -> None:
    """The same column twice (versionId and version_id too) is an error."""
    with pytest.raises(ValueError, match="named twice"):
        header_columns(["bucket", "key", "version_id", "versionId"])


# -- each override column --------------------------------------------------------------

OVERRIDES = [
    ("storage_class", "GLACIER_IR", "GLACIER_IR"),
    (
        "metadata",
        cell({"owner": "ana", "note": "a, b"}),
        {"owner": "ana", "note": "a, b"},
    ),
    ("tags", cell({"team": "blue"}), {"team": "blue"}),
    ("content_type", "image/jpeg", "image/jpeg"),
    ("cache_control", '"max-age=60, public"', "max-age=60, public"),
    (
        "content_disposition",
        '"attachment; filename=""a.jpg"""',
        'attachment; filename="a.jpg"',
    ),
    ("content_encoding", "gzip", "gzip"),
    ("content_language", "en-GB", "en-GB"),
    ("expires", "2030-01-31T12:00:00Z", "2030-01-31T12:00:00Z"),
    ("acl", "bucket-owner-full-control", "bucket-owner-full-control"),
    ("dst_key", "archive/a.jpg", "archive/a.jpg"),
]


@pytest.mark.parametrize(("column", "raw", "value"), OVERRIDES)
def test_each_override_column_sets_its_value(
    write_manifest: WriteManifest, column: str, raw: str, value: Any
) -> None:
    """A cell in an override column becomes that row's override, nothing more."""
    entry = one_row(write_manifest, f"bucket,key,{column}", f"src,a.jpg,{raw}")
    assert entry.error is None
    assert entry.src == ObjectRef("src", "a.jpg")
    assert entry.overrides == {column: value}
    assert entry.line == 2


def test_every_column_at_once(write_manifest: WriteManifest) -> None:
    """All override columns on one row are read together."""
    header = "bucket,key,version_id," + ",".join(c for c, _, _ in OVERRIDES)
    row = "src,a.jpg,v1," + ",".join(raw for _, raw, _ in OVERRIDES)
    entry = one_row(write_manifest, header, row)
    assert entry.error is None
    assert entry.src == ObjectRef("src", "a.jpg", "v1")
    assert entry.overrides == {c: v for c, _, v in OVERRIDES}


def test_empty_cells_override_nothing(write_manifest: WriteManifest) -> None:
    """A row whose override cells are empty has no overrides at all."""
    header = "bucket,key,version_id," + ",".join(c for c, _, _ in OVERRIDES)
    entry = one_row(write_manifest, header, "src,a.jpg" + "," * (len(OVERRIDES) + 1))
    assert entry.error is None
    assert entry.src == ObjectRef("src", "a.jpg")  # empty version: the latest
    assert entry.overrides is None


def test_only_the_filled_cells_are_overrides(write_manifest: WriteManifest) -> None:
    """Rows of one manifest override different things, each only its own."""
    entries = read(
        write_manifest,
        "bucket,key,storage_class,content_type\n"
        "src,a,GLACIER,\n"
        "src,b,,text/plain\n"
        "src,c,,\n",
    )
    assert [e.overrides for e in entries] == [
        {"storage_class": "GLACIER"},
        {"content_type": "text/plain"},
        None,
    ]
    assert [e.line for e in entries] == [2, 3, 4]


def test_keys_and_dst_keys_are_url_decoded(write_manifest: WriteManifest) -> None:
    """dst_key is URL-encoded like key: '+' is a space, %XX a byte."""
    entry = one_row(
        write_manifest, "bucket,key,dst_key", "src,a%2Bb+c,new%2Fdir/x+y%2B%C3%A9"
    )
    assert entry.src.key == "a+b c"
    assert entry.overrides == {"dst_key": "new/dir/x y+é"}


def test_version_id_column(write_manifest: WriteManifest) -> None:
    """A version_id column pins that version; an empty cell means the latest."""
    entries = read(write_manifest, "bucket,key,version_id\nb,k,v1\nb,k,\nb,k2,null\n")
    assert [e.src for e in entries] == [
        ObjectRef("b", "k", "v1"),
        ObjectRef("b", "k"),
        ObjectRef("b", "k2", "null"),
    ]
    assert all(e.error is None and e.overrides is None for e in entries)


# -- bad cells -------------------------------------------------------------------------

BAD_CELLS = [
    ("metadata", '"{not json}"', "metadata: not JSON"),
    ("metadata", cell(["a", "b"]), "metadata: expected a JSON object of strings"),
    ("metadata", cell({"a": 1}), "metadata: expected a JSON object of strings"),
    ("metadata", cell({"a": None}), "metadata: expected a JSON object of strings"),
    ("tags", cell("x"), "tags: expected a JSON object of strings"),
    (
        "tags",
        cell({f"k{i}": "v" for i in range(11)}),
        "tags: S3 allows at most 10 tags per object",
    ),
    ("acl", "public", "acl 'public' is not a canned ACL"),
    ("acl", "PRIVATE", "acl 'PRIVATE' is not a canned ACL"),
    ("expires", "tomorrow", "expires 'tomorrow' is not an ISO 8601 date"),
    ("storage_class", "glacier", "storage_class 'glacier' is not a storage class"),
    ("storage_class", "STANDARD-IA", "storage_class 'STANDARD-IA' is not a storage"),
    ("dst_key", "%FF", "dst_key does not URL-decode to UTF-8"),
    ("dst_key", "k" * 1025, "dst_key is over the 1024-byte S3 limit"),
]


@pytest.mark.parametrize(("column", "raw", "message"), BAD_CELLS)
def test_bad_cell_is_a_row_error(
    write_manifest: WriteManifest, column: str, raw: str, message: str
) -> None:
    """A malformed cell fails its row (with the reason) and not the rows after it."""
    entries = read(write_manifest, f"bucket,key,{column}\nsrc,a,{raw}\nsrc,b,\n")
    bad, good = entries
    assert (bad.line, bad.fatal, bad.overrides) == (2, False, None)
    assert bad.error is not None
    assert bad.error.startswith(message)
    assert (good.line, good.error, good.src) == (3, None, ObjectRef("src", "b"))


def test_ten_tags_are_allowed(write_manifest: WriteManifest) -> None:
    """Exactly ten tags, S3's limit, are accepted."""
    tags = {f"k{i}": "v" for i in range(10)}
    entry = one_row(write_manifest, "bucket,key,tags", f"src,a,{cell(tags)}")
    assert entry.overrides == {"tags": tags}


def test_empty_json_object_is_an_override(write_manifest: WriteManifest) -> None:
    """'{}' in metadata or tags is an override to none, unlike an empty cell."""
    entry = one_row(write_manifest, "bucket,key,metadata,tags", "src,a,{},{}")
    assert entry.overrides == {"metadata": {}, "tags": {}}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("src,a", "row has 2 columns but the header names 3"),
        ("src,a,GLACIER,extra", "row has 4 columns but the header names 3"),
        (",a,GLACIER", "empty bucket name"),
        ("src,,GLACIER", "empty key"),
    ],
)
def test_malformed_named_row_is_a_row_error(
    write_manifest: WriteManifest, row: str, message: str
) -> None:
    """A row that does not fit the header, or names no object, is a row error."""
    entry = one_row(write_manifest, "bucket,key,storage_class", row)
    assert entry.error == message
    assert not entry.fatal


def test_unknown_header_column_is_fatal(write_manifest: WriteManifest) -> None:
    """An unknown header column stops the read: no row after it is trusted."""
    entries = read(write_manifest, "bucket,key,colour\nsrc,a,red\nsrc,b,blue\n")
    assert len(entries) == 1
    assert (entries[0].line, entries[0].fatal) == (1, True)
    assert entries[0].error is not None
    assert "unknown column 'colour'" in entries[0].error


def test_header_after_a_byte_order_mark(write_manifest: WriteManifest) -> None:
    """A UTF-8 BOM before the header (as Excel writes) does not hide it."""
    entries = read(write_manifest, "\ufeffbucket,key,acl\nsrc,a,private\n")
    assert [(e.line, e.overrides) for e in entries] == [(2, {"acl": "private"})]


# -- plain manifests are unchanged -----------------------------------------------------


def test_plain_batch_operations_manifest_has_no_overrides(
    write_manifest: WriteManifest,
) -> None:
    """A headerless bucket,key[,version] manifest reads as before, no overrides."""
    entries = read(write_manifest, "b,k1\nb,dir/k+2\n")
    assert [(e.line, e.src, e.overrides) for e in entries] == [
        (1, ObjectRef("b", "k1"), None),
        (2, ObjectRef("b", "dir/k 2"), None),
    ]
    versioned = read(write_manifest, "b,k,v1\nb,k,v2\n")
    assert [e.src.version_id for e in versioned] == ["v1", "v2"]


def test_plain_row_with_too_many_columns_is_still_a_plain_error(
    write_manifest: WriteManifest,
) -> None:
    """Without a header, a four-field row is the usual column-count error."""
    (entry,) = read(write_manifest, "b,k,v,GLACIER\n")
    assert entry.error == ("expected 2 or 3 columns (bucket,key[,versionId]), got 4")


def test_parse_overrides_skips_empty_cells() -> None:
    """Only non-empty cells become overrides; text columns are kept verbatim."""
    assert parse_overrides({"content_type": "", "acl": ""}) == {}
    assert parse_overrides({"content_language": " en "}) == {"content_language": " en "}


# -- through submit --------------------------------------------------------------------


def test_unknown_header_column_fails_submit_with_file_and_line(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The ManifestError names FILE:1, even with --skip-invalid, and writes nothing."""
    path = write_manifest("bucket,key,colour\nsrc,a,red\n")
    with pytest.raises(ManifestError) as info:
        do_submit(repo, path, skip_invalid=True)
    assert str(info.value).startswith(f"{path}:1: unknown column 'colour'")
    assert repo.list_jobs() == []


def test_bad_cell_fails_submit_with_file_and_line(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A bad override cell fails the submit as FILE:LINE: reason."""
    path = write_manifest("bucket,key,acl\nsrc,a,private\nsrc,b,everyone\n")
    with pytest.raises(ManifestError) as info:
        do_submit(repo, path)
    assert str(info.value) == f"{path}:3: acl 'everyone' is not a canned ACL"
    assert repo.list_jobs() == []


def test_bad_cell_with_skip_invalid_is_a_failed_task(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """With --skip-invalid the bad row is a failed task; good rows keep overrides."""
    path = write_manifest(
        "bucket,key,tags,storage_class\nsrc,a,{},GLACIER\nsrc,b,[],\n"
    )
    job = do_submit(repo, path, skip_invalid=True)
    rows = list(repo.iter_results(job.id))
    assert [(r.line, r.status) for r in rows] == [
        (2, TaskStatus.PENDING),
        (3, TaskStatus.FAILED),
    ]
    assert rows[0].overrides == {"tags": {}, "storage_class": "GLACIER"}
    assert rows[1].error_message == "tags: expected a JSON object of strings"


def test_overrides_are_stored_with_their_task(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Each task keeps its row's overrides for the run; rows without have none."""
    meta = {"owner": "ana"}
    path = write_manifest(
        f"bucket,key,metadata,expires\nsrc,a,{cell(meta)},2030-01-01\nsrc,b,,\n"
    )
    job = do_submit(repo, path)
    rows = {r.src.key: r.overrides for r in repo.iter_results(job.id)}
    assert rows == {"a": {"metadata": meta, "expires": "2030-01-01"}, "b": None}


def test_dst_key_replaces_prefix_and_template(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A dst_key cell is the destination key itself; other rows use the prefix."""
    path = write_manifest("bucket,key,dst_key\nsrc,a.jpg,exact/place.jpg\nsrc,b.jpg,\n")
    job = do_submit(repo, path, prefix="pre")
    assert {r.src.key: r.dst_key for r in repo.iter_results(job.id)} == {
        "a.jpg": "exact/place.jpg",
        "b.jpg": "pre/b.jpg",
    }


def test_dst_key_collision_is_refused_naming_key_and_lines(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Two objects given the same dst_key refuse the submit, naming both lines."""
    path = write_manifest("bucket,key,dst_key\nsrc,a,same\nsrc,b,\nsrc,c,same\n")
    with pytest.raises(ManifestError) as info:
        do_submit(repo, path)
    message = str(info.value)
    assert "'same'" in message
    assert "s3://src/a (line 2)" in message
    assert "s3://src/c (line 4)" in message
    assert repo.list_jobs() == []


def test_dst_key_onto_another_rows_default_key_is_a_collision(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """A dst_key equal to where another row lands by default is refused too."""
    path = write_manifest("bucket,key,dst_key\nsrc,a,\nsrc,b,a\n")
    with pytest.raises(ManifestError, match="'a' from s3://src/a"):
        do_submit(repo, path)


def test_versions_may_share_a_dst_key(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """Versions of one object share their destination on purpose."""
    path = write_manifest(
        "bucket,key,version_id,dst_key\nsrc,a,v1,hist/a\nsrc,a,v2,hist/a\n"
    )
    job = do_submit(repo, path)
    assert job.total_tasks == 2


def test_one_source_to_two_dst_keys_is_not_silently_dropped(
    repo: Repository, write_manifest: WriteManifest
) -> None:
    """The same object asked at two destinations is copied twice or refused."""
    path = write_manifest("bucket,key,dst_key\nsrc,a,copy-1\nsrc,a,copy-2\n")
    try:
        job = do_submit(repo, path)
    except ManifestError:
        return  # refusing the manifest is an acceptable answer
    assert sorted(r.dst_key for r in repo.iter_results(job.id)) == ["copy-1", "copy-2"]
