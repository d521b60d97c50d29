"""File checksums: MD5 (as S3 manifests list them) and SHA-256 (a local
manifest's identity), read a megabyte at a time."""

from __future__ import annotations

import hashlib
from pathlib import Path


def md5_file(path: str | Path) -> str:
    """The hex MD5 of a file."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def sha256_file(path: str | Path) -> str:
    """``sha256:<hex>`` of a file."""
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
