"""How a run behaves (:class:`RunSettings`); unlike the job spec these may
change between runs (``--concurrency``, ``--lease``, the failure threshold)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.domain import liveness
from engine.domain.backoff import RetryPolicy
from engine.domain.failure_threshold import FailurePolicy

# an adaptive run starts with this many requests in flight, and climbs up
# to --max-concurrency
START_CONCURRENCY = 64
MAX_CONCURRENCY = 2048


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run behaves; unlike the job spec these may change between runs."""

    # requests in flight: a fixed number, or None (the default) to find the
    # level that pays, from START_CONCURRENCY up to max_concurrency
    # (engine.run.governor.Climb)
    concurrency: int | None = None
    max_concurrency: int = MAX_CONCURRENCY
    part_concurrency: int = 16  # UploadPartCopy requests in flight, all objects
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    claim_batch: int = 0  # 0: twice the concurrency, at most 1000
    lease_seconds: float = liveness.LEASE_SECONDS
    flush_interval: float = 0.25
    flush_max: int = 1000
    preflight: bool = True
    # how often to look for pause / resume / cancel of the job
    control_interval: float = 1.0
    # how often to extend leases and take back dead workers' tasks (see
    # heartbeat_every)
    heartbeat_interval: float = liveness.HEARTBEAT_INTERVAL
    # with nothing left to claim, wait while other workers hold tasks of the
    # job (False: leave at once, as a worker that only helps out)
    wait_for_others: bool = True
    idle_poll: float = 1.0
    # a stop (signal) of the job's last worker marks the job ``stopped``
    # (``run``: the user stopped it); a pool worker's stop only means this
    # process goes away (a rolling update, a scale-down): the job stays
    # ``running`` for the other and next workers
    stop_marks_job: bool = True
    # when to give up on the job (engine.domain.failure_threshold)
    failure: FailurePolicy = field(default_factory=FailurePolicy)
    # adaptive concurrency: the fewest requests in flight it may go down to
    # (engine.run.governor); = concurrency: fixed
    min_concurrency: int = 1
    max_rps: float | None = None  # requests started per second, at most
    # emit a RequestDone event for every S3 request (metrics ask for it)
    request_events: bool = False

    @property
    def heartbeat_every(self) -> float:
        return liveness.heartbeat_every(self.heartbeat_interval, self.lease_seconds)

    @property
    def batch(self) -> int:
        return self.claim_batch or min(1000, max(16, 2 * self.ceiling))

    @property
    def ceiling(self) -> int:
        """The most requests (and copies) in flight this run may have."""
        return self.concurrency or self.max_concurrency

    @property
    def start(self) -> int | None:
        """Where an adaptive run starts (``None``: a fixed concurrency)."""
        if self.concurrency is not None:
            return None
        return min(START_CONCURRENCY, self.max_concurrency)
