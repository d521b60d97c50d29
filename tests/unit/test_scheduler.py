"""Which job a `bulkcopy worker` takes next (the pure choice)."""

from __future__ import annotations

from engine.domain.models import JobStatus
from engine.domain.records import JobRecord
from engine.domain.spec import JobSpec
from engine.run.scheduler import Candidate, Plan, choose


def job(job_id: str, status: JobStatus = JobStatus.RUNNING) -> JobRecord:
    return JobRecord(
        id=job_id,
        created_at=0.0,
        updated_at=0.0,
        status=status,
        manifest="m.csv",
        dst_bucket="dst",
        dst_prefix="",
        spec=JobSpec(),
        total_tasks=1,
        invalid_rows=0,
        duplicate_rows=0,
        run_started_at=None,
        message=None,
    )


def cand(
    job_id: str,
    *,
    pending: bool = True,
    unfinished: bool = True,
    status: JobStatus = JobStatus.RUNNING,
) -> Candidate:
    return Candidate(job(job_id, status), pending, unfinished or pending)


def test_any_job_mode_takes_the_first_job_with_tasks_to_claim() -> None:
    """Candidates come by priority then age: the first with pending tasks wins,
    even over an earlier one whose last tasks other workers hold."""
    got = choose(Plan(), [cand("held", pending=False), cand("next"), cand("later")], 0)
    assert got.job is not None
    assert got.job.id == "next"


def test_any_job_mode_waits_on_a_job_whose_last_tasks_others_hold() -> None:
    """With nothing to claim anywhere, a worker joins the job still unfinished
    (it waits there, and takes the tasks back if their owner dies)."""
    got = choose(Plan(), [cand("held", pending=False)], 3)
    assert got.job is not None
    assert got.job.id == "held"
    assert not got.done


def test_any_job_mode_is_done_when_nothing_is_left() -> None:
    assert choose(Plan(), [], 0).done
    assert choose(Plan(), [cand("x", pending=False, unfinished=False)], 0).done


def test_follow_keeps_waiting_for_new_jobs() -> None:
    got = choose(Plan(follow=True), [], 5)
    assert (got.job, got.done) == (None, False)


def test_max_jobs_ends_the_worker() -> None:
    assert choose(Plan(max_jobs=2), [cand("a")], 2).done
    assert not choose(Plan(max_jobs=2), [cand("a")], 1).done
    assert choose(Plan(max_jobs=1, job_ids=("a",)), [cand("a")], 1).done


def test_named_jobs_in_order_and_only_while_unfinished() -> None:
    plan = Plan(job_ids=("a", "b"))
    done_a = cand("a", pending=False, unfinished=False, status=JobStatus.COMPLETE)
    got = choose(plan, [done_a, cand("b", status=JobStatus.STOPPED)], 1)
    assert got.job is not None
    assert got.job.id == "b"
    assert choose(plan, [done_a], 1).done


def test_a_named_job_still_being_submitted_is_waited_for() -> None:
    got = choose(Plan(job_ids=("a",)), [cand("a", status=JobStatus.INGESTING)], 0)
    assert (got.job, got.done) == (None, False)


def test_a_named_paused_job_holds_the_worker() -> None:
    got = choose(Plan(job_ids=("a",)), [cand("a", status=JobStatus.PAUSED)], 0)
    assert got.job is not None
    assert got.job.status is JobStatus.PAUSED


def test_a_named_cancelled_job_is_over() -> None:
    got = choose(Plan(job_ids=("a",)), [cand("a", status=JobStatus.CANCELLED)], 0)
    assert got.done
