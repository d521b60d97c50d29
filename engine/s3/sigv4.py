"""AWS Signature Version 4 for S3 requests, computed cheaply.

botocore signs each request by re-deriving the four-step HMAC key chain,
rebuilding the canonical request through several layers of objects, and
re-encoding headers it already knows.  This module signs the same bytes with
the key chain cached per (secret, day, region, service) and the canonical
request assembled from strings once; it is pure (no clock, no I/O), so
``tests/unit/test_sigv4.py`` can check it byte for byte against botocore's
``S3SigV4Auth`` on many requests (session tokens, awkward keys, version ids,
query strings, extra headers).

The rules, as S3 applies them (and botocore implements them):

* the canonical URI is the request path exactly as sent (S3 paths are not
  normalised), keys percent-encoded with ``/`` and ``~`` left as they are;
* the canonical query string sorts the already percent-encoded ``name=value``
  pairs;
* every header sent is signed except ``user-agent``, ``expect``,
  ``transfer-encoding`` and ``x-amzn-trace-id``; names lower-cased and sorted,
  values with runs of white space collapsed to one space;
* the payload hash is the body's SHA-256 (over plain HTTP always; bodies here
  are empty) or ``UNSIGNED-PAYLOAD``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
ALGORITHM = "AWS4-HMAC-SHA256"
# headers botocore never signs (a proxy or the HTTP layer may change them)
UNSIGNED_HEADERS = frozenset(
    {"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"}
)


def encode_path(key: str) -> str:
    """A key as it goes in a request path (botocore's greedy ``{Key+}``)."""
    return quote(key, safe="/~")


def copy_source(bucket: str, key: str, version_id: str | None = None) -> str:
    """The ``x-amz-copy-source`` header value botocore sends for a dict
    ``CopySource``: ``bucket/key`` percent-encoded, then ``?versionId=…``
    as given."""
    value = quote(f"{bucket}/{key}", safe="-._~/")
    if version_id is not None:
        value += f"?versionId={version_id}"
    return value


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """A query string, percent-encoded as botocore does, in canonical order
    (sorted by encoded name, then value): usable both in the URL and as the
    canonical query string."""
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a signature needs of the credentials."""

    access_key: str
    secret_key: str
    token: str | None = None


class Signer:
    """Signs S3 requests for one region; keeps the derived signing keys."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}

    def signing_key(self, secret_key: str, day: str) -> bytes:
        """``kSigning`` for ``day`` (``YYYYMMDD``): four HMACs, once a day."""
        found = self._keys.get((secret_key, day))
        if found is None:
            k = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
            k = hmac.digest(k, self.region.encode(), "sha256")
            k = hmac.digest(k, self.service.encode(), "sha256")
            found = hmac.digest(k, b"aws4_request", "sha256")
            if len(self._keys) >= 8:  # rotated credentials, day changes
                self._keys.clear()
            self._keys[(secret_key, day)] = found
        return found

    def authorization(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        payload_hash: str,
        credentials: Credentials,
        amz_date: str,
    ) -> str:
        """The ``Authorization`` header for a request.

        ``path`` and ``query`` are as sent (already encoded, see
        :func:`encode_path` and :func:`encode_query`); ``headers`` maps
        lower-case names to values and must hold every header sent, ``host``,
        ``x-amz-date`` (= ``amz_date``), ``x-amz-content-sha256`` (=
        ``payload_hash``) and, with a session token, ``x-amz-security-token``
        included.
        """
        names = sorted(n for n in headers if n not in UNSIGNED_HEADERS)
        signed = ";".join(names)
        canonical = "\n".join(
            (
                method,
                path,
                query,
                "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
                signed,
                payload_hash,
            )
        )
        day = amz_date[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{scope}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signature = hmac.new(
            self.signing_key(credentials.secret_key, day), to_sign.encode(), "sha256"
        ).hexdigest()
        return (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
