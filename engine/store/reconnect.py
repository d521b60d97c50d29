"""Riding out a lost database connection: which errors to retry, and how long.

A PostgreSQL restart, a failover or an admin's ``pg_terminate_backend`` kills
the connections of every worker at once.  Workers must reconnect and carry
on: the repository retries each call that failed because the connection went
away (SQLAlchemy's pool opens a new one, ``pool_pre_ping`` weeds out dead
ones), with a growing pause, for up to :attr:`Reconnect.give_up_after`
seconds.

A write whose COMMIT was sent but never answered may or may not have happened.
Calls that are idempotent (``WHERE owner = me AND status = 'running'``) are
simply run again; the two that are not (claiming tasks, recording results)
re-read what the first try left before trying again (see ``Repository``).

The decisions here are pure (no I/O): :func:`retryable` and :meth:`Reconnect.delays`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

# text of errors that mean "the connection (or the server) went away" when a
# driver does not mark them itself
_GONE = (
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection refused",
    "could not connect",
    "connection timeout",
    "connection timed out",
    "connection reset",
    "broken pipe",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "consuming input failed",
    "lost synchronization with server",
    "ssl syscall error",
    "eof detected",
)
# a transaction PostgreSQL rolled back to break a deadlock or a serialization
# conflict: running it again is the documented answer
_ROLLED_BACK = ("40001", "40P01")  # serialization_failure, deadlock_detected


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` means the call may succeed if made again on a new
    connection: the connection or server went away, or the server rolled the
    transaction back (deadlock, serialization failure)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _ROLLED_BACK:
        return True
    if sqlstate is not None and str(sqlstate).startswith("08"):  # connection_exception
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    text = str(orig).lower()
    return any(marker in text for marker in _GONE)


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How long and how often to retry a call whose connection was lost."""

    give_up_after: float = 120.0  # seconds, summed over the pauses
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """The pauses between tries: doubling up to ``max_delay``, ending once
        their sum would pass ``give_up_after``."""
        total, delay = 0.0, self.first_delay
        while total + delay <= self.give_up_after:
            yield delay
            total += delay
            delay = min(self.max_delay, delay * 2)
