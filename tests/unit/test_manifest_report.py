"""Completion reports read back as manifests: bulkcopy's own, S3's, JSONL, bad rows."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.domain.errors import ManifestError
from engine.domain.models import (
    Destination,
    ManifestEntry,
    ObjectRef,
    TaskResult,
    TaskStatus,
)
from engine.domain.spec import JobSpec
from engine.manifest.earlier_report import is_report, read_report, report_status_columns
from engine.store import Repository
from engine.usecases.report import encode_key, write_report
from engine.usecases.submit import submit

WriteManifest = Callable[..., str]
FAILED = frozenset({"failed"})
SUCCEEDED = frozenset({"succeeded"})

# key, version id ("" = latest), whether its copy fails
OBJECTS: list[tuple[str, str, bool]] = [
    ("plain.txt", "", False),
    ("dir/a b.txt", "", True),
    ("café/日本/📁", "", True),
    ("a+b c", "v1", True),
    ("100%", "", True),
    ("%2B", "", False),
    ("semi;colon,comma", "", True),
    ('quote"s', "v2", False),
    (" lead and trail ", "", True),
    ("null-version", "null", True),
    ("ok/versioned", "v3", False),
]


def ref(key: str, version: str = "") -> ObjectRef:
    return ObjectRef("src", key, version or None)


def expected(fails: bool | None) -> set[ObjectRef]:
    return {ref(k, v) for k, v, f in OBJECTS if fails is None or f is fails}


def good(entries: list[ManifestEntry]) -> set[ObjectRef]:
    assert len({e.src for e in entries if e.error is None}) == len(
        [e for e in entries if e.error is None]
    ), "an object came back twice"
    return {e.src for e in entries if e.error is None}


def errors(entries: list[ManifestEntry]) -> list[tuple[int, str]]:
    return [(e.line, e.error) for e in entries if e.error is not None]


def write_csv(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return str(path)


# -- a real job, its report written by engine/usecases/report.py ---------------


@pytest.fixture
def finished_job(repo: Repository, write_manifest: WriteManifest) -> str:
    """A job over awkward keys and versions where some copies fail, plus one
    invalid manifest row (an empty key) recorded as a failed task."""
    lines = ["bucket,key,version_id"]
    lines += [f"src,{encode_key(k)},{v}" for k, v, _ in OBJECTS]
    lines.insert(4, "src,,")
    job = submit(
        repo,
        write_manifest("\n".join(lines) + "\n"),
        Destination("dst", "p"),
        JobSpec(),
        skip_invalid=True,
    )
    fails = {ref(k, v): f for k, v, f in OBJECTS}
    claimed = repo.claim(job.id, "w1", limit=100, lease_until=2e9)
    assert {t.src for t in claimed} == set(fails)
    done = [
        TaskResult(
            t.id,
            TaskStatus.FAILED,
            attempts=3,
            started_at=10.0,
            finished_at=11.0,
            error_code="SlowDown",
            error_message="Please reduce your request rate.\nReally.",
            http_status=503,
        )
        if fails[t.src]
        else TaskResult(
            t.id,
            TaskStatus.SUCCEEDED,
            attempts=1,
            started_at=10.0,
            finished_at=11.0,
            http_status=200,
            etag='"e"',
        )
        for t in claimed
    ]
    assert repo.record("w1", done) == len(done)
    return job.id


@pytest.fixture
def report_dir(repo: Repository, finished_job: str, tmp_path: Path) -> Path:
    """The full completion report of ``finished_job``."""
    return write_report(repo, finished_job, tmp_path / "out").directory


def test_round_trip_gives_back_exactly_the_failed_objects(report_dir: Path) -> None:
    """Read with statuses {failed}, a report yields each failed object once, its
    key and version exactly as submitted, and the invalid row as an error."""
    entries = list(read_report(str(report_dir), FAILED))
    assert good(entries) == expected(fails=True)
    [(_, error)] = errors(entries)
    assert "failed.csv: was an invalid row of the reported job's manifest" in error


@pytest.mark.parametrize(
    "name", ["", "manifest.json", "results/failed.csv", "results.jsonl"]
)
def test_every_form_of_the_report_gives_the_same_failed_objects(
    report_dir: Path, name: str
) -> None:
    """The directory, its manifest.json, failed.csv and results.jsonl agree."""
    entries = list(read_report(str(report_dir / name), FAILED))
    assert good(entries) == expected(fails=True)
    assert len(errors(entries)) == 1


@pytest.mark.parametrize("name", ["", "results.jsonl"])
def test_statuses_select_rows(report_dir: Path, name: str) -> None:
    """None reads every row, {succeeded} only the successes."""
    path = str(report_dir / name)
    assert good(list(read_report(path))) == expected(fails=None)
    succeeded = list(read_report(path, SUCCEEDED))
    assert good(succeeded) == expected(fails=False)
    assert errors(succeeded) == []


def test_lines_count_rows_of_their_own_file(report_dir: Path) -> None:
    """Lines are those of failed.csv, where each two-line message takes two."""
    entries = list(read_report(str(report_dir / "results" / "failed.csv")))
    assert [e.line for e in entries] == [1, 3, 5, 6, 8, 10, 12, 14]
    assert [line for line, _ in errors(entries)] == [5]  # the invalid row
    assert entries[0].src == ref("dir/a b.txt")


def test_failed_only_report_lists_only_failed_csv(
    repo: Repository, finished_job: str, tmp_path: Path
) -> None:
    """A --failed-only report reads back its failures; asked for successes, none."""
    files = write_report(repo, finished_job, tmp_path / "out", failed_only=True)
    assert good(list(read_report(str(files.directory)))) == expected(fails=True)
    assert list(read_report(str(files.manifest), SUCCEEDED)) == []


def test_read_report_of_a_changed_csv_fails_its_checksum(report_dir: Path) -> None:
    """A result CSV edited after the manifest was written is refused by name."""
    failed = report_dir / "results" / "failed.csv"
    with failed.open("a", encoding="utf-8") as fh:
        fh.write("src,extra,,failed,NoSuchKey,404,m\n")
    with pytest.raises(ManifestError, match="MD5 checksum") as info:
        read_report(str(report_dir), FAILED)
    assert info.value.source == str(failed)
    # read on its own, the edited CSV is used as it is
    assert ref("extra") in good(list(read_report(str(failed))))


def test_unwanted_result_files_are_not_looked_for(report_dir: Path) -> None:
    """Only the result files of the wanted statuses need to be there."""
    (report_dir / "results" / "succeeded.csv").unlink()
    assert good(list(read_report(str(report_dir), FAILED))) == expected(fails=True)
    with pytest.raises(ManifestError, match=r"succeeded\.csv not found"):
        read_report(str(report_dir))


# -- report_status_columns ------------------------------------------------------


@pytest.mark.parametrize(
    ("fifth", "sixth", "code", "status"),
    [
        ("NoSuchKey", "404", "NoSuchKey", 404),  # declared order (bulkcopy)
        ("404", "NoSuchKey", "NoSuchKey", 404),  # S3's order
        ("", "200", None, 200),  # a bulkcopy success
        ("200", "", None, 200),  # an S3 success
        ("200", "PermanentFailure", "PermanentFailure", 200),  # S3 Lambda failure
        ("NoSuchKey", "", "NoSuchKey", None),  # no status: the code is where declared
        ("", "NoSuchKey", "NoSuchKey", None),
        ("", "", None, None),
        ("500", "503", "500", 503),  # both could be the status: declared order
        (" 404 ", "NoSuchKey", "NoSuchKey", 404),
        ("100", "x", "x", 100),
        ("x", "599", "x", 599),
    ],
)
def test_status_columns_in_either_order(
    fifth: str, sixth: str, code: str | None, status: int | None
) -> None:
    """The column holding a 3-digit HTTP status, or nothing, is the status."""
    fields = ["b", "k", "", "failed", fifth, sixth, "message"]
    assert report_status_columns(fields) == (code, status)


@pytest.mark.parametrize(
    ("fifth", "sixth"),
    [
        ("NoSuchKey", "AccessDenied"),
        ("600", "NoSuchKey"),
        ("NoSuchKey", "099"),
        ("40", "NoSuchKey"),
        ("4040", "NoSuchKey"),
        ("４０４", "NoSuchKey"),  # full-width digits are no HTTP status
    ],
)
def test_status_columns_without_a_status_are_refused(fifth: str, sixth: str) -> None:
    """When neither column can be an HTTP status the row is not a report row."""
    with pytest.raises(ValueError, match="HTTP status code"):
        report_status_columns(["b", "k", "", "failed", fifth, sixth, "m"])


# -- reports written by S3 Batch Operations --------------------------------------

S3_FAILED = (
    "bkt,key%20a,,failed,404,NoSuchKey,Not Found\n"
    "bkt,caf%C3%A9+x%2By,v2,failed,403,AccessDenied,Access Denied\n"
    'bkt,image_14975,,failed,200,PermanentFailure,"Lambda returned function '
    'error: {""errorMessage"":""Task timed out\nafter 3.00 seconds""}"\n'
    "bkt,100%25/%E6%97%A5,3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY,failed,500,"
    "InternalError,We encountered an internal error.\n"
)
S3_SUCCEEDED = (
    "bkt,k,,succeeded,200,,Successful\nbkt,d/e+f,v9,succeeded,200,,Successful\n"
)
S3_FAILED_REFS = [
    ObjectRef("bkt", "key a"),
    ObjectRef("bkt", "café x+y", "v2"),
    ObjectRef("bkt", "image_14975"),
    ObjectRef("bkt", "100%/日", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
]


def test_s3_swapped_columns_are_read(tmp_path: Path) -> None:
    """S3's HTTPStatusCode-before-ErrorCode rows decode keys and keep versions."""
    path = write_csv(tmp_path / "s3.csv", S3_SUCCEEDED + S3_FAILED)
    entries = list(read_report(path))
    assert errors(entries) == []
    assert [e.src for e in entries] == [
        ObjectRef("bkt", "k"),
        ObjectRef("bkt", "d/e f", "v9"),
        *S3_FAILED_REFS,
    ]
    assert [e.line for e in entries] == [1, 2, 3, 4, 5, 7]
    assert [e.src for e in read_report(path, FAILED)] == S3_FAILED_REFS


