"""SSE-C keys: named by where they live, read only when needed, never stored.

A job records ``env:NAME`` or ``file:PATH``; the key itself is read at submit
(to check it) and when a run starts, and kept in memory only.  An environment
variable holds the key base64-encoded (as ``openssl rand -base64 32`` prints
it); a file holds the 32 raw bytes, or their base64 text.  Error messages name
the source, never the key.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from engine.domain.errors import UsageError

KEY_BYTES = 32  # SSE-C is AES-256


def _decode(text: bytes, where: str, option: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(
            f"{option}: {where} does not hold a base64-encoded key"
        ) from None
    if len(key) != KEY_BYTES:
        raise UsageError(
            f"{option}: the key in {where} is {len(key)} bytes; SSE-C needs "
            f"{KEY_BYTES} (AES-256)"
        )
    return key


def read_key(source: str, option: str = "--sse-c-key") -> bytes:
    """The 32-byte key ``source`` names (``env:NAME`` or ``file:PATH``)."""
    kind, sep, where = source.partition(":")
    if not sep or not where or kind not in ("env", "file"):
        raise UsageError(
            f"{option} must name where the key is: env:VARIABLE or file:PATH "
            "(the key itself is never passed on the command line)"
        )
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise UsageError(f"{option}: environment variable {where} is not set")
        return _decode(value.encode(), f"${where}", option)
    try:
        with open(where, "rb") as fh:
            raw = fh.read(4096)
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {where}: {exc.strerror}") from None
    if len(raw) == KEY_BYTES:
        return raw
    return _decode(raw, where, option)


@dataclass(frozen=True, slots=True, repr=False)
class Keys:
    """Resolved SSE-C keys for one run.  ``repr`` never shows them."""

    dst: bytes | None = None
    src: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Keys(dst={'<set>' if self.dst else None}, "
            f"src={'<set>' if self.src else None})"
        )


def load_keys(dst_source: str | None, src_source: str | None) -> Keys:
    return Keys(
        dst=read_key(dst_source, "--sse-c-key") if dst_source else None,
        src=read_key(src_source, "--source-sse-c-key") if src_source else None,
    )
