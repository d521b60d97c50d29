"""Ordered claims: every key's versions are copied oldest first, one round per depth."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from engine.domain.codes import INVALID_ROW
from engine.domain.models import Destination, Task, TaskResult, TaskStatus
from engine.domain.records import INGEST_COLUMNS, IngestTotals
from engine.domain.spec import JobSpec
from engine.store import Repository
from engine.store.tables import tasks
from engine.usecases.earlier_job import job_source
from engine.usecases.submit import submit_source

LEASE = 2_000_000_000.0

# (dst_key, version, last_modified): a listing's order, newest version first
VERSIONS: list[tuple[str, str, float | None]] = [
    ("a", "a3", 300.0),
    ("a", "a2", 200.0),
    ("a", "a1", 100.0),
    ("b", "b3", 330.0),
    ("b", "b2", 220.0),
    ("b", "b1", 110.0),
    ("c", "c2", 250.0),
    ("c", "c1", 150.0),
    ("d", "d1", 50.0),
]


def task_row(**values: Any) -> tuple[Any, ...]:
    """One row for Repository.add_tasks, in INGEST_COLUMNS order."""
    row: dict[str, Any] = dict.fromkeys(INGEST_COLUMNS)
    row.update(src_bucket="src", src_version="", invalid_line=0, status="pending")
    row.update(values)
    return tuple(row[c] for c in INGEST_COLUMNS)


def make_job(
    repo: Repository,
    versions: list[tuple[str, str, float | None]],
    *,
    job_id: str = "20260101-000000-aaaaaa",
    order_versions: bool = True,
    invalid: int = 0,
) -> str:
    """A job holding one task per ``(dst_key, version, last_modified)``, in
    that insertion order, plus ``invalid`` malformed rows, finished as a
    submit does."""
    repo.start_ingest(
        manifest="m",
        dst_bucket="dst",
        dst_prefix="",
        spec={},
        source={"kind": "listing", "location": "s3://src", "all_versions": True},
        identity=None,
        job_id=job_id,
    )
    rows = [
        task_row(
            job_id=job_id,
            line=n,
            src_key=key,
            src_version=version,
            dst_key=key,
            last_modified=modified,
        )
        for n, (key, version, modified) in enumerate(versions, 1)
    ]
    for i in range(invalid):
        n = len(versions) + i + 1
        rows.append(
            task_row(
                job_id=job_id,
                line=n,
                src_key="a",
                invalid_line=n,
                dst_key="a",
                status="failed",
                error_code=INVALID_ROW,
                error_message="empty version id",
                finished_at=1.0,
                last_modified=999.0,
            )
        )
    repo.add_tasks(job_id, rows, {})
    return repo.finish_ingest(
        job_id,
        spec={},
        totals=IngestTotals(read=len(rows), invalid=invalid),
        check_collisions=False,
        order_versions=order_versions,
    ).id


def depths(repo: Repository, job_id: str) -> dict[str, int]:
    """Each task's depth by its source version id."""
    with repo.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tasks.c.src_version, tasks.c.depth, tasks.c.line).where(
                tasks.c.job_id == job_id
            )
        ).fetchall()
    return {v or f"line{n}": d for v, d, n in rows}


def versions_of(claimed: list[Task]) -> set[str]:
    return {t.src.version_id or "" for t in claimed}


def finish(
    repo: Repository, owner: str, claimed: list[Task], status: TaskStatus
) -> None:
    results = [
        TaskResult(t.id, status, attempts=1, started_at=1.0, finished_at=2.0)
        for t in claimed
    ]
    assert repo.record(owner, results) == len(claimed)


def claim(
    repo: Repository, job: str, owner: str = "w1", limit: int = 100
) -> list[Task]:
    return repo.claim(job, owner, limit, LEASE, ordered=True)


# -- numbering versions ------------------------------------------------------------