def test_rows_of_both_orders_and_ambiguous_ones_mix(tmp_path: Path) -> None:
    """Each row's order is decided on its own; an ambiguous row is still read."""
    path = write_csv(
        tmp_path / "mixed.csv",
        "b,ours,,failed,NoSuchKey,404,m\n"
        "b,theirs,,failed,404,NoSuchKey,m\n"
        "b,both-numbers,,failed,500,503,m\n"
        "b,both-empty,,failed,,,m\n"
        "b,neither,,failed,NoSuchKey,AccessDenied,m\n"
        "b,ok-ours,,succeeded,,200,Successful\n"
        "b,ok-theirs,,succeeded,200,,Successful\n",
    )
    entries = list(read_report(path))
    assert [e.src.key for e in entries if e.error is None] == [
        "ours",
        "theirs",
        "both-numbers",
        "both-empty",
        "ok-ours",
        "ok-theirs",
    ]
    [(line, error)] = errors(entries)
    assert line == 5
    assert "'NoSuchKey' nor 'AccessDenied'" in error


def s3_report(tmp_path: Path, with_succeeded: bool = True) -> Path:
    """An S3 report laid out as downloaded: keys carry the report prefix."""
    job = tmp_path / "reports" / "job-f8fb9d89"
    results = []
    for status, text in [("succeeded", S3_SUCCEEDED), ("failed", S3_FAILED)]:
        name = hashlib.sha1(status.encode()).hexdigest() + ".csv"
        if with_succeeded or status == "failed":
            write_csv(job / "results" / name, text)
        results.append(
            {
                "TaskExecutionStatus": status,
                "Bucket": "my-job-reports",
                "MD5Checksum": hashlib.md5(text.encode()).hexdigest(),
                "Key": f"some/prefix/job-f8fb9d89/results/{name}",
            }
        )
    manifest = {
        "Format": "Report_CSV_20180820",
        "ReportCreationDate": "2019-04-05T17:48:39.725Z",
        "Results": results,
        "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, "
        "HTTPStatusCode, ResultMessage",
    }
    (job / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return job


def test_s3_report_manifest_finds_results_beside_it(tmp_path: Path) -> None:
    """An S3 manifest's keys name the report bucket; the CSVs are in results/."""
    job = s3_report(tmp_path)
    assert len(list(read_report(str(job / "manifest.json")))) == 6
    assert [e.src for e in read_report(str(job), FAILED)] == S3_FAILED_REFS


def test_s3_report_without_its_succeeded_csv_reads_failures(tmp_path: Path) -> None:
    """Only the failed CSV downloaded is enough to re-run failures."""
    job = s3_report(tmp_path, with_succeeded=False)
    assert [e.src for e in read_report(str(job), FAILED)] == S3_FAILED_REFS
    with pytest.raises(ManifestError, match="not found") as info:
        read_report(str(job))
    assert info.value.source == str(job / "manifest.json")


# -- malformed rows and unusable reports -----------------------------------------


def test_malformed_rows_are_pinned_to_their_lines(tmp_path: Path) -> None:
    """Bad rows come out as errors at their line; good rows around them are read."""
    path = write_csv(
        tmp_path / "bad.csv",
        "\ufeffb,first,,failed,NoSuchKey,404,m\n"  # 1 (a BOM before it)
        "b,six,,failed,404,m\n"  # 2
        "b,pending,,pending,,,m\n"  # 3
        "b,a%FFb,,failed,404,NoSuchKey,m\n"  # 4
        "\n"  # 5: blank
        'b,multi,,failed,404,NoSuchKey,"two\nlines"\n'  # 6-7
        ",nobucket,,failed,404,NoSuchKey,m\n"  # 8
        "b,,,failed,404,NoSuchKey,m\n"  # 9
        "b/x,slash,,failed,404,NoSuchKey,m\n"  # 10
        "b,last,v1,failed,404,NoSuchKey,m\n",  # 11
    )
    entries = list(read_report(path))
    assert [(e.line, e.error is None) for e in entries] == [
        (1, True),
        (2, False),
        (3, False),
        (4, False),
        (6, True),
        (8, False),
        (9, False),
        (10, False),
        (11, True),
    ]
    reasons = dict(errors(entries))
    assert "expected 7 columns" in reasons[2]
    assert "TaskStatus 'pending'" in reasons[3]
    assert "does not URL-decode to UTF-8" in reasons[4]
    assert "empty bucket" in reasons[8]
    assert "empty key" in reasons[9]
    assert "invalid bucket name" in reasons[10]
    assert entries[0].src == ObjectRef("b", "first")
    assert entries[-1].src == ObjectRef("b", "last", "v1")


def test_rows_of_unwanted_status_are_skipped_before_checks(tmp_path: Path) -> None:
    """A succeeded row is left out of a failed-only read, even with a bad key;
    a row whose status cannot be read is always reported."""
    path = write_csv(
        tmp_path / "r.csv",
        "b,a%FFb,,succeeded,200,,Successful\n"
        "b,k,,maybe,200,,m\n"
        "b,f,,failed,404,NoSuchKey,m\n",
    )
    entries = list(read_report(path, FAILED))
    assert [(e.line, e.error is None) for e in entries] == [(2, False), (3, True)]


def test_invalid_utf8_is_an_error_of_its_row(tmp_path: Path) -> None:
    """A byte that is not UTF-8 fails its row, not the file."""
    path = tmp_path / "r.csv"
    path.write_bytes(b"b\xff,k,,failed,404,NoSuchKey,m\nb,k2,,failed,,,m\n")
    entries = list(read_report(str(path)))
    assert [(e.line, e.error) for e in entries] == [
        (1, "is not valid UTF-8"),
        (2, None),
    ]


def test_unterminated_quote_is_fatal(tmp_path: Path) -> None:
    """An unterminated quote ends the read with a fatal entry at its line."""
    path = write_csv(
        tmp_path / "r.csv",
        'b,k,,failed,404,NoSuchKey,m\nb,k2,,failed,404,NoSuchKey,"oops\nb,k3\n',
    )
    entries = list(read_report(path))
    assert [(e.line, e.error is None, e.fatal) for e in entries] == [
        (1, True, False),
        (2, False, True),
    ]


def test_errors_read_through_a_manifest_name_their_csv(tmp_path: Path) -> None:
    """A bad row of a listed CSV says which CSV; its line is that file's."""
    job = tmp_path / "job-x"
    text = "b,k,,failed,404,NoSuchKey,m\nb,k2,,failed\n"
    write_csv(job / "results" / "failed.csv", text)
    manifest = {
        "Format": "Report_CSV_20180820",
        "Results": [
            {"TaskExecutionStatus": "failed", "Key": "job-x/results/failed.csv"}
        ],
    }
    (job / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    [(line, error)] = errors(list(read_report(str(job))))
    assert line == 2
    assert error.startswith("failed.csv: expected 7 columns")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not a readable report manifest"),
        ('{"Format": "CSV", "files": []}', "Format is not Report_CSV_20180820"),
        ("[]", "Format is not"),
        ('{"Format": "Report_CSV_20180820"}', "Results must list"),
        (
            '{"Format": "Report_CSV_20180820", "Results": [{"Key": "a.csv", '
            '"TaskExecutionStatus": "skipped"}]}',
            "Results must list",
        ),
        (
            '{"Format": "Report_CSV_20180820", "Results": [{"Key": "a.csv", '
            '"TaskExecutionStatus": "failed"}]}',
            "result file a.csv not found",
        ),
    ],
)
def test_unusable_report_manifests_are_refused(
    tmp_path: Path, content: str, reason: str
) -> None:
    """A manifest that is not a usable report raises, naming the manifest."""
    path = tmp_path / "job-x" / "manifest.json"
    path.parent.mkdir()
    path.write_text(content, "utf-8")
    with pytest.raises(ManifestError, match=re.escape(reason)) as info:
        read_report(str(path))
    assert info.value.source == str(path)
    assert info.value.line is None


