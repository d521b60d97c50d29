"""SIGINT and SIGTERM ask a worker (or the scheduler) to stop: the first
drains, the second aborts (:meth:`engine.run.worker.Worker.request_stop`)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Stoppable(Protocol):
    def request_stop(self) -> None: ...


@contextmanager
def stop_on_signals(worker: Stoppable) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``worker.request_stop`` while the block runs."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for s in sigs:
        loop.add_signal_handler(s, worker.request_stop)
    try:
        yield
    finally:
        for s in sigs:
            loop.remove_signal_handler(s)
