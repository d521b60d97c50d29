"""Object checksums as S3 keeps them since 2025 (``--checksums``).

AWS gives every object a checksum: the one its upload was sent with, else a
``FULL_OBJECT`` CRC64NVME it computes itself, and answers a HEAD or a whole
GET with it when asked (``x-amz-checksum-mode: ENABLED``).  Here a seeded
object's checksum is the CRC64NVME of the zeros GetObject serves; a body's
is the one the client sent, answered back as S3 answers it (the fake keeps
no bodies, so it does not compute one: the benchmark measures the client);
a completed upload's is made from its parts' (a ``FULL_OBJECT`` CRC
combined, else the ``COMPOSITE`` checksum of the parts' checksums, ``-N``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import zlib
from collections.abc import Sequence

import anycrc

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
CRC_MODELS = {
    "crc32": anycrc.Model("CRC32-ISO-HDLC"),
    "crc32c": anycrc.Model("CRC32-ISCSI"),
    "crc64nvme": anycrc.Model("CRC64-NVME"),
}
CRC_BYTES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8}
BLOCK = 8 * 1024**2

# (algorithm, base64 value, type): what HEAD/GET answer with
Checksum = tuple[str, str, str]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@functools.lru_cache(maxsize=64)
def zeros_checksum(size: int) -> Checksum:
    """The FULL_OBJECT CRC64NVME of ``size`` zero bytes (blocks combined)."""
    model = CRC_MODELS["crc64nvme"]
    crc = model.calc(b"")
    block_crc = model.calc(bytes(min(size, BLOCK)))
    left = size
    while left:
        n = min(left, BLOCK)
        part = block_crc if n == BLOCK else model.calc(bytes(n))
        crc = model.combine(crc, part, n)
        left -= n
    return "crc64nvme", _b64(crc.to_bytes(8, "big")), "FULL_OBJECT"


def sent(headers: dict[str, str]) -> tuple[str, str] | None:
    """The checksum a PutObject or UploadPart was sent with, if any."""
    for alg in ALGORITHMS:
        value = headers.get(f"x-amz-checksum-{alg}")
        if value:
            return alg, value
    return None


def answer(checksum: tuple[str, str] | Checksum | None) -> list[tuple[str, str]]:
    """The headers an answer carries for ``checksum``."""
    if checksum is None:
        return []
    headers = [(f"x-amz-checksum-{checksum[0]}", checksum[1])]
    if len(checksum) == 3:
        headers.append(("x-amz-checksum-type", checksum[2]))
    return headers


def upload_type(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """A CreateMultipartUpload's algorithm and checksum type (CRC64NVME is
    FULL_OBJECT only; the others COMPOSITE unless asked)."""
    alg = (headers.get("x-amz-checksum-algorithm") or "").lower() or None
    if alg is None:
        return None, None
    kind = headers.get("x-amz-checksum-type", "").upper()
    return alg, kind or ("FULL_OBJECT" if alg == "crc64nvme" else "COMPOSITE")


def completed(
    alg: str | None, kind: str | None, parts: Sequence[tuple[str | None, int]]
) -> Checksum | None:
    """A completed upload's checksum, from its parts' (value, size)."""
    if alg is None or kind is None or any(v is None for v, _ in parts):
        return None
    raws = [base64.b64decode(v or "") for v, _ in parts]
    if kind == "FULL_OBJECT" and alg in CRC_MODELS:
        model = CRC_MODELS[alg]
        crc = model.calc(b"")
        for raw, (_, size) in zip(raws, parts, strict=True):
            crc = model.combine(crc, int.from_bytes(raw, "big"), size)
        return alg, _b64(crc.to_bytes(CRC_BYTES[alg], "big")), kind
    joined = b"".join(raws)
    if alg == "crc32":
        digest = zlib.crc32(joined).to_bytes(4, "big")
    elif alg in CRC_MODELS:
        digest = CRC_MODELS[alg].calc(joined).to_bytes(CRC_BYTES[alg], "big")
    else:
        digest = hashlib.new(alg, joined).digest()
    return alg, f"{_b64(digest)}-{len(parts)}", "COMPOSITE"