def test_missing_paths_and_bare_directories_are_refused(tmp_path: Path) -> None:
    """A path that does not exist, or a directory with no manifest.json, raises."""
    with pytest.raises(ManifestError, match="no such file"):
        read_report(str(tmp_path / "nope.csv"))
    with pytest.raises(ManifestError, match=r"without a manifest\.json"):
        read_report(str(tmp_path))


def test_unknown_wanted_statuses_are_a_programming_error(tmp_path: Path) -> None:
    """Asking for a status no task can have is refused at once."""
    with pytest.raises(ValueError, match="unknown statuses"):
        read_report(str(tmp_path), frozenset({"failed", "broken"}))


# -- results.jsonl --------------------------------------------------------------


def record(key: object, status: str = "failed", **source: object) -> str:
    src = {"bucket": "b", "key": key, "version_id": None, **source}
    return json.dumps({"job_id": "j", "line": 1, "source": src, "status": status})


def test_jsonl_keys_are_taken_as_they_are(tmp_path: Path) -> None:
    """JSONL keys are not URL-encoded: '%2B' and '+' stay what they are."""
    path = tmp_path / "results.jsonl"
    lines = [record("%2B a+b"), record("k", version_id="v1"), record("s", "succeeded")]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    assert [e.src for e in read_report(str(path), FAILED)] == [
        ObjectRef("b", "%2B a+b"),
        ObjectRef("b", "k", "v1"),
    ]


