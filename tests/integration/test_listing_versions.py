"""Listing a prefix, every version, S3 manifests and archived objects, end to end.

Each test submits and runs real jobs in this process against a moto_server
process over HTTP: `--from` listings of more than one page, the filters,
`--all-versions` with and without `--delete-markers`, a BOps CSV and an S3
Inventory report read from S3, archived objects recorded as skipped, and retry
jobs made from an earlier job's failures.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import json
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from engine.copy.pin import NEVER
from engine.domain.errors import ManifestError
from engine.domain.models import Destination, JobStatus, TaskStatus
from engine.domain.records import JobRecord
from engine.domain.spec import CopyOptions, JobSpec
from engine.manifest.filters import Filters
from engine.manifest.listing import list_batches
from engine.manifest.sources import Source, detect_kind
from engine.run.jobclient import open_job_client
from engine.store import Repository
from engine.usecases.earlier_job import job_source
from engine.usecases.submit import submit_source
from tests.helpers import client_settings, get_body, run_job, seed, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration


GROUPS = ("keep", "keep", "keep", "tmp", "other")  # by i % 5
N_LISTED = 2100  # three ListObjectsV2 pages: 1000, 1000, 100


def _key(i: int) -> str:
    return f"data/{GROUPS[i % 5]}/{i:05d}.bin"


def _size(i: int) -> int:
    return 1 + i % 10


@pytest.fixture(scope="module")
def listed_bucket(moto: S3Server) -> str:
    """A bucket with 2,100 small objects under data/, and two just outside it."""
    bucket = moto.new_bucket()
    c = moto.client()

    def put(i: int) -> None:
        c.put_object(Bucket=bucket, Key=_key(i), Body=b"x" * _size(i))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(N_LISTED)))
    c.put_object(Bucket=bucket, Key="database.bin", Body=b"not under data/")
    c.put_object(Bucket=bucket, Key="elsewhere/x.bin", Body=b"not under data/")
    return bucket


def _spec(
    server: S3Server, stat_source: bool = True, delete_source: bool = False
) -> JobSpec:
    return JobSpec(
        client=client_settings(server),
        copy=CopyOptions(stat_source, delete_source=delete_source),
    )


def _submit(
    repo: Repository,
    server: S3Server,
    source: Source,
    dst: str,
    *,
    stat_source: bool = True,
    restart: bool = False,
    delete_source: bool = False,
) -> JobRecord:
    """Submit ``source`` as the CLI does, with an S3 client for listings and
    manifests in S3 (``delete_source``: a move)."""
    return asyncio.run(
        submit_source(
            repo,
            source,
            Destination.parse(dst),
            _spec(server, stat_source, delete_source),
            restart=restart,
            open_client=open_job_client,
        )
    )


def _retry(repo: Repository, old: JobRecord, *statuses: TaskStatus) -> JobRecord:
    """What `bulkcopy retry` does: a job of ``old``'s tasks in ``statuses``,
    with its spec, into its destination."""
    return asyncio.run(
        submit_source(
            repo,
            job_source(old, statuses),
            Destination(old.dst_bucket, old.dst_prefix),
            old.spec,
        )
    )


def _listing(uri: str, **kw: Any) -> Source:
    return Source(kind="listing", location=uri, **kw)


def _listed_keys(server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    pages = server.client().get_paginator("list_objects_v2")
    return [
        o["Key"]
        for page in pages.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


# -- --from: a listing of more than one page ----------------------------------


def test_listing_of_several_pages_copies_every_object_exactly_once(
    moto: S3Server, listed_bucket: str, tmp_path: Path
) -> None:
    """`--from s3://bucket/data/` takes each of 2,100 objects once, and only those;
    the listing's sizes are recorded without a HEAD per object."""
    dst = moto.new_bucket()
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = _submit(
        repo,
        moto,
        _listing(f"s3://{listed_bucket}/data/"),
        f"s3://{dst}/c/",
        stat_source=False,
    )

    assert job.status is JobStatus.SUBMITTED
    assert job.ingest_state is None
    assert job.total_tasks == N_LISTED
    assert job.duplicate_rows == 0
    counts = run_job(repo, job, moto, concurrency=32)

    assert counts.get(TaskStatus.SUCCEEDED) == N_LISTED
    assert counts.total == N_LISTED
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    rows = list(repo.iter_results(job.id))
    taken = Counter(r.src.key for r in rows)
    assert set(taken) == {_key(i) for i in range(N_LISTED)}
    assert set(taken.values()) == {1}
    assert all(r.bytes == _size(int(r.src.key[-9:-4])) for r in rows)
    assert sorted(_listed_keys(moto, dst)) == sorted(
        "c/" + _key(i) for i in range(N_LISTED)
    )


