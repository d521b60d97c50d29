"""Fixtures of the store matrix: a CLI runner pointed at each store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import REPO_ROOT, Cli
from tests.servers import S3Server


@pytest.fixture
def cli_for(tmp_path: Path) -> Callable[[S3Server], Cli]:
    """A CLI runner in a fresh working directory, pointed at ``server`` by env."""

    def make(server: S3Server) -> Cli:
        env = dict(os.environ)
        env["AWS_ENDPOINT_URL_S3"] = server.endpoint
        env["PYTHONPATH"] = str(REPO_ROOT)
        env.pop("COLUMNS", None)
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        return Cli(work, env)

    return make