def test_jsonl_bad_lines_are_pinned_to_their_lines(tmp_path: Path) -> None:
    """Each bad JSONL line is an error at its line; blank lines are skipped."""
    path = tmp_path / "results.jsonl"
    path.write_text(
        "\n".join(
            [
                record("ok"),  # 1
                "{not json",  # 2
                "",  # 3
                json.dumps({"status": "failed"}),  # 4
                record(7),  # 5
                record("k", "weird"),  # 6
                record(""),  # 7
                json.dumps([1, 2]),  # 8
                record("pending-one", "pending"),  # 9
            ]
        )
        + "\n",
        "utf-8",
    )
    entries = list(read_report(str(path)))
    assert [(e.line, e.error is None) for e in entries] == [
        (1, True),
        (2, False),
        (4, False),
        (5, False),
        (6, False),
        (7, False),
        (8, False),
        (9, True),
    ]
    reasons = dict(errors(entries))
    assert "not a JSON object" in reasons[2]
    assert reasons[4] == reasons[8] == "no source object"
    assert "must be strings" in reasons[5]
    assert reasons[6] == "unknown status 'weird'"
    assert reasons[7] == "empty bucket or key"
    pending = list(read_report(str(path), frozenset({"pending"})))
    assert [(e.line, e.src.key) for e in pending if e.error is None] == [
        (9, "pending-one")
    ]


