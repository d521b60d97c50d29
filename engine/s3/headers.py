"""Extra request headers, added where botocore would sign them.

Two uses: ``--header NAME:VALUE`` (sent with every request, for S3-compatible
stores that want one), and IBM Cloud Object Storage's retention headers
(``Retention-Period`` …), which IBM's own SDK sends on CopyObject and
CompleteMultipartUpload but which plain botocore has no parameter for.

The handler runs on botocore's ``before-sign`` event, so the headers are in
the request when SigV4 signs it: they are signed like the rest.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

# calls of a copy that carry a body (the part list)
BODY_OPERATIONS = ("CompleteMultipartUpload",)


def _adder(headers: dict[str, str]) -> Any:
    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value

    return add


def install_headers(
    client: Any,
    every_request: dict[str, str],
    by_operation: dict[str, dict[str, str]] | None = None,
) -> None:
    """Register handlers on ``client`` adding the headers before signing."""
    events = client.meta.events
    if every_request:
        events.register("before-sign.s3", _adder(dict(every_request)))
    for operation, headers in (by_operation or {}).items():
        if headers:
            events.register(f"before-sign.s3.{operation}", _adder(dict(headers)))


def _content_md5(request: Any, **_: Any) -> None:
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode()


def install_content_md5(client: Any) -> None:
    """Send ``Content-MD5`` with every copy call that has a body.

    IBM COS buckets with Immutable Object Storage require it; botocore no
    longer computes it by default (it sends a CRC32 checksum instead).
    """
    for operation in BODY_OPERATIONS:
        client.meta.events.register(f"before-sign.s3.{operation}", _content_md5)
