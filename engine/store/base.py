"""What every part of the repository shares: the engine, and riding out a
lost connection.

:class:`RepositoryBase` holds the SQLAlchemy engine and the retry loop
(:meth:`~RepositoryBase._reconnecting`); each concern of the job database
(``jobs``, ``ingest``, ``claims``, ``recording``, ``workers``, ``uploads``,
``reads``) is a mixin over it, and :class:`engine.store.repo.Repository`
composes them.  Mixins rather than a facade: the public interface stays one
class with one set of method names, with no layer of delegating wrappers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.domain.errors import DatabaseError, JobNotFound
from engine.store import db
from engine.store.reconnect import Reconnect, retryable
from engine.store.tables import jobs

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="RepositoryBase")


def reconnecting(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], R]:
    """Run the method again (on a new connection) when its connection was
    lost; for calls that are safe to repeat (reads, and writes fenced by
    owner and status)."""

    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._reconnecting(
            method.__name__, lambda: method(self, *args, **kwargs)
        )

    functools.update_wrapper(wrapper, method)
    return wrapper


class RepositoryBase:
    """The engine of the job database and the retry on a lost connection.

    Every call survives a lost connection (see :mod:`engine.store.reconnect`):
    ``on_reconnect(what, error, delay)`` hears of each retry.
    """

    def __init__(
        self,
        url: str | None = None,
        engine: Engine | None = None,
        *,
        reconnect: Reconnect | None = None,
        on_reconnect: Callable[[str, BaseException, float], None] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else db.create(url)
        self.url = db.redact(str(self.engine.url))
        self.reconnect = reconnect or Reconnect()
        self.on_reconnect = on_reconnect
        self._prefixes: dict[str, str] = {}

    def close(self) -> None:
        self.engine.dispose()

    @reconnecting
    def _prefix(self, job_id: str) -> str:
        """The job's destination prefix (never changes; read once)."""
        prefix = self._prefixes.get(job_id)
        if prefix is None:
            with self.engine.connect() as conn:
                prefix = conn.execute(
                    sa.select(jobs.c.dst_prefix).where(jobs.c.id == job_id)
                ).scalar_one_or_none()
            if prefix is None:
                raise JobNotFound(f"no job {job_id!r} in {self.url}")
            self._prefixes[job_id] = prefix
        return prefix

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            if retryable(exc):
                raise  # the caller's retry reconnects
            raise DatabaseError(f"cannot {what} {self.url}: {exc}") from exc

    def _reconnecting(
        self,
        what: str,
        call: Callable[[], R],
        resolve: Callable[[], R | None] | None = None,
    ) -> R:
        """``call()``, again on a new connection while the connection keeps
        being lost, for up to ``reconnect.give_up_after`` seconds.

        ``resolve`` (for writes that are not safe to repeat) runs before each
        new try: it re-reads what the failed try left and returns the answer
        when the try's COMMIT did go through, ``None`` when ``call`` must run
        again."""
        delays = self.reconnect.delays()
        failed = False
        while True:
            try:
                if failed and resolve is not None:
                    known = resolve()
                    if known is not None:
                        return known
                return call()
            except sa.exc.SQLAlchemyError as exc:
                if not retryable(exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise DatabaseError(
                        f"lost the connection to {self.url} and could not get it "
                        f"back in {self.reconnect.give_up_after:g}s ({what}): "
                        f"{getattr(exc, 'orig', None) or exc}"
                    ) from exc
                if self.on_reconnect is not None:
                    self.on_reconnect(what, exc, delay)
                failed = True
                time.sleep(delay)