def test_a_listed_object_on_a_store_that_ignores_the_pin_is_headed_first(
    moto: S3Server, listed_bucket: str, tmp_path: Path
) -> None:
    """A listing's ETag pins each copy instead of a HEAD, where the store
    holds copies to their pin.  moto copies whatever is there: the run's
    first listed copy, pinned to an ETag no object has, is carried out
    anyway (and kept: a HEAD shows the object as listed), and from then on
    each object is HEADed and its copy pinned to the HEAD's ETag
    (tests/stores: the same on every store, overwritten objects included;
    tests/unit/test_execute.py: no HEAD where the pin holds)."""
    dst = moto.new_bucket()
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = _submit(
        repo, moto, _listing(f"s3://{listed_bucket}/data/keep/"), f"s3://{dst}/"
    )
    heads: list[str] = []
    pins: list[str] = []

    def count(client: Any) -> None:
        def seen(params: dict[str, Any], **_: Any) -> None:
            if params.get("Key", "").startswith("data/"):
                heads.append(params["Key"])

        def pinned(params: dict[str, Any], **_: Any) -> None:
            pins.append(params.get("CopySourceIfMatch", ""))

        client.meta.events.register("provide-client-params.s3.HeadObject", seen)
        client.meta.events.register("provide-client-params.s3.CopyObject", pinned)

    counts = run_job(repo, job, moto, concurrency=16, preflight=False, on_client=count)
    listed = {
        o["Key"]: o["ETag"]
        for page in moto.client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=listed_bucket, Prefix="data/keep/")
        for o in page.get("Contents", [])
    }
    assert counts.get(TaskStatus.SUCCEEDED) == len(listed)
    assert sorted(heads) == sorted(listed)
    # the probe's copy, carried out anyway, is the first object's copy
    assert len(pins) == len(listed)
    assert pins.count(NEVER) == 1
    assert set(pins) - {NEVER} <= set(listed.values())
    for r in repo.iter_results(job.id):
        assert r.src_etag == listed[r.src.key]
        assert r.bytes == _size(int(r.src.key[-9:-4]))


def test_listing_filters_keep_only_the_objects_asked_for(
    moto: S3Server, listed_bucket: str, tmp_path: Path
) -> None:
    """Include and exclude prefixes and a minimum size pick objects across pages;
    an exclusion wins over an inclusion, and the rest are counted as filtered."""
    dst = moto.new_bucket()
    repo = Repository(str(tmp_path / "db.sqlite"))
    filters = Filters(
        include_prefixes=("data/keep/", "data/tmp/"),
        exclude_prefixes=("data/tmp/",),
        min_size=8,
    )
    source = _listing(f"s3://{listed_bucket}/data/", filters=filters)

    job = _submit(repo, moto, source, f"s3://{dst}")
    counts = run_job(repo, job, moto, concurrency=32)

    want = {
        _key(i) for i in range(N_LISTED) if GROUPS[i % 5] == "keep" and _size(i) >= 8
    }
    assert len(want) == N_LISTED // 10
    assert job.total_tasks == len(want)
    assert job.filtered_rows == N_LISTED - len(want)
    assert counts.get(TaskStatus.SUCCEEDED) == len(want)
    assert sorted(_listed_keys(moto, dst)) == sorted(want)


# -- --all-versions: the destination gets the source's history in order ------


@dataclass
class History:
    bucket: str
    version_ids: dict[str, list[str]]  # key -> source version ids, oldest first


