"""Job control: which statuses ``pause``, ``resume`` and ``cancel`` apply
to, and the status each sets (``bulkcopy pause`` etc.; the store applies it
atomically, workers follow)."""

from __future__ import annotations

from engine.domain.errors import UsageError
from engine.domain.models import JobStatus

ACTIONS = ("pause", "resume", "cancel")

_ACTIVE = (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.STOPPED, JobStatus.FAILED)
# action: (statuses it applies to, status it sets)
_RULES: dict[str, tuple[tuple[JobStatus, ...], JobStatus]] = {
    "pause": (
        (JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.STOPPED),
        JobStatus.PAUSED,
    ),
    "resume": ((*_ACTIVE, JobStatus.PAUSED), JobStatus.RUNNING),
    "cancel": ((*_ACTIVE, JobStatus.PAUSED), JobStatus.CANCELLED),
}


def rule(action: str) -> tuple[tuple[JobStatus, ...], JobStatus]:
    """The statuses ``action`` applies to and the status it sets; raises
    :class:`UsageError` for an unknown action."""
    if action not in _RULES:
        raise UsageError(f"unknown action {action!r}: pause, resume or cancel")
    return _RULES[action]


# statuses a worker may move to running, and to complete
STARTABLE = (
    JobStatus.SUBMITTED,
    JobStatus.RUNNING,
    JobStatus.STOPPED,
    JobStatus.FAILED,
)
FINISHABLE = (*STARTABLE, JobStatus.PAUSED)
_UNDER_WAY = (JobStatus.RUNNING, JobStatus.SUBMITTED)


def run_end(
    remaining: int, failing: bool, last_stopped: bool
) -> tuple[JobStatus, tuple[JobStatus, ...]] | None:
    """The status a job takes when a run of it ends, and the statuses it may
    take it from (``None``: it stays as it is).  ``failing``: the run gave up
    on the job (its failure threshold); ``last_stopped``: the job's last live
    worker was stopped (a signal), so the job is."""
    if failing and remaining > 0:
        return JobStatus.FAILED, _UNDER_WAY
    if remaining == 0:
        return JobStatus.COMPLETE, FINISHABLE
    if last_stopped:
        return JobStatus.STOPPED, _UNDER_WAY
    return None
