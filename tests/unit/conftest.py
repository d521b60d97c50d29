"""Fixtures for the unit layer: a job database in tmp_path and manifest files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.store import Repository

WriteManifest = Callable[..., str]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """The path of a fresh SQLite job database inside tmp_path."""
    return str(tmp_path / "db.sqlite")


@pytest.fixture
def repo(db_path: str) -> Iterator[Repository]:
    """A migrated, empty job database."""
    repository = Repository(db_path)
    try:
        yield repository
    finally:
        repository.close()


@pytest.fixture
def write_manifest(tmp_path: Path) -> WriteManifest:
    """Write manifest bytes (or text, as UTF-8) to a file and return its path."""

    def write(content: bytes | str, name: str = "manifest.csv") -> str:
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write
