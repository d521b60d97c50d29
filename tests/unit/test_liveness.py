"""The one liveness policy (engine.domain.liveness): pure, no database."""

from __future__ import annotations

from engine.domain import liveness
from engine.domain.records import WorkerRecord


def worker(heartbeat_at: float, stopped_at: float | None = None) -> WorkerRecord:
    return WorkerRecord("w", "host", 1, 0.0, heartbeat_at, stopped_at, 0, 0, None)


def test_a_worker_is_live_while_it_missed_at_most_three_heartbeats() -> None:
    """Live within three heartbeat intervals (30 s), not a moment after."""
    assert liveness.LIVE_WINDOW == 3 * liveness.HEARTBEAT_INTERVAL == 30.0
    assert liveness.beating(worker(1000.0), 1030.0)
    assert not liveness.beating(worker(1000.0), 1030.1)


def test_a_stopped_worker_is_never_live() -> None:
    """A stopped worker is not live, however recent its heartbeat."""
    assert not liveness.beating(worker(1000.0, stopped_at=1000.0), 1000.0)
    assert not liveness.heard_since(worker(1000.0, stopped_at=1000.0), 0.0)


def test_a_worker_is_dead_once_silent_for_a_whole_lease() -> None:
    """Its tasks go to others after the lease (120 s), longer than the live window."""
    now = 10_000.0
    assert liveness.LEASE_SECONDS == 120.0 > liveness.LIVE_WINDOW
    assert liveness.silent_before(now) == now - 120.0
    assert liveness.heard_since(worker(now - 120.0), liveness.silent_before(now))
    assert not liveness.heard_since(worker(now - 121.0), liveness.silent_before(now))
    assert liveness.silent_before(now, 5.0) == now - 5.0


def test_heartbeats_come_at_least_three_times_per_lease() -> None:
    """The heartbeat interval shrinks to a third of a short lease."""
    assert liveness.heartbeat_every(10.0, 120.0) == 10.0
    assert liveness.heartbeat_every(10.0, 6.0) == 2.0
