"""How objects reach the destination: a server-side copy, or a stream.

A server-side copy (CopyObject, UploadPartCopy) asks the destination's
service to read the source itself: it works only when the source is on the
same service and the destination's identity may read it.  A stream reads the
source with its own client (GetObject) and writes what it read (PutObject, or
UploadPart) with the destination's: any two services, any two identities.

``--transfer auto`` streams when the source's client differs from the
destination's, in endpoint or in access key (a second identity may not be
allowed to read the first's buckets); this module decides, given what the
two clients resolved to (:func:`choose`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from engine.domain.errors import JobCannotStart

SERVER, STREAM = "server", "stream"
# the methods (``tasks.method``) whose copy was built from nothing, every
# property set by bulkcopy on its create: a multipart copy, a stream
CARRIES_CHECKSUM = frozenset({"multipart", STREAM})


@dataclass(frozen=True, slots=True)
class Side:
    """What one client resolved to: its endpoint and its access key (``None``
    when it has none to show: then it counts as another identity)."""

    endpoint: str
    access_key: str | None


def _endpoint(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def same_service(source: Side, destination: Side) -> bool:
    """Whether the destination's client can copy the source server-side: the
    same endpoint, reached with the same access key."""
    return (
        _endpoint(source.endpoint) == _endpoint(destination.endpoint)
        and source.access_key is not None
        and source.access_key == destination.access_key
    )


def choose(mode: str, source: Side | None, destination: Side) -> str:
    """:data:`SERVER` or :data:`STREAM` for ``--transfer mode``; ``source``
    is ``None`` when the job has no source client of its own (the
    destination's reads the sources).

    ``server`` with the source on the same endpoint but another access key is
    allowed: the destination's identity makes the copies (a cross-account
    policy may let it read the source).  Raises :class:`JobCannotStart` for
    ``server`` when the source is on another endpoint: no server-side copy
    can reach it."""
    if mode == STREAM:
        return STREAM
    if source is None or same_service(source, destination):
        return SERVER
    if mode == SERVER:
        if _endpoint(source.endpoint) != _endpoint(destination.endpoint):
            raise JobCannotStart(
                f"--transfer server: the sources are at {source.endpoint} and "
                f"the destination at {destination.endpoint}; a server-side "
                "copy cannot reach across services (use --transfer stream "
                "or auto)"
            )
        return SERVER
    return STREAM
