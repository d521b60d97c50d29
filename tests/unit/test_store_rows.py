"""Rows become records by column name (engine.store.rows), and the store's SQL
form of the default destination key is the domain's rule."""

from __future__ import annotations

from dataclasses import fields

import pytest
import sqlalchemy as sa

from engine.domain.codes import PENDING as DELETE_PENDING
from engine.domain.keys import default_destination
from engine.domain.models import CopyRecord, TaskResult, TaskStatus
from engine.domain.records import IngestTotals, ResultRow, WorkerRecord
from engine.store import Repository
from engine.store.recording import RESULT_COLUMNS
from engine.store.rows import (
    COPY_RECORD_COLUMNS,
    WORKER_COLUMNS,
    dst_key_sql,
    result_columns,
    result_row,
    task,
    task_columns,
    worker_record,
)
from engine.store.tables import tasks

# the columns of one plain task row
PLAIN = (
    "job_id",
    "line",
    "src_bucket",
    "src_key",
    "src_version",
    "dst_key",
    "key_hash",
)
PREFIX = "p%_/"  # LIKE's wildcards: a prefix is text, never a pattern


def one_task(repo: Repository, dst_key: str | None) -> str:
    """A submitted job of one task ``k%1`` storing ``dst_key``."""
    job = repo.start_ingest(
        manifest="m.csv",
        dst_bucket="dst",
        dst_prefix=PREFIX,
        spec={},
        source={},
        identity=None,
    )
    repo.add_tasks(
        job,
        [],
        {},
        plain=[(job, 1, "src", "k%1", "", dst_key, None)],
        plain_columns=(
            "job_id",
            "line",
            "src_bucket",
            "src_key",
            "src_version",
            "dst_key",
            "key_hash",
        ),
    )
    repo.finish_ingest(
        job,
        spec={},
        totals=IngestTotals(read=1),
        check_collisions=True,
        order_versions=True,
    )
    return job


@pytest.mark.parametrize("stored", [None, "elsewhere/x", ""])
def test_the_sql_destination_key_is_the_domain_rule(
    repo: Repository, stored: str | None
) -> None:
    """NULL reads as prefix + source key (default_destination), byte for
    byte; a stored key (even empty) as itself."""
    job = one_task(repo, stored)
    with repo.engine.connect() as conn:
        key = conn.execute(
            sa.select(dst_key_sql(PREFIX)).where(tasks.c.job_id == job)
        ).scalar_one()
    assert key == (default_destination(PREFIX, "k%1") if stored is None else stored)
    (claimed,) = repo.claim(job, "w1", 1, 2e9)
    (row,) = repo.iter_results(job)
    assert claimed.dst_key == row.dst_key == key


def test_rows_map_by_name_in_any_column_order(repo: Repository) -> None:
    """The mapping functions read columns by name: selecting them in reverse
    order gives the same records."""
    job = one_task(repo, None)
    repo.register_worker("w1", job, "h", 1)
    with repo.engine.connect() as conn:

        def both(columns: tuple[sa.ColumnElement[object], ...]) -> list[sa.Row[object]]:
            query = sa.select(*columns).where(tasks.c.job_id == job)
            return [
                conn.execute(query).one(),
                conn.execute(query.with_only_columns(*reversed(columns))).one(),
            ]

        tasks_ = [task(r, job) for r in both(task_columns(PREFIX))]
        results = [result_row(r, "dst") for r in both(result_columns(PREFIX))]
        workers = [
            worker_record(conn.execute(sa.select(*c)).one())
            for c in (WORKER_COLUMNS, tuple(reversed(WORKER_COLUMNS)))
        ]
    assert tasks_[0] == tasks_[1]
    assert tasks_[0].dst_key == PREFIX + "k%1"
    assert tasks_[0].copied is None
    assert results[0] == results[1]
    assert results[0].status is TaskStatus.PENDING
    assert workers[0] == workers[1]
    assert workers[0].id == "w1"


def test_a_moves_recorded_copy_reads_back_whole(repo: Repository) -> None:
    """Every CopyRecord field is written by ``copied`` and read back by a claim."""
    job = one_task(repo, None)
    repo.register_worker("w1", job, "h", 1)
    (t,) = repo.claim(job, "w1", 1, 2e9)
    record = CopyRecord(
        etag='"e"',
        bytes=3,
        src_etag='"s"',
        src_version_id="sv",
        dst_version_id="dv",
        http_status=200,
        method="copy",
        part_count=None,
        skip_code="DestinationExists",
        skip_message="there",
    )
    assert repo.copied("w1", [(t.id, record)]) == {t.id}
    repo.release("w1", [t.id])
    (again,) = repo.claim(job, "w1", 1, 2e9)
    assert again.copied == record
    (row,) = repo.iter_results(job)
    assert row.delete_state == DELETE_PENDING


def test_field_lists_are_derived_from_the_records() -> None:
    """The columns a result sets are TaskResult's fields, a move's copy
    CopyRecord's, a worker's WorkerRecord's, a result row ResultRow's: all
    columns of the tables."""
    assert set(RESULT_COLUMNS) == {f.name for f in fields(TaskResult)} - {
        "task_id",
        "attempts",
    }
    assert set(RESULT_COLUMNS) <= set(tasks.c.keys())
    assert set(COPY_RECORD_COLUMNS) == {f.name for f in fields(CopyRecord)}
    assert set(COPY_RECORD_COLUMNS.values()) <= set(tasks.c.keys())
    assert [c.name for c in WORKER_COLUMNS] == [f.name for f in fields(WorkerRecord)]
    selected = {c.name for c in result_columns("")}
    assert {f.name for f in fields(ResultRow)} - selected == {"src", "dst_bucket"}
