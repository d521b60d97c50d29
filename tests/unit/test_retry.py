"""The task-level retry policy: when to try again and how long to wait first."""

from __future__ import annotations

import pytest

from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition

ALMOST_ONE = 0.9999999999
POLICY = RetryPolicy(
    max_attempts=5, base_delay=0.2, throttle_base_delay=1.0, max_delay=30.0
)


@pytest.mark.parametrize("disposition", [Disposition.RETRY, Disposition.THROTTLE])
def test_should_retry_until_max_attempts(disposition: Disposition) -> None:
    """Transient failures get another try until the last allowed attempt has failed."""
    assert [POLICY.should_retry(a, disposition) for a in range(1, 7)] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("attempt", [1, 2, 4])
def test_fatal_is_never_retried(attempt: int) -> None:
    """A fatal failure ends the task however many attempts are left."""
    assert not POLICY.should_retry(attempt, Disposition.FATAL)


def test_a_single_attempt_policy_never_retries() -> None:
    """With max_attempts=1 the first failure is final."""
    assert not RetryPolicy(max_attempts=1).should_retry(1, Disposition.RETRY)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.2), (2, 0.4), (3, 0.8), (5, 3.2), (8, 25.6), (9, 30.0), (40, 30.0)],
)
def test_retry_delay_is_full_jitter_under_an_exponential_ceiling(
    attempt: int, ceiling: float
) -> None:
    """The wait is in [0, min(max_delay, base * 2**(attempt-1))]."""
    low = POLICY.delay(attempt, Disposition.RETRY, rand=lambda: 0.0)
    high = POLICY.delay(attempt, Disposition.RETRY, rand=lambda: ALMOST_ONE)
    assert low == 0.0
    assert high <= ceiling
    assert high == pytest.approx(ceiling)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (4, 8.0), (5, 16.0), (6, 30.0)]
)
def test_throttle_delay_uses_the_larger_base(attempt: int, ceiling: float) -> None:
    """Throttling waits up to throttle_base * 2**(attempt-1), capped by max_delay."""
    high = POLICY.delay(attempt, Disposition.THROTTLE, rand=lambda: ALMOST_ONE)
    assert high <= ceiling
    assert high == pytest.approx(ceiling)
    assert POLICY.delay(attempt, Disposition.THROTTLE, rand=lambda: 0.0) == 0.0


def test_throttle_waits_longer_than_a_plain_retry() -> None:
    """For the same attempt and draw, throttling backs off more than a plain retry."""
    draw = 0.5
    throttle = POLICY.delay(2, Disposition.THROTTLE, rand=lambda: draw)
    retry = POLICY.delay(2, Disposition.RETRY, rand=lambda: draw)
    assert throttle > retry


def test_delay_scales_with_the_random_draw() -> None:
    """The wait is the draw times the ceiling, so jitter spreads retries out."""
    assert POLICY.delay(3, Disposition.RETRY, rand=lambda: 0.25) == pytest.approx(0.2)


def test_default_delay_stays_within_bounds() -> None:
    """With the real random source the wait is still within [0, max_delay]."""
    for attempt in range(1, 20):
        assert 0.0 <= RetryPolicy().delay(attempt, Disposition.THROTTLE) <= 30.0
