"""Whether another worker of a job is alive: its heartbeat is recent and,
when it runs on this host, its process is still there."""

from __future__ import annotations

import os
import socket

from engine.domain import liveness
from engine.domain.records import WorkerRecord


def is_live(worker: WorkerRecord, now: float, hostname: str | None = None) -> bool:
    """Whether a worker looks alive: its heartbeat is recent
    (:func:`engine.domain.liveness.beating`) and, when it runs on this host,
    its process is still there."""
    if not liveness.beating(worker, now):
        return False
    here = hostname or socket.gethostname()
    return worker.hostname != here or pid_alive(worker.pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
