"""What the fake endpoint saw: requests by operation, errors by code, and the
most requests of each operation in flight at once (what a copy tool really
keeps busy, whatever it was configured to do)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any


class Stats:
    """Counters since the last :meth:`reset`; single-threaded (the event loop)."""

    def __init__(self, count_copies: bool = False) -> None:
        self.in_flight: Counter[str] = Counter()
        self.open_connections = 0
        # copies by destination "bucket/key" (tests: was any object copied
        # twice?); off by default, a million keys cost memory
        self.count_copies = count_copies
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = +self.in_flight  # positive counts only
        self.max_in_flight_total = sum(self.in_flight.values())
        self.max_connections = self.open_connections
        self.connections_accepted = 0
        self.bytes_copied = 0
        self.bytes_received = 0
        self.copies: Counter[str] = Counter()
        self._since = time.monotonic()
        self._cpu_since = time.process_time()

    # requests ------------------------------------------------------------

    def begin(self, op: str) -> None:
        self.requests[op] += 1
        n = self.in_flight[op] + 1
        self.in_flight[op] = n
        if n > self.max_in_flight[op]:
            self.max_in_flight[op] = n
        total = self.in_flight.total()
        if total > self.max_in_flight_total:
            self.max_in_flight_total = total

    def end(self, op: str) -> None:
        self.in_flight[op] -= 1

    def copied(self, bucket: str, key: str) -> None:
        """A CopyObject or a completed multipart upload wrote bucket/key."""
        if self.count_copies:
            self.copies[f"{bucket}/{key}"] += 1

    def error(self, code: str) -> None:
        self.errors[code] += 1

    # connections ---------------------------------------------------------

    def connected(self) -> None:
        self.connections_accepted += 1
        self.open_connections += 1
        self.max_connections = max(self.max_connections, self.open_connections)

    def disconnected(self) -> None:
        self.open_connections -= 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        elapsed = time.monotonic() - self._since
        total = self.requests.total()
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": total,
            "errors": dict(sorted(self.errors.items())),
            "max_in_flight": dict(sorted(self.max_in_flight.items())),
            "max_in_flight_total": self.max_in_flight_total,
            "in_flight": {k: v for k, v in sorted(self.in_flight.items()) if v},
            "connections": {
                "open": self.open_connections,
                "max_open": self.max_connections,
                "accepted": self.connections_accepted,
            },
            "bytes_copied": self.bytes_copied,
            # with count_copies: objects written, and those written more than once
            "copies": {
                "objects": len(self.copies),
                "repeated": {k: n for k, n in sorted(self.copies.items()) if n > 1},
            },
            "bytes_received": self.bytes_received,
            "seconds": round(elapsed, 6),
            "cpu_seconds": round(time.process_time() - self._cpu_since, 6),
            "requests_per_second": round(total / elapsed, 1) if elapsed else 0.0,
        }
