"""Adaptive concurrency and the request rate cap (engine.run.governor)."""

from __future__ import annotations

import asyncio

import pytest

from engine.run.governor import Aimd, Climb, Governor, RateLimit


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


def _judge(climb: Climb, limit: int, rate: float, binding: bool = True) -> int | None:
    """One window of answers at ``limit``, ``rate`` a second (a simulated clock)."""
    now = climb._since if climb._since is not None else 0.0
    climb.completed(now, limit, binding)  # opens the window
    n = max(int(limit * climb.turnovers), int(rate * climb.window)) + 1
    for i in range(1, n + 1):
        new = climb.completed(now + i / rate, limit, binding)
        if new is not None or climb._done == 0:  # the window was judged
            return new
    raise AssertionError("the window was not judged")


def test_the_limit_climbs_while_more_in_flight_buys_throughput() -> None:
    """Latency-bound (rate proportional to the limit): 64 doubles to 128;
    128 shows the requests held their slots no longer than at 64 (all
    latency), so the next steps are fourfold: 512, then the ceiling and no
    further."""
    c = Climb(ceiling=1000)
    limit = 64
    seen = []
    for _ in range(6):
        new = _judge(c, limit, rate=limit * 30.0)  # 30 ms a request
        if new is None:
            break
        seen.append(new)
        limit = new
    assert seen == [128, 512, 1000]


def test_a_step_whose_requests_queued_only_doubles() -> None:
    """128 brings 50 % more than 64, not 100 %: its requests held their
    slots a third longer (the client or the server queues them), so the
    next step is a doubling, not fourfold."""
    c = Climb(ceiling=4096)
    assert _judge(c, 64, rate=2000.0) == 128
    assert _judge(c, 128, rate=3000.0) == 256
    assert _judge(c, 256, rate=3500.0) == 512


def test_a_step_tried_again_after_a_rest_only_doubles() -> None:
    """Back at 256 after 512 cost throughput: 256 is no higher than the
    lowest level judged, so it shows nothing about latency: the next try
    is 512 again, not 1,024."""
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 128, rate=1500.0) == 256
    assert _judge(c, 256, rate=3000.0) == 1024  # all latency: fourfold
    assert _judge(c, 1024, rate=2900.0) == 256  # cost throughput: back
    c._since = 100.0  # the rest is over
    assert _judge(c, 256, rate=3000.0) == 512


def test_a_step_that_costs_throughput_goes_back_and_rests() -> None:
    """Server-bound at 256: the step to 512 brings 2 % less: back to 256,
    and no new step until the rest is over."""
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 256, rate=3000.0) == 512
    assert _judge(c, 512, rate=2940.0) == 256
    assert _judge(c, 256, rate=3000.0) is None  # resting
    c._since = 100.0  # the rest is over
    assert _judge(c, 256, rate=3000.0) == 512  # try again


def test_a_step_that_pays_less_than_the_gain_is_kept_and_rests() -> None:
    """Near the CPU bound at 256: 512 brings 2 % more: stay at 512, and no
    step to 1,024 until the rest is over."""
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 256, rate=3000.0) == 512
    assert _judge(c, 512, rate=3060.0) is None
    assert _judge(c, 512, rate=3450.0) is None  # resting, at 512
    c._since = 100.0
    assert _judge(c, 512, rate=3450.0) == 1024


def test_a_step_that_pays_a_little_climbs_on() -> None:
    """512 brings 8 % more than 256 (a client near its CPU bound: each turn
    of its event loop handles more answers): climb on to 1,024."""
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 256, rate=3000.0) == 512
    assert _judge(c, 512, rate=3240.0) == 1024
    assert _judge(c, 1024, rate=3300.0) is None  # 2 % more: kept, resting


def test_a_restart_climbs_again_from_a_settled_level() -> None:
    """Settled at 64 while a listing shared the CPU; the listing over, the
    run climbs again at once (no rest to wait out)."""
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 64, rate=2000.0) == 128
    assert _judge(c, 128, rate=1700.0) == 64  # cost throughput: resting at 64
    assert _judge(c, 64, rate=2000.0) is None
    c.restart()
    assert _judge(c, 64, rate=2000.0) == 128
    assert _judge(c, 128, rate=4000.0) == 512  # all latency: fourfold


def test_no_climb_where_the_slots_are_not_all_used() -> None:
    """Too few tasks left to fill the slots: more slots would stay empty."""
    c = Climb(ceiling=4096)
    assert _judge(c, 64, rate=500.0, binding=False) is None


def test_throttling_ends_the_climb_for_a_rest() -> None:
    c = Climb(ceiling=4096, rest=20.0)
    assert _judge(c, 64, rate=2000.0) == 128
    c.throttled(0.5)
    assert _judge(c, 64, rate=2000.0) is None
    c._since = 100.0  # the rest is over: the climb goes on, a doubling at a time
    assert _judge(c, 64, rate=2000.0) == 128
    assert _judge(c, 128, rate=4000.0) == 256
    c.restart()  # the listing is over: still a doubling at a time
    assert _judge(c, 256, rate=8000.0) == 512
    assert _judge(c, 512, rate=16000.0) == 1024


def test_a_climbing_governor_raises_its_limit_and_says_why() -> None:
    """Requests that keep every slot busy and pay for more: the governor
    climbs from its start towards its ceiling (ConcurrencyChanged: climbing)."""
    now = [0.0]
    changes: list[tuple[int, str]] = []
    g = Governor(
        high=256,
        start=4,
        clock=lambda: now[0],
        on_change=lambda n, why: changes.append((n, why)),
    )
    g.climb.window = 0.01  # type: ignore[union-attr]
    for _ in range(2000):
        while g.try_acquire():
            pass
        now[0] += 0.001 * 4 / g.limit  # latency-bound: rate grows with slots
        g.release("ok")
    assert g.limit > 4
    assert changes
    assert all(why == "climbing" for _, why in changes)
    assert g.peak == g.limit


def test_a_fixed_governor_never_climbs() -> None:
    g = Governor(high=8)
    assert g.climb is None
    for _ in range(100):
        assert g.try_acquire()
        g.release("ok")
    assert g.limit == 8