BODIES = {"multi.txt": [b"v1", b"v2", b"v3"], "single.txt": [b"only"]}
GONE = "gone.txt"  # one version, then deleted (a delete marker is its latest)


def _next_second() -> None:
    """Wait until the clock enters the next second (moto's LastModified has
    one-second resolution), so the next write gets a later LastModified."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.01)


def _write_history(server: S3Server, *, tick: bool) -> History:
    """A versioned bucket: multi.txt with 3 versions, single.txt with 1, and
    gone.txt written then deleted; ``tick``: each step in a later second."""
    bucket = server.new_bucket(versioned=True)
    c = server.client()
    ids: dict[str, list[str]] = {k: [] for k in [*BODIES, GONE]}

    def put(key: str, body: bytes) -> None:
        ids[key].append(c.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"])

    put("multi.txt", b"v1")
    put("single.txt", b"only")
    put(GONE, b"was here")
    if tick:
        _next_second()
    put("multi.txt", b"v2")
    ids[GONE].append(c.delete_object(Bucket=bucket, Key=GONE)["VersionId"])
    if tick:
        _next_second()
    put("multi.txt", b"v3")
    return History(bucket, ids)


def _versions(server: S3Server, bucket: str) -> dict[str, Any]:
    resp = server.client().list_object_versions(Bucket=bucket)
    return {
        "versions": resp.get("Versions", []),
        "markers": resp.get("DeleteMarkers", []),
    }


def _same_second_history(server: S3Server) -> History:
    """A history written within one second (retried if a second boundary fell
    in the middle), so every LastModified is equal."""
    for _ in range(5):
        history = _write_history(server, tick=False)
        listed = _versions(server, history.bucket)
        stamps = {v["LastModified"] for v in listed["versions"] + listed["markers"]}
        if len(stamps) == 1:
            return history
    raise AssertionError("could not write the history within one second")


def _destination_history(
    server: S3Server, bucket: str, key: str
) -> tuple[list[bytes], bool]:
    """The bodies of ``key``'s versions, newest first, and whether a delete
    marker is its latest version."""
    listed = _versions(server, bucket)
    versions = [v for v in listed["versions"] if v["Key"] == key]
    markers = [m for m in listed["markers"] if m["Key"] == key]
    bodies = [get_body(server, bucket, key, v["VersionId"]) for v in versions]
    if versions and not any(m["IsLatest"] for m in markers):
        assert versions[0]["IsLatest"], "the newest version is not the latest"
    return bodies, any(m["IsLatest"] for m in markers)


def _copy_history(
    moto: S3Server, tmp_path: Path, history: History, delete_markers: bool
) -> tuple[Repository, JobRecord, str]:
    dst = moto.new_bucket(versioned=True)
    repo = Repository(str(tmp_path / "db.sqlite"))
    source = _listing(
        f"s3://{history.bucket}",
        all_versions=True,
        delete_markers=delete_markers,
    )
    job = _submit(repo, moto, source, f"s3://{dst}")
    run_job(repo, job, moto, concurrency=8)
    return repo, job, dst


def _assert_history_copied(
    moto: S3Server, repo: Repository, job: JobRecord, dst: str, delete_markers: bool
) -> None:
    rows = list(repo.iter_results(job.id))
    assert {r.status for r in rows} == {TaskStatus.SUCCEEDED}
    assert len(rows) == 5 + delete_markers
    for key, bodies in BODIES.items():
        assert _destination_history(moto, dst, key) == (bodies[::-1], False), key
    assert _destination_history(moto, dst, GONE) == ([b"was here"], delete_markers)


@pytest.mark.parametrize("delete_markers", [False, True], ids=["plain", "markers"])
def test_all_versions_copies_each_history_oldest_first(
    moto: S3Server, tmp_path: Path, delete_markers: bool
) -> None:
    """Every version lands in the destination in the source's order (newest is
    latest); a delete marker is recreated as the latest only with
    --delete-markers, otherwise the deleted key's last version is current."""
    history = _write_history(moto, tick=True)
    listed = _versions(moto, history.bucket)
    multi = [v["LastModified"] for v in listed["versions"] if v["Key"] == "multi.txt"]
    gone = [
        v["LastModified"]
        for v in [*listed["versions"], *listed["markers"]]
        if v["Key"] == GONE
    ]
    assert len(set(multi)) == 3, "precondition: versions in distinct seconds"
    assert len(set(gone)) == 2, "precondition: deleted a second after written"

    repo, job, dst = _copy_history(moto, tmp_path, history, delete_markers)

    _assert_history_copied(moto, repo, job, dst, delete_markers)
    src_versions = {r.src.version_id for r in repo.iter_results(job.id)}
    want = {v for key, ids in history.version_ids.items() for v in ids}
    if not delete_markers:
        want.discard(history.version_ids[GONE][-1])
    assert src_versions == want


