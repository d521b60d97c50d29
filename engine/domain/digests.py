"""Digests of a streamed body: its MD5 and the checksum it is sent with.  Pure.

A streamed copy (:mod:`engine.copy.stream`) sends every body with its MD5
(``Content-MD5``: the store refuses a body that arrived otherwise) and, when
the copy carries a checksum algorithm, that checksum computed here (so
botocore sends it as a header and computes nothing itself).  The same values
are then compared with what the source said of itself (its MD5 ETag, its
whole-object checksum) and what the destination answered.

Every algorithm S3 offers is computed here.  CRC32, SHA-1 and SHA-256 come
from the standard library; CRC32C and CRC64NVME from ``anycrc`` (botocore
would need the AWS CRT for them, which swaps its request signer for the
CRT's).  A CRC of a whole object is also made from its parts' CRCs
(:func:`combined`), in any order they were read: a multipart stream is
compared with its source's ``FULL_OBJECT`` checksum that way, across a
resume too.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import anycrc

# the checksum algorithms bulkcopy computes itself: all of S3's
COMPUTABLE = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
# the CRCs, by their width in bytes, and their anycrc models (CRC32 is
# zlib's; its model combines)
CRC_BYTES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}
_MODELS = {
    "CRC32": anycrc.Model("CRC32-ISO-HDLC"),
    "CRC32C": anycrc.Model("CRC32-ISCSI"),
    "CRC64NVME": anycrc.Model("CRC64-NVME"),
}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class Digests:
    """A body's MD5 (hex, as in an ETag; ``None`` when it was not made: a
    CRC stands in for it, :func:`engine.copy.stream.with_md5`) and its
    ``algorithm`` checksum (base64, as S3 writes it), when one was asked
    for."""

    md5_hex: str | None
    algorithm: str | None = None
    checksum: str | None = None

    @property
    def etag(self) -> str | None:
        """The ETag a store gives a body it keeps as sent (quoted MD5)."""
        return None if self.md5_hex is None else f'"{self.md5_hex}"'

    def send_args(self) -> dict[str, str]:
        """PutObject / UploadPart arguments: the MD5 (``Content-MD5``), and
        the checksum with its algorithm."""
        args = {}
        if self.md5_hex is not None:
            args["ContentMD5"] = b64(bytes.fromhex(self.md5_hex))
        if self.algorithm is not None and self.checksum is not None:
            args["ChecksumAlgorithm"] = self.algorithm
            args[f"Checksum{self.algorithm}"] = self.checksum
        return args


def sent_algorithm(asked: str | None, source: dict[str, object]) -> str | None:
    """The checksum algorithm a streamed copy is sent with: the one ``asked``
    for (``--checksum-algorithm``), else the ``source``'s own (its HEAD or GET
    answer) when bulkcopy computes it (:data:`COMPUTABLE`), else none."""
    if asked:
        return asked
    return next((alg for alg in COMPUTABLE if source.get(f"Checksum{alg}")), None)


def checksum(body: bytes | bytearray | memoryview, algorithm: str) -> str:
    """``body``'s checksum in ``algorithm`` (one of :data:`COMPUTABLE`), as
    S3 writes it (base64 of the big-endian value or digest)."""
    if algorithm == "CRC32":
        return b64(zlib.crc32(body).to_bytes(4, "big"))
    if algorithm in CRC_BYTES:
        return _crc_b64(algorithm, _MODELS[algorithm].calc(body))
    if algorithm == "SHA1":
        return b64(hashlib.sha1(body).digest())
    if algorithm == "SHA256":
        return b64(hashlib.sha256(body).digest())
    raise ValueError(f"{algorithm} is not computed here")


def _crc_b64(algorithm: str, value: int) -> str:
    return b64(value.to_bytes(CRC_BYTES[algorithm], "big"))


def combined(algorithm: str, parts: Sequence[tuple[str, int]]) -> str:
    """The ``algorithm`` CRC of a whole body made of ``parts`` — each its
    CRC (base64, as :func:`checksum` gives it) and its size, in the body's
    order — without reading the body again."""
    if algorithm not in CRC_BYTES:
        raise ValueError(f"{algorithm} checksums of parts do not combine")
    model = _MODELS[algorithm]
    crc = model.calc(b"")
    for value, size in parts:
        part = int.from_bytes(base64.b64decode(value), "big")
        crc = model.combine(crc, part, size)
    return _crc_b64(algorithm, crc)


def digest(
    body: bytes | bytearray | memoryview, algorithm: str | None, *, md5: bool = True
) -> Digests:
    """The MD5 of ``body`` (unless not ``md5``) and, for an ``algorithm``,
    its checksum."""
    made = hashlib.md5(body).hexdigest() if md5 else None
    if algorithm is None or algorithm not in COMPUTABLE:
        return Digests(made)
    return Digests(made, algorithm, checksum(body, algorithm))
