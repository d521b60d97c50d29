"""What the operating system lets a run hold open: each request in flight
has a connection of its own, and many systems start processes with a soft
limit of 1,024 open files.  The soft limit is raised towards the hard one
when the run's ceiling needs it; where it cannot be, the ceiling comes down
to what fits (a run that climbed into "Too many open files" would fail its
copies instead)."""

from __future__ import annotations

import resource

# files a run keeps besides its connections: the job database, logs, the
# interpreter's own, a manifest being read
RESERVE = 128


def allowed_or_warning(want: int, clients: int = 1) -> tuple[int, str | None]:
    """Requests in flight the open-files limit allows of ``want`` (each has
    a connection on each of ``clients``: a stream's source and destination),
    and a warning when that is fewer."""
    n = max(1, connections_allowed(want * clients) // clients)
    if n >= want:
        return want, None
    return n, (
        f"the open-files limit allows {n} connections: at most {n} requests "
        f"in flight, not {want} (raise it with `ulimit -n`)"
    )


def connections_allowed(want: int, reserve: int = RESERVE) -> int:
    """How many of ``want`` connections fit under the open-files limit,
    raising the soft limit (up to the hard one) first if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = want + reserve
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass  # not allowed: fit under the limit as it is
    if soft == resource.RLIM_INFINITY:
        return want
    return max(1, min(want, soft - reserve))