def test_a_move_of_every_version_empties_the_source_history(
    moto: S3Server, tmp_path: Path
) -> None:
    """A move with --all-versions --delete-markers: the destination gets the
    whole history in order, and each source version (delete markers too) is
    deleted by its id: the source bucket is left with no version at all."""
    history = _write_history(moto, tick=True)
    dst = moto.new_bucket(versioned=True)
    repo = Repository(str(tmp_path / "db.sqlite"))
    source = _listing(f"s3://{history.bucket}", all_versions=True, delete_markers=True)
    job = _submit(repo, moto, source, f"s3://{dst}", delete_source=True)

    counts = run_job(repo, job, moto, concurrency=8)

    _assert_history_copied(moto, repo, job, dst, True)
    assert counts.sources_deleted == 6
    assert _versions(moto, history.bucket) == {"versions": [], "markers": []}


def test_moving_every_version_into_a_bucket_without_versions_is_refused(
    moto: S3Server, tmp_path: Path
) -> None:
    """Each version would replace the last one copied while its source is
    deleted (and a delete marker would delete the copy): the job does not
    start, nothing is copied or deleted."""
    from engine.domain.errors import JobCannotStart

    history = _write_history(moto, tick=False)
    dst = moto.new_bucket()  # versioning never enabled
    repo = Repository(str(tmp_path / "db.sqlite"))
    source = _listing(f"s3://{history.bucket}", all_versions=True, delete_markers=True)
    job = _submit(repo, moto, source, f"s3://{dst}", delete_source=True)
    before = _versions(moto, history.bucket)

    with pytest.raises(JobCannotStart, match="versioning enabled on the destination"):
        run_job(repo, job, moto, preflight=False)  # checked even so

    assert repo.get_job(job.id).status.value == "failed"
    assert _versions(moto, history.bucket) == before
    assert _listed_keys(moto, dst) == []


