"""Shared fixtures: a clean AWS environment, and real S3 server processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, find_or_start
from tests.servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    start_moto,
    start_rclone,
)

# -- running in parallel (pytest-xdist; pyproject.toml's addopts) -------------

# most tests wait on processes (S3 servers, `bulkcopy` runs, workers): two
# xdist workers per CPU core keep the cores busy; at most this many workers,
# as each starts its own servers (Ceph RGW and LocalStack: ~250 MB each)
MAX_AUTO_WORKERS = 8

# the slowest tests (10-40 s each when run alone), started first when run in
# parallel, so that none is left running alone at the end of the run
SLOW_FIRST = (
    "tests/acceptance/test_chaos_cli.py",
    "tests/acceptance/test_chaos_faults_cli.py",
    "tests/stores/test_provider_table.py",
    "tests/bench/test_claims_smoke.py",
    "tests/integration/test_many_workers.py",
    "tests/acceptance/test_cli.py",
    "tests/acceptance/test_postgres_cli.py",
    "tests/bench/test_small_smoke.py",
    "tests/bench/test_ingest_smoke.py",
    "tests/acceptance/test_listing_resume_cli.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: two workers per CPU core, at most MAX_AUTO_WORKERS
    (``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets the number instead)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return max(2, min(2 * (cores or os.cpu_count() or 1), MAX_AUTO_WORKERS))


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """In an xdist worker, the SLOW_FIRST modules first (``--dist loadgroup``
    hands out each ``xdist_group`` whole, the largest first, then the other
    tests one at a time, in this order); a serial run keeps the files' order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: each module's tests keep their order


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's AWS settings, profiles or job database."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("BULKCOPY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto_server process on a free port, for the whole session."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An `rclone serve s3` process (a real Go S3 server) on a free port."""
    server = start_rclone(tmp_path_factory.mktemp("rclone"))
    yield server
    server.stop()


def _store_missing(why: str) -> None:
    """A store server that cannot be started here: skipped with how to get
    it on a developer's machine; in CI (``CI=true``) every store must run."""
    import os

    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (in CI every store of the matrix runs)", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A Ceph RADOS Gateway on a throwaway one-OSD cluster, for the session."""
    from tests.stores.rgw import rgw_available, start_rgw

    why = rgw_available()
    if why is not None:
        _store_missing(why)
    server = start_rgw(tmp_path_factory.mktemp("rgw"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """LocalStack's S3 in host mode, for the session."""
    from tests.stores.localstack import localstack_available, start_localstack

    why = localstack_available()
    if why is not None:
        _store_missing(why)
    server = start_localstack(tmp_path_factory.mktemp("localstack"))
    yield server
    server.stop()


# every real S3 server the store matrix runs against (tests/stores)
STORES = ["moto", "rclone", "rgw", "localstack"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> S3Server:
    """Each server of the store matrix in turn."""
    server: S3Server = request.getfixturevalue(request.param)
    return server


@pytest.fixture(params=["moto", "rclone"])
def s3(request: pytest.FixtureRequest) -> S3Server:
    """Each real S3 server in turn."""
    server: S3Server = request.getfixturevalue(request.param)
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL: this machine's (127.0.0.1:5432, database ``test``),
    ``BULKCOPY_TEST_PG``, or a throwaway cluster started for the session.
    Never skipped: a machine without PostgreSQL fails these tests."""
    server = find_or_start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database (dropped after)."""
    with postgres.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each job-database backend in turn: an SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.sqlite")
    url: str = request.getfixturevalue("pg_url")
    return url
