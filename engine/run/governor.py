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


@dataclass
class Climb:
    """Find the number of requests in flight that buys throughput: while
    requests are latency-bound, more in flight means more done a second, so
    the limit doubles each time the last step paid (``gain``: 5 % more
    requests a second, or better); a step that paid less than that (but
    lost nothing: ``keep``) is kept but ends the climb; where a step cost
    throughput (a server or network past its bound) the limit goes back to
    the best level found.  Either way it rests there, trying one
    step up again every ``rest`` seconds (the job may change: larger
    objects, a slower or faster store).

    Why a small gain climbs on: a client near its CPU bound still spends
    less a request with more in flight (fewer waits for a slot, more answers
    for each turn of its event loop).  At 30 ms on the bench, fixed limits
    of 512-2,048 ran ~8 % faster than 256, and runs that went back to 256
    were the slowest.  A step kept on noise alone costs memory and
    connections; one kept level's rate is the next step's reference, so a
    kept step that lost nothing cannot walk the rate down, and a store past
    its bound (more in flight, the same rate) sends back about one step in
    two.

    Where a step was all latency (its requests held their slots no longer
    than at the lowest level judged: Little's law, the limit over the rate),
    the next step is ``fast_step`` rather than ``step``: at 100 ms a climb
    from 64 by doubling cost a 20,000-copy run about a second (4.7-5.0 s at
    the defaults, 3.7-3.8 s at a fixed 1,024).  The first level has nothing
    to compare with, and a restart forgets what was seen, so each climb
    doubles at least once first; once a step has failed to pay, every later
    step is a doubling until a restart, and once the store has throttled,
    for the rest of the run.  A fourfold step may land past the knee (where
    more in flight stops paying) by up to four times rather than two: kept
    if it paid, it costs connections and memory, bounded by the ceiling.

    Pure: it sees each successful request's end (:meth:`completed`) with the
    current limit and whether the limit was binding (requests waited for a
    slot, or the slots were all taken) and answers with a new limit or
    ``None``.  A throttling answer (:meth:`throttled`) ends the climb: the
    AIMD halving takes over, and the climb starts again from there only
    after a rest.
    """

    ceiling: int
    window: float = 0.15  # seconds of answers each level is judged on, at least
    # … and at least this many turnovers of the limit (limit × turnovers
    # answers): a level is judged on its own requests, not the last level's
    turnovers: float = 3.0
    gain: float = 1.05  # a step up must raise the rate this much to climb on
    keep: float = 1.0  # … and at least this much to be kept (else: back)
    step: float = 2.0
    # … and this much after a step that was all latency: its requests held
    # their slots no more than ``queueing`` times as long as the lowest level's
    fast_step: float = 4.0
    queueing: float = 1.25
    rest: float = 20.0
    _since: float | None = None
    _done: int = 0
    _binding: bool = False
    _best: tuple[int, float] | None = None  # (limit, requests a second)
    _trying: bool = False  # the current limit is a step up, being judged
    _resting_until: float = float("-inf")
    # (limit, seconds a request held its slot: limit / rate) of the lowest
    # level judged with all its slots taken since the climb (re)started
    _first: tuple[int, float] | None = None
    _ascending: bool = True  # no step has yet failed to pay or been throttled
    _throttled: bool = False  # the store has throttled this run

    def completed(self, now: float, limit: int, binding: bool) -> int | None:
        """A request succeeded: the new limit, or ``None``."""
        if self._since is None:
            self._since = now
            return None
        self._done += 1
        self._binding = self._binding or binding
        elapsed = now - self._since
        if elapsed < self.window or self._done < limit * self.turnovers:
            return None
        rate, binding = self._done / elapsed, self._binding
        self._since, self._done, self._binding = now, 0, False
        return self._judge(now, limit, rate, binding)

    def _judge(self, now: float, limit: int, rate: float, binding: bool) -> int | None:
        best = self._best
        latency_bound = False
        if binding:
            turn, first = limit / rate, self._first
            if first is None or limit < first[0]:
                self._first = (limit, turn)
            elif limit > first[0] and self._ascending:
                latency_bound = turn <= first[1] * self.queueing
        if self._trying:
            self._trying = False
            if best is not None and rate < best[1] * self.keep:
                # the step cost throughput: back to the best level, and rest
                self._resting_until = now + self.rest
                self._ascending = False
                return best[0] if best[0] != limit else None
            if best is not None and rate < best[1] * self.gain:
                # paid less than a climb needs, lost nothing: stay, and rest
                self._best = (limit, rate)
                self._resting_until = now + self.rest
                self._ascending = False
                return None
        self._best = (limit, rate)  # the latest rate at the level held
        if not binding or limit >= self.ceiling or now < self._resting_until:
            return None  # more slots would stay empty, or no room, or resting
        self._trying = True
        step = self.fast_step if latency_bound else self.step
        return min(self.ceiling, max(limit + 1, int(limit * step)))

    def restart(self) -> None:
        """The run changed under the levels judged so far (the listing that
        shared the CPU is over): judge again, climbing from here."""
        self._best, self._trying, self._first = None, False, None
        self._ascending = not self._throttled
        self._resting_until = float("-inf")
        self._since, self._done, self._binding = None, 0, False

    def throttled(self, now: float) -> None:
        """The service asks us to slow down: stop climbing for a while."""
        self._trying = False
        self._best, self._first, self._ascending = None, None, False
        self._throttled = True
        self._since, self._done, self._binding = None, 0, False
        self._resting_until = now + self.rest


