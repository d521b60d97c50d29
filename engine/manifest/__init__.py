"""Manifest readers: each streams :class:`~engine.models.ManifestEntry` values.

A reader never holds the whole manifest in memory; malformed rows come out as
entries with ``error`` set, and the caller decides whether that fails the
submit or becomes a failed task (``--skip-invalid``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from engine.errors import ManifestError
from engine.manifest.csv import read_csv_manifest
from engine.manifest.inventory import read_inventory
from engine.models import ManifestEntry

__all__ = ["open_manifest"]


def open_manifest(path: str) -> Iterator[ManifestEntry]:
    """Stream the entries of the manifest at ``path`` (a local file): an S3
    Batch Operations CSV, or an S3 Inventory report's ``manifest.json``."""
    if path.startswith("s3://"):
        raise ManifestError(
            path, None, "manifests in S3 are not supported yet; download it first"
        )
    if not os.path.exists(path):
        raise ManifestError(path, None, "no such file")
    if os.path.isdir(path):
        raise ManifestError(
            path,
            None,
            "is a directory, expected a CSV file or an inventory manifest.json",
        )
    if path.endswith(".json"):
        return read_inventory(path)
    return read_csv_manifest(path)
