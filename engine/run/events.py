"""Events the engine emits while it works; the CLI decides how to show them.

An observer is any callable taking one event.  Observers run on the event
loop and must be quick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.domain.models import JobCounts, Task, TaskResult


@dataclass(frozen=True, slots=True)
class RunStarted:
    job_id: str
    worker_id: str
    counts: JobCounts
    released: int  # tasks a crashed run had claimed, given back
    transfer: str = "server"  # or "stream" (engine.domain.transfer)


@dataclass(frozen=True, slots=True)
class TasksListed:
    """A listing copied while it is read has stored more tasks: the job has
    ``total`` so far (``listed``: the listing is over, this is all)."""

    job_id: str
    total: int
    listed: bool


@dataclass(frozen=True, slots=True)
class PreflightWarning:
    job_id: str
    message: str


@dataclass(frozen=True, slots=True)
class UploadsLeft:
    """Multipart uploads of ended tasks that could not be aborted."""

    job_id: str
    count: int
    command: str  # the `bulkcopy cleanup` command that removes them


@dataclass(frozen=True, slots=True)
class TaskRetrying:
    task: Task
    attempt: int
    code: str
    message: str
    delay: float


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task: Task
    result: TaskResult


@dataclass(frozen=True, slots=True)
class Draining:
    job_id: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class Aborting:
    job_id: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class JobPaused:
    """``bulkcopy pause``: this worker stopped claiming; ``in_flight`` copies
    still finish."""

    job_id: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class JobResumed:
    job_id: str


@dataclass(frozen=True, slots=True)
class JobCancelled:
    """``bulkcopy cancel``: this worker finishes ``in_flight`` copies and leaves."""

    job_id: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class CredentialsRefreshed:
    """S3 said the credentials expired (ExpiredToken): they were refreshed
    through the credential chain and the copies that saw it go on."""

    job_id: str


@dataclass(frozen=True, slots=True)
class RequestDone:
    """One S3 request of a run ended (only when the run was asked to report
    them: ``RunSettings.request_events``, for metrics): ``outcome`` is
    ``ok`` or the error code."""

    job_id: str
    operation: str
    outcome: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ConcurrencyChanged:
    """The adaptive limit of requests in flight moved (``why``: throttled,
    recovering, climbing — more in flight paid — or settled: a step up did
    not pay, back to the best level found)."""

    job_id: str
    limit: int
    why: str


@dataclass(frozen=True, slots=True)
class JobFailing:
    """The failure threshold (or another worker) gave up on the job: this
    worker finishes ``in_flight`` copies, hands back the rest and leaves."""

    job_id: str
    reason: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class TasksTakenBack:
    """Tasks of dead workers or expired leases went back to pending."""

    job_id: str
    tasks: int


@dataclass(frozen=True, slots=True)
class WaitingForWork:
    """``bulkcopy worker`` found no job to work on (yet)."""

    job_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunResources:
    """What the run's pool used: the highest limit of requests in flight, the
    most in flight at once (each on a connection of its own: the most
    connections open), and the process's peak resident memory."""

    job_id: str
    peak_limit: int
    peak_in_flight: int
    peak_rss_mb: float
    # what the store was found not to do (engine.s3.quirks.Quirks.found)
    store_lacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunFinished:
    job_id: str
    counts: JobCounts
    stopped: bool


Event = (
    RunStarted
    | TasksListed
    | CredentialsRefreshed
    | ConcurrencyChanged
    | RequestDone
    | JobFailing
    | PreflightWarning
    | UploadsLeft
    | TaskRetrying
    | TaskFinished
    | Draining
    | Aborting
    | JobPaused
    | JobResumed
    | JobCancelled
    | TasksTakenBack
    | WaitingForWork
    | RunResources
    | RunFinished
)
Observer = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The observer that shows nothing."""