def test_a_move_deletes_a_null_version_instead_of_hiding_it(
    moto: S3Server, tmp_path: Path
) -> None:
    """An object written before versioning was enabled on its bucket (its
    version is "null"): the move deletes that version, it does not add a
    delete marker in front of it."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    c.put_object(Bucket=src, Key="old.txt", Body=b"from before versioning")
    c.put_bucket_versioning(Bucket=src, VersioningConfiguration={"Status": "Enabled"})
    c.put_object(Bucket=src, Key="new.txt", Body=b"versioned")
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = _submit(
        repo, moto, _listing(f"s3://{src}"), f"s3://{dst}", delete_source=True
    )

    counts = run_job(repo, job, moto)

    assert counts.sources_deleted == 2
    assert get_body(moto, dst, "old.txt") == b"from before versioning"
    assert _versions(moto, src) == {"versions": [], "markers": []}


@pytest.mark.parametrize(
    "delete_markers",
    [
        False,
        True,
    ],
    ids=["plain", "markers"],
)
def test_all_versions_keeps_the_order_of_writes_within_one_second(
    moto: S3Server, tmp_path: Path, delete_markers: bool
) -> None:
    """S3's LastModified has one-second resolution: versions (and a delete
    marker) written in the same second still land in the order S3 lists them."""
    history = _same_second_history(moto)

    repo, job, dst = _copy_history(moto, tmp_path, history, delete_markers)

    _assert_history_copied(moto, repo, job, dst, delete_markers)


def test_retry_of_an_all_versions_job_keeps_the_history_order(
    moto: S3Server, tmp_path: Path
) -> None:
    """Versions that failed (no destination bucket yet) are copied oldest first
    by the retry job too."""
    history = _write_history(moto, tick=True)
    dst = f"t-missing-{history.bucket[2:]}"
    repo = Repository(str(tmp_path / "db.sqlite"))
    source = _listing(f"s3://{history.bucket}/multi", all_versions=True)
    job = _submit(repo, moto, source, f"s3://{dst}")
    failed = run_job(repo, job, moto, preflight=False)
    assert failed.get(TaskStatus.FAILED) == 3
    c = moto.client()
    c.create_bucket(Bucket=dst)
    c.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})

    retry = _retry(repo, job, TaskStatus.FAILED)
    counts = run_job(repo, retry, moto, concurrency=1)

    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert _destination_history(moto, dst, "multi.txt") == (
        [b"v3", b"v2", b"v1"],
        False,
    )


# -- a listing read again from each of its checkpoints --------------------------


Listed = list[tuple[str, str | None, str | None]]  # key, version id, kind


async def _read_listing(
    server: S3Server, uri: str, all_versions: bool, position: dict[str, Any] | None
) -> list[tuple[Listed, dict[str, Any]]]:
    """Every batch of the listing from ``position`` on (pages of 2 keys), with
    the checkpoint after it."""
    out = []
    async with open_job_client(_spec(server)) as (client, _requests):
        async for rows in list_batches(
            client,
            uri,
            all_versions=all_versions,
            delete_markers=all_versions,
            position=position,
            page_size=2,
        ):
            listed = [
                (rows.keys[i], rows.versions[i], rows.kinds.get(i))
                for i in range(len(rows))
            ]
            out.append((listed, rows.position))
    return out


@pytest.mark.parametrize("all_versions", [False, True], ids=["objects", "versions"])
def test_listing_resumed_at_any_checkpoint_reads_the_rest_exactly_once(
    moto: S3Server, all_versions: bool
) -> None:
    """Each batch's checkpoint, handed back to a new reader (as a resumed submit
    does), continues the ListObjectsV2 or ListObjectVersions listing right after
    that batch: nothing read twice, nothing missed, delete markers included."""
    history = _same_second_history(moto)
    c = moto.client()
    for key in ["a.txt", "b/c.txt", "d.txt"]:
        c.put_object(Bucket=history.bucket, Key=key, Body=b"x")
    uri = f"s3://{history.bucket}"

    full = asyncio.run(_read_listing(moto, uri, all_versions, None))

    everything = [row for listed, _pos in full for row in listed]
    assert len(full) >= 3
    # gone.txt is deleted: not a current object, but a version and a marker
    assert len(everything) == (9 if all_versions else 5)
    assert len(set(everything)) == len(everything)
    for i, (_listed, position) in enumerate(full[:-1]):
        rest = asyncio.run(_read_listing(moto, uri, all_versions, position))
        assert [row for listed, _pos in rest for row in listed] == [
            row for listed, _pos in full[i + 1 :] for row in listed
        ], f"resumed after batch {i}"


# -- MANIFEST in S3: a BOps CSV and an S3 Inventory report --------------------


def _csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    for bucket, key in rows:
        w.writerow([bucket, quote(key, safe="/")])
    return text.getvalue().encode()


def test_bops_csv_manifest_in_s3_copies_the_listed_objects(
    moto: S3Server, tmp_path: Path
) -> None:
    """`submit s3://manifests/m.csv`: the rows it lists are copied, no others."""
    src, dst, manifests = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    keys = ["a.txt", "dir/b c+d.txt", "unicode/é.txt"]
    bodies = seed(moto, src, [*keys, "not-listed.txt"])
    moto.client().put_object(
        Bucket=manifests,
        Key="jobs/m.csv",
        Body=_csv_bytes([(src, k) for k in keys]),
    )
    uri = f"s3://{manifests}/jobs/m.csv"
    assert detect_kind(uri) == "csv"
    repo = Repository(str(tmp_path / "db.sqlite"))

    job = _submit(repo, moto, Source(kind="csv", location=uri), f"s3://{dst}/p/")
    counts = run_job(repo, job, moto)

    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert job.manifest_identity is not None
    assert job.manifest_identity.startswith("etag:")
    assert sorted(_listed_keys(moto, dst)) == sorted("p/" + k for k in keys)
    for k in keys:
        assert get_body(moto, dst, "p/" + k) == bodies[k]


def _inventory_data(rows: list[tuple[str, str, int]]) -> bytes:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    for bucket, key, size in rows:
        w.writerow([bucket, quote(key, safe="/"), size])
    return gzip.compress(text.getvalue().encode())


def _put_inventory(
    server: S3Server,
    inv_bucket: str,
    src: str,
    files: list[list[tuple[str, str, int]]],
    *,
    corrupt: int | None = None,
) -> str:
    """Upload an S3 Inventory report (CSV.gz data files under data/, then
    manifest.json) laid out as S3 writes it; returns the manifest's URI.
    ``corrupt``: that data file's MD5checksum is wrong."""
    c = server.client()
    entries = []
    for n, rows in enumerate(files):
        data = _inventory_data(rows)
        key = f"{src}/daily/data/part-{n}.csv.gz"
        c.put_object(Bucket=inv_bucket, Key=key, Body=data)
        md5 = hashlib.md5(data).hexdigest()
        if n == corrupt:
            md5 = "0" * 32
        entries.append({"key": key, "size": len(data), "MD5checksum": md5})
    manifest = {
        "sourceBucket": src,
        "destinationBucket": f"arn:aws:s3:::{inv_bucket}",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": entries,
    }
    key = f"{src}/daily/2026-11-20T01-00Z/manifest.json"
    c.put_object(Bucket=inv_bucket, Key=key, Body=json.dumps(manifest).encode())
    return f"s3://{inv_bucket}/{key}"


