"""Adaptive concurrency and the request rate cap (engine.run.governor)."""

from __future__ import annotations

import asyncio

import pytest

from engine.run.governor import Aimd, Governor, RateLimit


def test_a_throttle_halves_the_limit_once_per_cooldown() -> None:
    a = Aimd(low=2, high=64, limit=64, cooldown=1.0)
    assert a.throttled(10.0) == 32
    assert a.throttled(10.5) is None  # the same overload answering late
    assert a.throttled(11.0) == 16
    for t in (12, 13, 14, 15):
        a.throttled(float(t))
    assert a.limit == 2  # never under low
    assert a.throttled(20.0) is None


def test_successes_raise_it_by_one_per_limit_up_to_high() -> None:
    a = Aimd(low=1, high=6, limit=4)
    assert [a.succeeded() for _ in range(4)] == [None, None, None, 5]
    assert [a.succeeded() for _ in range(5)] == [None] * 4 + [6]
    assert all(a.succeeded() is None for _ in range(20))
    assert a.limit == 6


def test_a_throttle_restarts_the_climb() -> None:
    a = Aimd(low=1, high=64, limit=8)
    for _ in range(7):
        a.succeeded()
    a.throttled(0.0)
    assert a.limit == 4
    assert [a.succeeded() for _ in range(4)] == [None, None, None, 5]


def test_the_rate_cap_allows_a_second_of_burst_then_spaces_starts() -> None:
    r = RateLimit(rate=10.0)
    waits = [r.delay(100.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.1)
    assert waits[11] == pytest.approx(0.2)
    assert r.delay(102.0) == 0.0  # idle time refills the bucket


def test_a_slow_rate_below_one_a_second() -> None:
    r = RateLimit(rate=0.5)
    assert r.delay(0.0) == 0.0
    assert r.delay(0.0) == pytest.approx(2.0)


def test_the_governor_holds_requests_beyond_the_limit() -> None:
    async def main() -> list[str]:
        changes: list[tuple[int, str]] = []
        g = Governor(high=2, low=1, on_change=lambda n, why: changes.append((n, why)))
        order: list[str] = []
        await g.acquire()
        await g.acquire()
        third = asyncio.create_task(g.acquire())
        await asyncio.sleep(0.01)
        order.append(f"waiting={not third.done()} in_flight={g.in_flight}")
        g.release("throttled")  # the limit halves to 1: the third still waits
        await asyncio.sleep(0.01)
        order.append(f"limit={g.limit} waiting={not third.done()}")
        g.release("ok")
        await asyncio.sleep(0.01)
        order.append(f"waiting={not third.done()} in_flight={g.in_flight}")
        g.release("ok")
        order.append(f"changes={changes}")
        return order

    assert asyncio.run(main()) == [
        "waiting=True in_flight=2",
        "limit=1 waiting=True",
        "waiting=False in_flight=1",
        "changes=[(1, 'throttled'), (2, 'recovering')]",
    ]


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    async def main() -> int:
        g = Governor(high=1)
        await g.acquire()
        waiting = asyncio.create_task(g.acquire())
        await asyncio.sleep(0.01)
        g.release()  # hands the slot to the waiter ...
        waiting.cancel()  # ... cancelled before it ran
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(g.acquire(), 1)  # the slot is free again
        return g.in_flight

    assert asyncio.run(main()) == 1