def test_depth_counts_newer_versions_of_the_same_destination_key(
    repo: Repository,
) -> None:
    """Newest version depth 0, the next older 1, …, per destination key."""
    job = make_job(repo, VERSIONS)
    assert depths(repo, job) == {
        "a3": 0,
        "a2": 1,
        "a1": 2,
        "b3": 0,
        "b2": 1,
        "b1": 2,
        "c2": 0,
        "c1": 1,
        "d1": 0,
    }


def test_depth_follows_last_modified_not_insertion_order(repo: Repository) -> None:
    """Versions listed in any order are numbered by LastModified, newest first."""
    job = make_job(repo, [("k", "mid", 20.0), ("k", "old", 10.0), ("k", "new", 30.0)])
    assert depths(repo, job) == {"new": 0, "mid": 1, "old": 2}


def test_equal_dates_keep_insertion_order_first_is_newest(repo: Repository) -> None:
    """Versions with one LastModified: the first inserted counts as the newest."""
    job = make_job(
        repo,
        [
            ("k", "first", 10.0),
            ("k", "second", 10.0),
            ("k", "third", 10.0),
            ("u", "u-first", None),
            ("u", "u-second", None),
        ],
    )
    assert depths(repo, job) == {
        "first": 0,
        "second": 1,
        "third": 2,
        "u-first": 0,
        "u-second": 1,
    }


def test_malformed_rows_are_not_versions(repo: Repository) -> None:
    """A failed invalid row on a key neither gets a depth nor shifts the others."""
    job = make_job(repo, [("a", "a2", 20.0), ("a", "a1", 10.0)], invalid=1)
    assert depths(repo, job) == {"a2": 0, "a1": 1, "line3": 0}


def test_versions_are_numbered_per_job(repo: Repository) -> None:
    """The same destination keys in another job do not deepen this job's tasks."""
    make_job(repo, VERSIONS, job_id="20260101-000000-000001")
    job = make_job(
        repo, [("a", "x2", 2.0), ("a", "x1", 1.0)], job_id="20260101-000000-000002"
    )
    assert depths(repo, job) == {"x2": 0, "x1": 1}


def test_without_order_versions_every_task_is_depth_zero(repo: Repository) -> None:
    """A job not copying versions in order has a single round."""
    job = make_job(repo, VERSIONS, order_versions=False)
    assert set(depths(repo, job).values()) == {0}
    assert len(claim(repo, job)) == len(VERSIONS)


# -- claiming round by round ---------------------------------------------------------


def test_claims_take_only_the_deepest_pending_round(repo: Repository) -> None:
    """The first claim takes the oldest versions only, even with room for more."""
    job = make_job(repo, VERSIONS)
    assert versions_of(claim(repo, job)) == {"a1", "b1"}


def test_nothing_shallower_is_claimed_while_a_deeper_task_runs(
    repo: Repository,
) -> None:
    """Until every task of a round has a result, no worker gets the next round."""
    job = make_job(repo, VERSIONS)
    first = claim(repo, job, "w1")
    assert versions_of(first) == {"a1", "b1"}
    assert claim(repo, job, "w1") == []
    assert claim(repo, job, "w2") == []
    assert repo.has_pending(job)

    finish(repo, "w1", first[:1], TaskStatus.SUCCEEDED)
    assert claim(repo, job, "w2") == []  # the other depth-2 task still runs
    assert repo.has_pending(job)

    finish(repo, "w1", first[1:], TaskStatus.FAILED)  # a failure ends it too
    assert versions_of(claim(repo, job, "w2")) == {"a2", "b2", "c1"}


def test_rounds_run_oldest_to_newest_until_none_is_pending(repo: Repository) -> None:
    """Claim, record, claim: depth 2, then 1, then 0; then nothing is pending."""
    job = make_job(repo, VERSIONS)
    rounds = []
    while True:
        claimed = claim(repo, job)
        if not claimed:
            break
        rounds.append(versions_of(claimed))
        finish(repo, "w1", claimed, TaskStatus.SUCCEEDED)
    assert rounds == [
        {"a1", "b1"},
        {"a2", "b2", "c1"},
        {"a3", "b3", "c2", "d1"},
    ]
    assert not repo.has_pending(job)
    assert repo.counts(job).get(TaskStatus.SUCCEEDED) == len(VERSIONS)


