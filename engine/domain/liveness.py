"""When a worker counts as live, and how long its claims last: one policy.

A worker writes a heartbeat every :data:`HEARTBEAT_INTERVAL` seconds, and
with it extends the lease of every task it holds to ``now + lease``.  Two
windows follow from that, both read from here:

- **live** (status, pause/cancel, a worker deciding whether others are still
  around): heard from within :data:`LIVE_WINDOW`, i.e. at most
  :data:`MISSED_BEATS` heartbeats missed;
- **dead** (its tasks are taken back by another worker): silent for a whole
  lease, :data:`LEASE_SECONDS` by default (``--lease``).  Longer than the
  live window on purpose: a worker merely stalled (a long GC, a slow
  database) keeps its claims, while status already shows it as not live.

A heartbeat comes at least :data:`MISSED_BEATS` times per lease, so a lease
never runs out under a worker that is still beating.
"""

from __future__ import annotations

from engine.domain.records import WorkerRecord

HEARTBEAT_INTERVAL = 10.0  # seconds between a worker's heartbeats
MISSED_BEATS = 3  # heartbeats a live worker may miss
LIVE_WINDOW = MISSED_BEATS * HEARTBEAT_INTERVAL
LEASE_SECONDS = 120.0  # how long a claim lasts without a heartbeat


def heard_since(worker: WorkerRecord, since: float) -> bool:
    """Whether the worker is not stopped and beat at or after ``since``."""
    return worker.stopped_at is None and worker.heartbeat_at >= since


def beating(worker: WorkerRecord, now: float) -> bool:
    """Whether the worker's heartbeat is within :data:`LIVE_WINDOW` of ``now``
    (not stopped); whether its process is there is the caller's check."""
    return heard_since(worker, now - LIVE_WINDOW)


def silent_before(now: float, lease_seconds: float = LEASE_SECONDS) -> float:
    """The heartbeat time before which a worker is dead: one lease ago."""
    return now - lease_seconds


def heartbeat_every(interval: float, lease_seconds: float) -> float:
    """How often to beat: every ``interval``, and at least
    :data:`MISSED_BEATS` times per lease."""
    return min(interval, lease_seconds / MISSED_BEATS)