# -- is_report -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "manifest.json",
        "results/failed.csv",
        "results/succeeded.csv",
        "results.jsonl",
    ],
)
def test_a_bulkcopy_report_is_recognised(report_dir: Path, name: str) -> None:
    """Every form of bulkcopy's report is sniffed as a report."""
    assert is_report(str(report_dir / name))


def test_an_s3_report_is_recognised(tmp_path: Path) -> None:
    """S3's report directory, manifest and swapped-column CSVs are reports."""
    job = s3_report(tmp_path)
    assert is_report(str(job))
    assert is_report(str(job / "manifest.json"))
    assert all(is_report(str(p)) for p in (job / "results").iterdir())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("manifest.csv", "src,a%20b\nsrc,c\n"),
        ("manifest.csv", "bucket,key,version_id\nsrc,a,v1\n"),
        ("six.csv", "b,k,,failed,404,NoSuchKey\n"),
        ("status.csv", "b,k,,pending,,,m\n"),
        ("empty.csv", ""),
        ("binary.csv", "\x00\xff\xfe"),
        ("manifest.json", '{"fileFormat": "CSV", "files": []}'),
        ("manifest.json", "{not json"),
        ("results.jsonl", '{"job_id": "j"}\n'),
        ("results.jsonl", "not json\n"),
        ("summary.txt", "job        x  (complete)\n"),
    ],
)
def test_other_files_are_not_reports(tmp_path: Path, name: str, content: str) -> None:
    """Manifests, inventory manifests and other files are not taken for reports."""
    path = tmp_path / name
    path.write_text(content, "utf-8")
    assert not is_report(str(path))


def test_missing_paths_and_bare_directories_are_not_reports(tmp_path: Path) -> None:
    """Sniffing never raises: a missing path or an empty directory is no report."""
    assert not is_report(str(tmp_path / "missing.csv"))
    assert not is_report(str(tmp_path))