def test_inventory_report_in_s3_copies_every_listed_object(
    moto: S3Server, tmp_path: Path
) -> None:
    """`submit s3://inv/.../manifest.json` fetches each data file from the bucket
    its destinationBucket ARN names, and copies every row of every file."""
    src, dst, inv = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    keys = ["a.txt", "spaces and+plus/é.txt", "b/c.txt", "d.txt"]
    bodies = seed(moto, src, [*keys, "not-in-report.txt"])
    rows = [(src, k, len(bodies[k])) for k in keys]
    uri = _put_inventory(moto, inv, src, [rows[:2], rows[2:]])
    assert detect_kind(uri) == "inventory"
    repo = Repository(str(tmp_path / "db.sqlite"))

    job = _submit(repo, moto, Source(kind="inventory", location=uri), f"s3://{dst}")
    counts = run_job(repo, job, moto)

    assert job.total_tasks == 4
    assert counts.get(TaskStatus.SUCCEEDED) == 4
    assert sorted(_listed_keys(moto, dst)) == sorted(keys)
    for k in keys:
        assert get_body(moto, dst, k) == bodies[k]


def test_inventory_data_file_with_a_wrong_md5_fails_the_submit(
    moto: S3Server, tmp_path: Path
) -> None:
    """A data file that does not match its MD5checksum is named, and no job is
    left behind."""
    src, dst, inv = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b"])
    uri = _put_inventory(moto, inv, src, [[(src, "a", 1)], [(src, "b", 1)]], corrupt=1)
    repo = Repository(str(tmp_path / "db.sqlite"))

    with pytest.raises(ManifestError, match="part-1"):
        _submit(repo, moto, Source(kind="inventory", location=uri), f"s3://{dst}")

    assert repo.list_jobs() == []


