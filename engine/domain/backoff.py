"""The task-level retry policy: how many attempts, and how long to wait between them.

Pure arithmetic; the worker does the waiting.  Backoff is exponential with full
jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"), with a longer
base when the service is throttling us.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from engine.domain.classify import Disposition


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Task-level retries, on top of the SDK's own per-request retries."""

    max_attempts: int = 5
    base_delay: float = 0.2
    throttle_base_delay: float = 1.0
    max_delay: float = 30.0

    def should_retry(self, attempt: int, disposition: Disposition) -> bool:
        """Whether a task whose ``attempt``-th try failed this way gets another."""
        return disposition is not Disposition.FATAL and attempt < self.max_attempts

    def delay(
        self,
        attempt: int,
        disposition: Disposition,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after the ``attempt``-th failed try (1-based)."""
        base = (
            self.throttle_base_delay
            if disposition is Disposition.THROTTLE
            else self.base_delay
        )
        ceiling = min(self.max_delay, base * 2.0 ** (attempt - 1))
        return float(rand()) * ceiling
