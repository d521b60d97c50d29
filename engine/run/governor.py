"""How many S3 requests a run keeps in flight, and how fast it sends them.

Adaptive concurrency (AIMD, as TCP does it): every request a run makes goes
through :func:`engine.s3.call.invoke`, which takes a slot here first.  When
the service throttles (``SlowDown``, 503, 429 — once the SDK's own retries
are spent), the limit halves, at most once per ``cooldown`` (the requests
already in flight answered for the same overload); each ``limit`` requests
that succeed raise it by one, up to ``--concurrency``, never under
``--min-concurrency``.  ``--max-rps`` caps the rate at which requests start
(GCRA: a bucket of one second's requests).

The decisions (:class:`Aimd`, :class:`RateLimit`) are pure arithmetic on a
clock the caller passes; :class:`Governor` does the waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Aimd:
    """The current limit between ``low`` and ``high``."""

    low: int
    high: int
    limit: int
    cooldown: float = 1.0
    _last_cut: float = float("-inf")
    _successes: int = 0

    def throttled(self, now: float) -> int | None:
        """A throttling answer: the new limit, or ``None`` if unchanged."""
        if now - self._last_cut < self.cooldown or self.limit <= self.low:
            return None
        self._last_cut = now
        self._successes = 0
        self.limit = max(self.low, self.limit // 2)
        return self.limit

    def succeeded(self) -> int | None:
        """A successful answer: the new limit, or ``None`` if unchanged."""
        if self.limit >= self.high:
            return None
        self._successes += 1
        if self._successes < self.limit:
            return None
        self._successes = 0
        self.limit += 1
        return self.limit


@dataclass
class RateLimit:
    """At most ``rate`` starts a second, bursts of up to one second's worth."""

    rate: float
    _tat: float = float("-inf")  # theoretical arrival time of the next start

    def delay(self, now: float) -> float:
        """Seconds the next start must wait; reserves its place."""
        burst = max(1.0, self.rate) / self.rate
        tat = max(self._tat, now)
        wait = max(0.0, tat - now - burst + 1.0 / self.rate)
        self._tat = tat + 1.0 / self.rate
        return wait


Changed = Callable[[int, str], None]  # (new limit, why: "throttled" | "recovering")


class Governor:
    """Slots for requests in flight (adaptive) and their start rate."""

    def __init__(
        self,
        high: int,
        low: int = 1,
        max_rps: float | None = None,
        on_change: Changed | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        low = max(1, min(low, high))
        self.aimd = Aimd(low=low, high=high, limit=high)
        self.rate = RateLimit(max_rps) if max_rps else None
        self.in_flight = 0
        self.throttles = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change
        self._clock = clock

    @property
    def limit(self) -> int:
        return self.aimd.limit

    def try_acquire(self) -> bool:
        """Take a slot without waiting, if one is free and no rate applies
        (the common case: no coroutine to create)."""
        if self.rate is None and self.in_flight < self.aimd.limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self) -> None:
        if self.in_flight < self.aimd.limit and not self._waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # the slot was handed over: give it back
                raise
        if self.rate is not None:
            wait = self.rate.delay(self._clock())
            if wait > 0:
                try:
                    await asyncio.sleep(wait)
                except asyncio.CancelledError:
                    self.release()
                    raise

    def release(self, outcome: str = "ok") -> None:
        """A request ended: ``ok``, ``throttled`` or ``error``."""
        self.in_flight -= 1
        changed: int | None = None
        why = ""
        if outcome == "throttled":
            self.throttles += 1
            changed, why = self.aimd.throttled(self._clock()), "throttled"
        elif outcome == "ok":
            changed, why = self.aimd.succeeded(), "recovering"
        if changed is not None and self._on_change is not None:
            self._on_change(changed, why)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.aimd.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.in_flight += 1