def _interrupt_ingest(db: Path, job_id: str, after_line: int) -> None:
    """Put a submitted job back as a submit killed after the batch ending at
    manifest line ``after_line``: status ``ingesting``, that checkpoint, and
    only the tasks of the lines before it."""
    con = sqlite3.connect(db)
    try:
        src = con.execute(
            "SELECT src_bucket FROM tasks WHERE job_id = ? LIMIT 1", (job_id,)
        ).fetchone()[0]
        con.execute(
            "DELETE FROM tasks WHERE job_id = ? AND line > ?", (job_id, after_line)
        )
        state = {
            "position": {"line": after_line},
            "totals": {"read": after_line, "filtered": 0, "invalid": 0},
            "buckets": [src],
            "own_keys": False,
        }
        con.execute(
            "UPDATE jobs SET status = 'ingesting', ingest_state = ?, "
            "total_tasks = 0 WHERE id = ?",
            (json.dumps(state), job_id),
        )
        con.commit()
    finally:
        con.close()


def test_interrupted_ingest_of_an_s3_manifest_resumes_unless_it_changed(
    moto: S3Server, tmp_path: Path
) -> None:
    """The same submit finishes an interrupted ingest of an unchanged manifest
    (same job, no duplicate task); a manifest re-uploaded with other content
    is refused with "changed since", and --restart starts over."""
    src, dst, manifests = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b", "c", "d"])
    c = moto.client()
    c.put_object(
        Bucket=manifests, Key="m.csv", Body=_csv_bytes([(src, k) for k in "abc"])
    )
    source = Source(kind="csv", location=f"s3://{manifests}/m.csv")
    db = tmp_path / "db.sqlite"
    repo = Repository(str(db))
    first = _submit(repo, moto, source, f"s3://{dst}")
    _interrupt_ingest(db, first.id, after_line=2)

    resumed = _submit(repo, moto, source, f"s3://{dst}")

    assert resumed.id == first.id
    assert resumed.status is JobStatus.SUBMITTED
    assert resumed.ingest_state is None
    assert sorted(r.src.key for r in repo.iter_results(first.id)) == ["a", "b", "c"]

    _interrupt_ingest(db, first.id, after_line=2)
    c.put_object(
        Bucket=manifests, Key="m.csv", Body=_csv_bytes([(src, k) for k in "abcd"])
    )
    with pytest.raises(ManifestError, match="changed since"):
        _submit(repo, moto, source, f"s3://{dst}")
    assert repo.get_job(first.id).status is JobStatus.INGESTING

    fresh = _submit(repo, moto, source, f"s3://{dst}", restart=True)
    assert fresh.id != first.id
    assert fresh.total_tasks == 4
    assert [j.id for j in repo.list_jobs()] == [fresh.id]


def test_s3_manifest_changed_under_an_interrupted_ingest_is_refused(
    moto: S3Server, tmp_path: Path
) -> None:
    """A manifest re-uploaded with other content (another ETag) while its job's
    ingest was interrupted is refused with "changed since", and the job is
    kept for a --restart."""
    src, dst, manifests = moto.new_bucket(), moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    c.put_object(Bucket=manifests, Key="m.csv", Body=_csv_bytes([(src, "a")]))
    etag = c.head_object(Bucket=manifests, Key="m.csv")["ETag"]
    uri = f"s3://{manifests}/m.csv"
    source = Source(kind="csv", location=uri)
    repo = Repository(str(tmp_path / "db.sqlite"))
    # what a submit killed before its first batch was stored leaves behind
    job_id = repo.start_ingest(
        manifest=uri,
        dst_bucket=dst,
        dst_prefix="",
        spec=_spec(moto).to_dict(),
        source=source.to_dict(),
        identity="etag:" + etag,
    )
    c.put_object(
        Bucket=manifests, Key="m.csv", Body=_csv_bytes([(src, "a"), (src, "b")])
    )

    with pytest.raises(ManifestError, match="changed since") as err:
        _submit(repo, moto, source, f"s3://{dst}")

    assert job_id in str(err.value)
    assert "--restart" in str(err.value)
    assert [(j.id, j.status) for j in repo.list_jobs()] == [
        (job_id, JobStatus.INGESTING)
    ]


# -- archived objects ----------------------------------------------------------


