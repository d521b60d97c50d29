"""Pure planning decisions for a copy: where each object goes.

No I/O here; everything is a plain function of its arguments.
"""

from __future__ import annotations


def normalize_prefix(prefix: str) -> str:
    """A destination prefix as a "folder": non-empty prefixes end with ``/``.

    ``s3://dst/backup`` and ``s3://dst/backup/`` both put ``a.txt`` at
    ``backup/a.txt``, as ``aws s3 cp --recursive`` and s5cmd do.
    """
    if prefix and not prefix.endswith("/"):
        return prefix + "/"
    return prefix


def destination_key(prefix: str, source_key: str) -> str:
    """The destination key of ``source_key``: the normalized prefix, then the key.

    The key is kept byte for byte, leading slashes and spaces included.
    """
    return normalize_prefix(prefix) + source_key
