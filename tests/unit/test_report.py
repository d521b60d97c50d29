"""Completion reports: S3 Batch Operations CSV rows, JSONL records, the report files."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from engine.domain.models import Destination, ObjectRef, TaskResult, TaskStatus
from engine.domain.records import ResultRow
from engine.domain.spec import JobSpec
from engine.store import Repository
from engine.usecases.report import (
    REPORT_FORMAT,
    ReportFiles,
    bops_row,
    encode_key,
    jsonl_record,
    write_report,
)
from engine.usecases.submit import submit

WriteManifest = Callable[..., str]

AWKWARD_KEYS = [
    "a+b",
    "a b",
    " lead and trail ",
    "100%",
    "%2B",
    "café/日本/📁",
    "what?",
    "a#b",
    "a//b",
    "/leading",
    "semi;colon,comma",
    'quote"s',
    "tilde~star*",
]


def result_row(
    status: TaskStatus = TaskStatus.SUCCEEDED, key: str = "dir/a b+c.txt", **kw: object
) -> ResultRow:
    fields: dict[str, object] = {
        "id": 7,
        "line": 3,
        "src": ObjectRef("src", key, "v1"),
        "dst_bucket": "dst",
        "dst_key": f"p/{key}",
        "status": status,
        "attempts": 2,
        "error_code": None,
        "error_message": None,
        "http_status": 200,
        "src_version_id": "v1",
        "dst_version_id": "dv1",
        "etag": '"abc"',
        "bytes": 1234,
        "started_at": 1_700_000_000.0,
        "finished_at": 1_700_000_001.5,
    }
    fields.update(kw)
    return ResultRow(**fields)  # type: ignore[arg-type]


# -- bops_row and encode_key ------------------------------------------------------


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_encoded_key_decodes_back_exactly(key: str) -> None:
    """A report key read back with unquote_plus (as manifests are) is the original."""
    encoded = encode_key(key)
    assert unquote_plus(encoded) == key
    assert not set(encoded) & set(' +?#,"')


def test_bops_row_for_a_success() -> None:
    """A success row has no error code, the HTTP status and 'Successful'."""
    row = result_row()
    assert bops_row(row) == [
        "src",
        "dir/a%20b%2Bc.txt",
        "v1",
        "succeeded",
        "",
        "200",
        "Successful",
    ]


def test_bops_row_for_a_failure() -> None:
    """A failure row carries the error code, HTTP status and message in order."""
    row = result_row(
        TaskStatus.FAILED,
        error_code="NoSuchKey",
        error_message="CopyObject: The specified key does not exist.",
        http_status=404,
    )
    assert bops_row(row) == [
        "src",
        "dir/a%20b%2Bc.txt",
        "v1",
        "failed",
        "NoSuchKey",
        "404",
        "CopyObject: The specified key does not exist.",
    ]


def test_bops_row_leaves_unknown_fields_empty() -> None:
    """No version, no status and no message become empty columns, not 'None'."""
    row = result_row(
        TaskStatus.FAILED,
        src=ObjectRef("src", "k"),
        http_status=None,
        error_code=None,
        error_message=None,
    )
    assert bops_row(row) == ["src", "k", "", "failed", "", "", ""]


def test_jsonl_record_carries_every_field() -> None:
    """A JSONL record has the job, line, both ends, outcome, and ISO times."""
    record = jsonl_record("job-1", result_row())
    assert record == {
        "job_id": "job-1",
        "line": 3,
        "source": {"bucket": "src", "key": "dir/a b+c.txt", "version_id": "v1"},
        "destination": {"bucket": "dst", "key": "p/dir/a b+c.txt"},
        "status": "succeeded",
        "attempts": 2,
        "error_code": None,
        "error_message": None,
        "http_status": 200,
        "source_version_id": "v1",
        "destination_version_id": "dv1",
        "etag": '"abc"',
        "source_etag": None,  # the source ETag the copy was pinned to
        "bytes": 1234,
        "method": None,
        "part_count": None,
        "source_deleted": None,  # not a move
        "delete_state": None,
        "deleted_at": None,
        "started_at": "2023-11-14T22:13:20.000+00:00",
        "finished_at": "2023-11-14T22:13:21.500+00:00",
        "duration_s": 1.5,
    }
    json.dumps(record)


def test_a_moves_records_say_whether_the_source_is_gone() -> None:
    moved = jsonl_record(
        "job-1", result_row(delete_state="deleted", deleted_at=1_700_000_002.0)
    )
    assert moved["source_deleted"] is True
    assert moved["deleted_at"] == "2023-11-14T22:13:22.000+00:00"
    kept = jsonl_record("job-1", result_row(TaskStatus.FAILED, delete_state="kept"))
    assert (kept["source_deleted"], kept["deleted_at"]) == (False, None)


def test_jsonl_record_of_an_unstarted_task_has_no_times() -> None:
    """A task that never ran has null times and no duration."""
    record = jsonl_record(
        "job-1", result_row(TaskStatus.PENDING, started_at=None, finished_at=None)
    )
    assert (record["started_at"], record["finished_at"], record["duration_s"]) == (
        None,
        None,
        None,
    )


# -- write_report ---------------------------------------------------------------


@pytest.fixture
def finished_job(repo: Repository, write_manifest: WriteManifest) -> str:
    """A job over awkward keys where odd tasks fail, plus one invalid manifest row."""
    lines = [f"src,{encode_key(k)}" for k in AWKWARD_KEYS]
    lines.insert(3, "src,")  # an invalid row: empty key
    job = submit(
        repo,
        write_manifest("\n".join(lines) + "\n"),
        Destination("dst", "p"),
        JobSpec(),
        skip_invalid=True,
    )
    claimed = repo.claim(job.id, "w1", limit=100, lease_until=2e9)
    assert len(claimed) == len(AWKWARD_KEYS)
    done = []
    for i, task in enumerate(claimed):
        if i % 2:
            done.append(
                TaskResult(
                    task.id,
                    TaskStatus.FAILED,
                    attempts=1,
                    started_at=10.0,
                    finished_at=11.0,
                    error_code="AccessDenied",
                    error_message="Access Denied",
                    http_status=403,
                )
            )
        else:
            done.append(
                TaskResult(
                    task.id,
                    TaskStatus.SUCCEEDED,
                    attempts=1,
                    started_at=10.0,
                    finished_at=11.0,
                    http_status=200,
                    etag='"e"',
                    bytes=i,
                )
            )
    assert repo.record("w1", done) == len(done)
    return job.id


def expected_keys(status: str) -> list[str]:
    picked = AWKWARD_KEYS[::2] if status == "succeeded" else AWKWARD_KEYS[1::2]
    return sorted(picked + ([""] if status == "failed" else []))


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_report_lists_each_task_once_in_the_right_csv(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """Every task appears once, in succeeded.csv or failed.csv, its key decodable."""
    files = write_report(repo, finished_job, tmp_path / "out")
    assert set(files.csv_files) == {"succeeded", "failed"}
    for status, path in files.csv_files.items():
        rows = read_csv(path)
        assert all(len(r) == 7 and r[3] == status for r in rows)
        assert sorted(unquote_plus(r[1]) for r in rows) == expected_keys(status)
    failed = read_csv(files.csv_files["failed"])
    invalid = [r for r in failed if r[4] == "InvalidManifestRow"]
    assert [r[6] for r in invalid] == ["empty key"]
    assert files.rows == len(AWKWARD_KEYS) + 1


def test_report_manifest_declares_format_and_checksums(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """manifest.json names the format and an MD5 that matches each listed CSV."""
    out = tmp_path / "out"
    files = write_report(repo, finished_job, out)
    assert files.manifest == out / f"job-{finished_job}" / "manifest.json"
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    assert manifest["Format"] == REPORT_FORMAT == "Report_CSV_20180820"
    assert manifest["ReportSchema"] == (
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    )
    listed = {r["TaskExecutionStatus"]: r for r in manifest["Results"]}
    assert set(listed) == {"succeeded", "failed"}
    for status, entry in listed.items():
        path = out / entry["Key"]
        assert path == files.csv_files[status]
        assert entry["MD5Checksum"] == hashlib.md5(path.read_bytes()).hexdigest()


def test_report_jsonl_has_one_line_per_task(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """results.jsonl holds one JSON object per task, in manifest order."""
    files = write_report(repo, finished_job, tmp_path / "out")
    records = [json.loads(line) for line in files.jsonl.read_text("utf-8").splitlines()]
    assert len(records) == len(AWKWARD_KEYS) + 1
    assert [r["line"] for r in records] == sorted(r["line"] for r in records)
    assert {r["source"]["key"] for r in records} == {*AWKWARD_KEYS, ""}
    assert {r["job_id"] for r in records} == {finished_job}
    assert {r["status"] for r in records} == {"succeeded", "failed"}


def test_report_failed_only_writes_only_failed_csv(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """With failed_only the report has failed.csv alone, listing only failures."""
    out = tmp_path / "out"
    files: ReportFiles = write_report(repo, finished_job, out, failed_only=True)
    results_dir = out / f"job-{finished_job}" / "results"
    assert sorted(p.name for p in results_dir.iterdir()) == ["failed.csv"]
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    assert [r["TaskExecutionStatus"] for r in manifest["Results"]] == ["failed"]
    rows = read_csv(files.csv_files["failed"])
    assert sorted(unquote_plus(r[1]) for r in rows) == expected_keys("failed")
    jsonl = files.jsonl.read_text("utf-8").splitlines()
    assert {json.loads(line)["status"] for line in jsonl} == {"failed"}
    assert files.rows == len(rows)


def test_report_summary_counts_outcomes(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """summary.txt names the job and counts succeeded and failed tasks."""
    files = write_report(repo, finished_job, tmp_path / "out")
    text = files.summary.read_text("utf-8")
    n_failed = len(expected_keys("failed"))
    n_ok = len(expected_keys("succeeded"))
    assert finished_job in text
    assert re.search(rf"^\s*succeeded\s+{n_ok}$", text, re.MULTILINE)
    assert re.search(rf"^\s*failed\s+{n_failed}$", text, re.MULTILINE)


def test_results_jsonl_carries_every_recorded_field() -> None:
    """Each field of a recorded result reaches results.jsonl (under its
    report name): a field added to ResultRow cannot be left out silently."""
    from dataclasses import fields

    from engine.domain.models import ObjectRef, TaskStatus
    from engine.domain.records import ResultRow
    from engine.usecases.report import jsonl_record

    row = ResultRow(
        1,
        2,
        ObjectRef("b", "k", "v"),
        "d",
        "p/k",
        TaskStatus.SUCCEEDED,
        1,
        None,
        None,
        200,
        "v",
        "dv",
        '"e"',
        3,
        1.0,
        2.0,
    )
    record = jsonl_record("j", row)
    flat = (
        set(record)
        | {f"source.{k}" for k in record["source"]}
        | {f"destination.{k}" for k in record["destination"]}
    )
    renamed = {
        "src": "source.key",
        "dst_bucket": "destination.bucket",
        "dst_key": "destination.key",
        "src_version_id": "source_version_id",
        "dst_version_id": "destination_version_id",
        "src_etag": "source_etag",
    }
    internal = {"id", "overrides", "kind", "last_modified"}  # not report fields
    for f in fields(ResultRow):
        if f.name not in internal:
            assert renamed.get(f.name, f.name) in flat, f.name
