"""Prometheus metrics from the engine's events."""

from __future__ import annotations

from pathlib import Path

from engine.domain.models import JobCounts, ObjectRef, Task, TaskResult, TaskStatus
from engine.run import events
from engine.run.metrics import Metrics

JOB = "20261121-000000-aaaaaa"


def task(n: int) -> Task:
    return Task(id=n, job_id=JOB, src=ObjectRef("src", f"k{n}"), dst_key=f"k{n}")


def result(
    n: int, status: TaskStatus, code: str | None = None, size: int = 0
) -> TaskResult:
    return TaskResult(
        task_id=n,
        status=status,
        attempts=1,
        started_at=100.0,
        finished_at=100.5,
        error_code=code,
        bytes=size if status is TaskStatus.SUCCEEDED else None,
    )


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"job": JOB, **labels})


def test_events_become_counters_histograms_and_gauges(tmp_path: Path) -> None:
    m = Metrics(concurrency=64)
    m(events.RunStarted(JOB, "w1", JobCounts({"pending": 4}), 0))
    m(events.TaskRetrying(task(1), 1, "SlowDown", "reduce", 0.1))
    m(events.TaskRetrying(task(1), 2, "InternalError", "oops", 0.1))
    m(events.TaskFinished(task(1), result(1, TaskStatus.SUCCEEDED, size=1000)))
    m(events.TaskFinished(task(2), result(2, TaskStatus.SUCCEEDED, size=24)))
    m(events.TaskFinished(task(3), result(3, TaskStatus.FAILED, "AccessDenied")))
    m(events.TaskFinished(task(4), result(4, TaskStatus.SKIPPED, "DestinationExists")))
    m(
        events.RunFinished(
            JOB, JobCounts({"succeeded": 2, "failed": 1, "skipped": 1}), False
        )
    )

    assert value(m, "bulkcopy_tasks_total", status="succeeded") == 2
    assert value(m, "bulkcopy_tasks_total", status="failed") == 1
    assert value(m, "bulkcopy_bytes_copied_total") == 1024
    assert value(m, "bulkcopy_retries_total", code="SlowDown") == 1
    assert value(m, "bulkcopy_retries_total", code="InternalError") == 1
    assert value(m, "bulkcopy_throttles_total") == 1  # SlowDown only
    assert value(m, "bulkcopy_errors_total", status="failed", code="AccessDenied") == 1
    assert (
        value(m, "bulkcopy_errors_total", status="skipped", code="DestinationExists")
        == 1
    )
    assert value(m, "bulkcopy_task_duration_seconds_count") == 4
    assert value(m, "bulkcopy_task_duration_seconds_sum") == 2.0
    assert value(m, "bulkcopy_concurrency") == 64
    assert value(m, "bulkcopy_job_tasks", status="succeeded") == 2
    assert value(m, "bulkcopy_job_tasks", status="pending") == 0

    out = tmp_path / "bulkcopy.prom"
    m.write(out)
    text = out.read_text()
    assert f'bulkcopy_tasks_total{{job="{JOB}",status="succeeded"}} 2.0' in text


def test_a_move_counts_the_sources_it_deleted() -> None:
    from dataclasses import replace

    m = Metrics()
    moved = replace(result(1, TaskStatus.SUCCEEDED, size=5), delete_state="deleted")
    kept = replace(result(2, TaskStatus.FAILED, "AccessDenied"), delete_state="kept")
    m(events.TaskFinished(task(1), moved))
    m(events.TaskFinished(task(2), kept))
    m(events.TaskFinished(task(3), result(3, TaskStatus.SUCCEEDED, size=5)))

    assert value(m, "bulkcopy_sources_deleted_total") == 1


def test_requests_by_operation_and_outcome_with_their_latency() -> None:
    m = Metrics()
    m(events.RequestDone(JOB, "CopyObject", "ok", 0.02))
    m(events.RequestDone(JOB, "CopyObject", "ok", 0.03))
    m(events.RequestDone(JOB, "CopyObject", "SlowDown", 0.2))
    m(events.RequestDone(JOB, "HeadObject", "ok", 0.004))

    requests = "bulkcopy_requests_total"
    assert value(m, requests, operation="CopyObject", outcome="ok") == 2
    assert value(m, requests, operation="CopyObject", outcome="SlowDown") == 1
    assert value(m, requests, operation="HeadObject", outcome="ok") == 1
    latency = "bulkcopy_request_duration_seconds"
    assert value(m, f"{latency}_count", operation="CopyObject") == 3
    assert value(m, f"{latency}_bucket", operation="CopyObject", le="0.025") == 1
    assert value(m, f"{latency}_bucket", operation="HeadObject", le="0.005") == 1