def _archived_job(
    moto: S3Server, tmp_path: Path, stat_source: bool
) -> tuple[Repository, JobRecord, str, str]:
    src, dst = moto.new_bucket(), moto.new_bucket()
    c = moto.client()
    c.put_object(Bucket=src, Key="cold.bin", Body=b"frozen", StorageClass="GLACIER")
    c.put_object(Bucket=src, Key="warm.bin", Body=b"fine")
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, "cold.bin", None), (src, "warm.bin", None)]
    )
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = _submit(
        repo,
        moto,
        Source(kind="csv", location=str(manifest)),
        f"s3://{dst}",
        stat_source=stat_source,
    )
    return repo, job, src, dst


def _results(repo: Repository, job_id: str) -> dict[str, tuple[TaskStatus, str | None]]:
    return {r.src.key: (r.status, r.error_code) for r in repo.iter_results(job_id)}


def test_archived_object_is_skipped_then_copied_by_retry_after_restore(
    moto: S3Server, tmp_path: Path
) -> None:
    """A GLACIER object ends `skipped` (ObjectArchived, from the HEAD) while the
    others are copied; once restored, a retry of the skipped tasks copies it."""
    repo, job, src, dst = _archived_job(moto, tmp_path, stat_source=True)

    counts = run_job(repo, job, moto)

    assert _results(repo, job.id) == {
        "cold.bin": (TaskStatus.SKIPPED, "ObjectArchived"),
        "warm.bin": (TaskStatus.SUCCEEDED, None),
    }
    assert counts.remaining == 0
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    assert _listed_keys(moto, dst) == ["warm.bin"]

    moto.client().restore_object(Bucket=src, Key="cold.bin", RestoreRequest={"Days": 1})
    retry = _retry(repo, job, TaskStatus.FAILED, TaskStatus.SKIPPED)
    assert retry.total_tasks == 1
    run_job(repo, retry, moto)

    assert _results(repo, retry.id) == {"cold.bin": (TaskStatus.SUCCEEDED, None)}
    # (moto gives the copy the source's GLACIER class, so HEAD rather than GET it)
    assert moto.client().head_object(Bucket=dst, Key="cold.bin")["ContentLength"] == 6


def test_archived_object_without_head_is_skipped_on_the_copy_error(
    moto: S3Server, tmp_path: Path
) -> None:
    """With --no-stat-source the CopyObject error for an archived source marks
    the task skipped, not failed."""
    repo, job, _src, _dst = _archived_job(moto, tmp_path, stat_source=False)

    run_job(repo, job, moto)

    results = _results(repo, job.id)
    assert results["warm.bin"] == (TaskStatus.SUCCEEDED, None)
    assert results["cold.bin"][0] is TaskStatus.SKIPPED


# -- retry: a new job from the failures ---------------------------------------


def test_retry_copies_only_the_objects_that_failed(
    moto: S3Server, tmp_path: Path
) -> None:
    """Keys missing at the first run fail; once created, the retry job holds
    just them, copies them to the same keys, and leaves the old job as it was."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["here.txt"])
    missing = ["later 1.txt", "dir/later+2.txt"]
    manifest = write_manifest(
        tmp_path / "m.csv", [(src, k, None) for k in ["here.txt", *missing]]
    )
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = _submit(
        repo, moto, Source(kind="csv", location=str(manifest)), f"s3://{dst}/p"
    )
    first = run_job(repo, job, moto)
    assert first.get(TaskStatus.FAILED) == 2
    bodies = seed(moto, src, missing)

    retry = _retry(repo, job, TaskStatus.FAILED)
    counts = run_job(repo, retry, moto)

    assert counts.get(TaskStatus.SUCCEEDED) == 2
    assert sorted(r.src.key for r in repo.iter_results(retry.id)) == sorted(missing)
    assert sorted(_listed_keys(moto, dst)) == sorted(
        "p/" + k for k in ["here.txt", *missing]
    )
    for k in missing:
        assert get_body(moto, dst, "p/" + k) == bodies[k]
    assert _results(repo, job.id)["later 1.txt"] == (TaskStatus.FAILED, "NoSuchKey")
