"""The lean path: CopyObject (and a source's HeadObject and DeleteObject, a
stream's reads and writes, a listing's ListObjectsV2 pages) as botocore would
send it, built, signed and parsed without botocore's per-request machinery.

botocore spends about 1 ms of CPU on each small CopyObject (endpoint rules
evaluated per call, the event system, the User-Agent rebuilt, the SigV4 key
chain re-derived, timestamps parsed with dateutil).  This path serializes the
common parameters straight to headers, signs them with
:mod:`engine.s3.sigv4`, sends them with :mod:`engine.s3.wire`, and answers
exactly what botocore answers: the same response dict, or the same
``ClientError`` (errors embedded in a ``200 OK`` included), which the one
classification path (:mod:`engine.s3.call`) turns into an ``S3Error``.

It takes only what it knows: :class:`~.request.LeanRequests` says no to any
parameter it does not serialize, to custom endpoints with a path, and to
buckets a virtual-host request cannot name; the probe (:func:`probe`) says no
to SigV2, proxies and anything else it cannot reproduce.  The caller then
uses botocore.  Answers it will not interpret (redirects, a wrong region,
clock skew) raise :class:`Fallback`, and the caller repeats the call through
botocore, which knows how to follow them.

    request.py   which calls it can make; the calls serialized and signed (pure)
    answer.py    the response parsed into botocore's answer, one builder (pure)
    copier.py    a call: request → wire → answer
    probe.py     learning from botocore, once, what it would send
    client.py    botocore's client with the lean path in front; SDK retries
"""

from __future__ import annotations

from engine.s3.lean.answer import Fallback, HeadParser
from engine.s3.lean.client import LeanClient
from engine.s3.lean.copier import LeanCopier
from engine.s3.lean.probe import probe

__all__ = ["Fallback", "HeadParser", "LeanClient", "LeanCopier", "probe"]