Changed = Callable[[int, str], None]  # (new limit, why)


class Governor:
    """Slots for requests in flight (adaptive) and their start rate."""

    def __init__(
        self,
        high: int,
        low: int = 1,
        max_rps: float | None = None,
        on_change: Changed | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        start: int | None = None,
    ) -> None:
        """``high`` requests in flight at most; ``start``: begin there and
        climb towards ``high`` while it pays (:class:`Climb`); ``None``: a
        fixed limit of ``high`` (``--concurrency N``), lowered only by
        throttling."""
        low = max(1, min(low, high))
        first = high if start is None else max(low, min(start, high))
        self.aimd = Aimd(low=low, high=first, limit=first)
        self.climb = Climb(ceiling=high) if start is not None else None
        self.peak = first  # the highest limit of the run
        self.peak_in_flight = 0
        self.rate = RateLimit(max_rps) if max_rps else None
        self.in_flight = 0
        self.throttles = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change
        self._clock = clock

    @property
    def limit(self) -> int:
        return self.aimd.limit

    def relearn(self) -> None:
        """Climb again from the current limit (:meth:`Climb.restart`); with
        a fixed limit, nothing changes."""
        if self.climb is not None:
            self.climb.restart()

    def try_acquire(self) -> bool:
        """Take a slot without waiting, if one is free and no rate applies
        (the common case: no coroutine to create)."""
        if self.rate is None and self.in_flight < self.aimd.limit and not self._waiters:
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight
            return True
        return False

    async def acquire(self) -> None:
        if self.in_flight < self.aimd.limit and not self._waiters:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
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
            now = self._clock()
            changed, why = self.aimd.throttled(now), "throttled"
            if self.climb is not None:
                self.climb.throttled(now)
                self.aimd.high = max(self.aimd.limit, self.aimd.high // 2)
        elif outcome == "ok":
            changed, why = self.aimd.succeeded(), "recovering"
            if changed is None and self.climb is not None:
                binding = bool(self._waiters) or self.in_flight + 1 >= self.aimd.limit
                level = self.climb.completed(self._clock(), self.aimd.limit, binding)
                if level is not None:
                    why = "climbing" if level > self.aimd.limit else "settled"
                    self.aimd.limit = self.aimd.high = changed = level
                    self.peak = max(self.peak, level)
        if changed is not None and self._on_change is not None:
            self._on_change(changed, why)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.aimd.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
