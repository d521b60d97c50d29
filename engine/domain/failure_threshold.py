"""When a run gives up on a job: the failure threshold, as pure arithmetic.

S3 Batch Operations stops a job once at least 1,000 tasks ran and more than
half of them failed; bulkcopy does the same (``--fail-after``,
``--fail-ratio``), and also stops at a burst of one permanent error in a row
(``--fail-burst``: 100 ``AccessDenied`` or KMS errors say the job is
misconfigured, not that 100 objects are bad).  Counts are this run's: a job
resumed after its cause was fixed starts afresh.  The worker asks
:meth:`FailureGuard.observe` after each result; the first reason it returns
stops the run and marks the job ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.classify import Disposition, classify
from engine.domain.models import TaskStatus


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """``fail_after`` finished tasks before the ratio counts (0: never stop
    on the ratio); ``fail_ratio``: the share of failed tasks (0-1) above
    which the run stops; ``burst``: this many permanent failures with the
    same error code in a row stop it (0: never)."""

    fail_after: int = 1000
    fail_ratio: float = 0.5
    burst: int = 100


def permanent(code: str | None, http_status: int | None) -> bool:
    """Whether retrying could not have helped (the one classification)."""
    return classify(code or "", http_status) is Disposition.FATAL


class FailureGuard:
    """This run's finished and failed tasks, and the current burst."""

    def __init__(self, policy: FailurePolicy) -> None:
        self.policy = policy
        self.finished = 0
        self.failed = 0
        self.burst_code: str | None = None
        self.burst = 0

    def observe(
        self, status: TaskStatus, code: str | None, http_status: int | None
    ) -> str | None:
        """Count one result; the reason to stop the job, if it is time."""
        p = self.policy
        self.finished += 1
        if status is TaskStatus.FAILED:
            self.failed += 1
            if permanent(code, http_status):
                if code == self.burst_code:
                    self.burst += 1
                else:
                    self.burst_code, self.burst = code, 1
            else:
                self.burst_code, self.burst = None, 0
        elif status is TaskStatus.SUCCEEDED:
            self.burst_code, self.burst = None, 0
        if p.burst and self.burst >= p.burst:
            return (
                f"{self.burst} tasks in a row failed with {self.burst_code} "
                f"(--fail-burst {p.burst})"
            )
        if (
            p.fail_after
            and self.finished >= p.fail_after
            and self.failed > p.fail_ratio * self.finished
        ):
            return (
                f"{self.failed} of the {self.finished} tasks finished in this run "
                f"failed ({100 * self.failed / self.finished:.0f}% > "
                f"--fail-ratio {100 * p.fail_ratio:g}% after --fail-after "
                f"{p.fail_after})"
            )
        return None
