"""The failure threshold: when a run gives up on a job."""

from __future__ import annotations

from engine.domain.failure_threshold import FailureGuard, FailurePolicy
from engine.domain.models import TaskStatus

OK = (TaskStatus.SUCCEEDED, None, 200)
DENIED = (TaskStatus.FAILED, "AccessDenied", 403)
GONE = (TaskStatus.FAILED, "NoSuchKey", 404)
THROTTLED = (TaskStatus.FAILED, "SlowDown", 503)  # retries ran out: not permanent
SKIPPED = (TaskStatus.SKIPPED, "InvalidObjectState", 403)


def feed(
    guard: FailureGuard, results: list[tuple[TaskStatus, str | None, int]]
) -> list[int]:
    """The 1-based positions at which the guard said stop."""
    return [i for i, r in enumerate(results, 1) if guard.observe(*r) is not None]


def test_a_burst_of_one_permanent_error_stops_at_its_length() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=0, burst=3))
    assert feed(guard, [DENIED, DENIED, OK, DENIED, DENIED, DENIED]) == [6]
    assert guard.burst_code == "AccessDenied"


def test_a_burst_is_broken_by_another_code_or_a_transient_failure() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=0, burst=3))
    assert feed(guard, [DENIED, DENIED, GONE, DENIED, DENIED, THROTTLED, DENIED]) == []
    assert guard.failed == 7


def test_skipped_tasks_neither_count_as_failures_nor_break_a_burst() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=4, fail_ratio=0.5, burst=3))
    assert feed(guard, [GONE, SKIPPED, GONE, SKIPPED, SKIPPED]) == []
    assert guard.observe(*GONE) is not None  # the third NoSuchKey in a row


def test_the_ratio_counts_only_after_fail_after_tasks() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=10, fail_ratio=0.5, burst=0))
    # every task fails, but nothing stops before the tenth
    assert feed(guard, [GONE] * 9) == []
    reason = guard.observe(*GONE)
    assert reason is not None
    assert "10 of the 10 tasks" in reason
    assert "--fail-ratio 50%" in reason


def test_exactly_the_ratio_is_not_above_it() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=10, fail_ratio=0.5, burst=0))
    assert feed(guard, [GONE, OK] * 5) == []  # 5 of 10: not more than half
    assert guard.observe(*GONE) is not None  # 6 of 11


def test_zero_turns_each_rule_off() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=0, fail_ratio=0.0, burst=0))
    assert feed(guard, [DENIED] * 5000) == []


def test_the_reason_names_the_code_and_the_option() -> None:
    guard = FailureGuard(FailurePolicy(fail_after=0, burst=2))
    guard.observe(*DENIED)
    reason = guard.observe(*DENIED)
    assert reason == "2 tasks in a row failed with AccessDenied (--fail-burst 2)"