def test_one_round_may_be_claimed_in_several_claims(repo: Repository) -> None:
    """Claims of the current round go on while tasks of that round run."""
    job = make_job(repo, VERSIONS)
    finish(repo, "w1", claim(repo, job), TaskStatus.SUCCEEDED)
    one = claim(repo, job, "w1", limit=1)
    two = claim(repo, job, "w2", limit=1)
    rest = claim(repo, job, "w3")
    assert [len(one), len(two), len(rest)] == [1, 1, 1]
    assert versions_of(one + two + rest) == {"a2", "b2", "c1"}
    assert claim(repo, job, "w4") == []


def test_has_pending_is_false_once_the_last_round_is_claimed(
    repo: Repository,
) -> None:
    """has_pending looks at pending tasks only: running ones do not keep it true."""
    job = make_job(repo, [("k", "v2", 2.0), ("k", "v1", 1.0)])
    first = claim(repo, job)
    assert repo.has_pending(job)
    finish(repo, "w1", first, TaskStatus.SUCCEEDED)
    last = claim(repo, job)
    assert versions_of(last) == {"v2"}
    assert not repo.has_pending(job)
    finish(repo, "w1", last, TaskStatus.SUCCEEDED)
    assert not repo.has_pending(job)
    assert claim(repo, job) == []


def test_a_released_deeper_task_is_claimed_before_shallower_ones(
    repo: Repository,
) -> None:
    """A task given back (a stopped worker) is claimed again before the next round."""
    job = make_job(repo, VERSIONS)
    first = claim(repo, job, "w1")
    old_a = next(t for t in first if t.src.version_id == "a1")
    repo.release("w1", [old_a.id])
    again = claim(repo, job, "w2")
    assert versions_of(again) == {"a1"}
    finish(repo, "w1", [t for t in first if t.id != old_a.id], TaskStatus.SUCCEEDED)
    assert claim(repo, job, "w3") == []
    finish(repo, "w2", again, TaskStatus.SUCCEEDED)
    assert versions_of(claim(repo, job, "w3")) == {"a2", "b2", "c1"}


def test_an_orphaned_deeper_task_is_claimed_again_first(repo: Repository) -> None:
    """A deeper task whose worker died goes back to pending and is the next claim."""
    job = make_job(repo, VERSIONS)
    claimed = claim(repo, job, "dead")
    assert repo.release_orphans(job, now=1.0, dead=["dead"]) == len(claimed)
    assert versions_of(claim(repo, job, "w1")) == {"a1", "b1"}


def test_ordered_claims_are_in_insertion_order(repo: Repository) -> None:
    """Within a round, tasks come out in task id (manifest) order."""
    job = make_job(repo, VERSIONS)
    finish(repo, "w1", claim(repo, job), TaskStatus.SUCCEEDED)
    assert [t.src.version_id for t in claim(repo, job)] == ["a2", "b2", "c1"]


# -- retrying an all-versions job ---------------------------------------------------


def test_retry_of_failed_versions_keeps_them_oldest_first(repo: Repository) -> None:
    """The failed versions of an all-versions job, retried, are numbered again
    by LastModified and claimed oldest first (not in the listing's newest-first
    order)."""
    old = make_job(repo, VERSIONS, job_id="20260101-000000-000001")
    rounds = 0
    while claimed := claim(repo, old):
        finish(repo, "w1", claimed, TaskStatus.FAILED)
        rounds += 1
    assert rounds == 3
    source = job_source(repo.get_job(old), (TaskStatus.FAILED,))
    retry = asyncio.run(submit_source(repo, source, Destination("dst"), JobSpec()))
    assert depths(repo, retry.id) == depths(repo, old)
    assert versions_of(claim(repo, retry.id)) == {"a1", "b1"}
