"""The job-database benchmark keeps working: ``bench/claims.py`` runs both
modes on both backends with 1 and 2 processes on a tiny job, and its
correctness checks pass (no timings are asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.claims import check_job
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
TASKS = 300
EXPECTED = [("sqlite", 1), ("sqlite", 2), ("postgres", 1), ("postgres", 2)]


def test_claims_bench_runs_both_modes_on_both_backends(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    out = tmp_path / "claims.json"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/claims.py",
            "--mode",
            "both",
            "--backends",
            "sqlite,postgres",
            "--processes",
            "1,2",
            "--tasks",
            str(TASKS),
            "--rounds",
            "1",
            "--pg-url",
            postgres.admin_url,
            "--keep",
            str(tmp_path / "runs"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["settings"]["tasks"] == {"db": TASKS, "copy": TASKS}

    db = result["db"]
    assert [(r["backend"], r["processes"]) for r in db] == EXPECTED
    for row in db:
        assert row["checks_ok"], row["problems"]
        assert row["tasks"] == TASKS
        (run,) = row["runs"]
        assert run["ok"]
        assert not run["problems"]
        assert len(run["accepted"]) == row["processes"]
        assert sum(run["accepted"]) == TASKS
        assert run["tasks_per_s"] > 0
        assert len(run["cpu_s"]) == row["processes"]
        # PostgreSQL runs on this host in the tests: its CPU is read
        assert (run["server_cpu_s"] is not None) == (row["backend"] == "postgres")

    copy = result["copy"]
    assert [(r["backend"], r["processes"]) for r in copy] == EXPECTED
    for row in copy:
        assert row["checks_ok"], row["problems"]
        assert row["copy_objects"] == [TASKS]
        assert row["repeated"] == 0
        (run,) = row["runs"]
        assert run["ok"]
        assert run["copies_per_s"] > 0
        assert len(run["process_cpu_s"]) == row["processes"]

    assert "claims+results/s" in proc.stdout
    assert "copies/s" in proc.stdout


def test_job_check_catches_what_it_must() -> None:
    """The end-of-run check refuses a task left running, a task done twice,
    a task still owned and a lost count."""
    good = {
        "by_status": {"succeeded": 3},
        "tasks": 3,
        "attempts": 3,
        "min_attempts": 1,
        "max_attempts": 1,
        "owned": 0,
        "workers_tasks_done": 3,
    }
    assert check_job(good, 3) == []
    assert check_job({**good, "by_status": {"succeeded": 2, "running": 1}}, 3)
    assert check_job({**good, "attempts": 4, "max_attempts": 2}, 3)
    assert check_job({**good, "owned": 1}, 3)
    assert check_job({**good, "workers_tasks_done": 2}, 3)
    assert check_job(good, 4)
