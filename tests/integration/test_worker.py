"""The worker pool's guarantees: group commits, a hard stop, one run per job."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from engine.domain.models import JobStatus, TaskResult, TaskStatus
from engine.run.events import Event, TaskFinished
from engine.run.worker import Worker
from engine.store import Repository, tables
from tests.helpers import run_job, seed, submit_job, write_manifest
from tests.servers import S3Server

pytestmark = pytest.mark.integration


class CountingRepository(Repository):
    """A repository that counts the commits of results."""

    record_calls: list[int]

    def record(self, owner: str, results: list[TaskResult]) -> int:
        self.record_calls.append(len(results))
        return super().record(owner, results)


def test_results_are_group_committed(moto: S3Server, tmp_path: Path) -> None:
    """Results reach the database in batches, not one commit per object."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"k{i}" for i in range(120)]
    seed(moto, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = CountingRepository(str(tmp_path / "db.sqlite"))
    repo.record_calls = []
    job = submit_job(repo, manifest, moto, f"s3://{dst}")

    # a flush every half second: a slow (loaded) server spreads the copies'
    # ends, and the commits must still gather many of them
    counts = run_job(repo, job, moto, concurrency=16, flush_interval=0.5)

    assert counts.get(TaskStatus.SUCCEEDED) == 120
    assert sum(repo.record_calls) == 120
    assert len(repo.record_calls) < 120 / 4, repo.record_calls


def test_second_stop_cancels_in_flight_copies(moto: S3Server, tmp_path: Path) -> None:
    """A second stop request does not wait for slow requests; their tasks stay to do."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    keys = [f"slow{i}" for i in range(6)]
    seed(moto, src, keys)
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in keys])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    holder: dict[str, Worker] = {}
    started = asyncio.Event()

    async def hang(**_: Any) -> None:
        started.set()
        await asyncio.sleep(60)

    def install(client: Any) -> None:
        client.meta.events.register("before-send.s3.CopyObject", hang)

        async def stop_twice() -> None:
            await started.wait()
            holder["w"].request_stop()
            await asyncio.sleep(0.2)
            holder["w"].request_stop()

        holder["stopper"] = asyncio.get_running_loop().create_task(stop_twice())  # type: ignore[assignment]

    t0 = time.monotonic()
    counts = run_job(
        repo,
        job,
        moto,
        concurrency=3,
        on_client=install,
        worker_hook=lambda w: holder.update(w=w),
    )

    assert time.monotonic() - t0 < 30
    assert counts.get(TaskStatus.PENDING) == 6
    assert counts.get(TaskStatus.RUNNING) == 0
    assert repo.get_job(job.id).status is JobStatus.STOPPED


def test_a_run_joins_a_job_another_live_worker_holds(
    moto: S3Server, tmp_path: Path
) -> None:
    """A second run shares the job: it copies what is pending and leaves the
    tasks a live worker elsewhere holds under a valid lease alone."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b", "c"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "abc"])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    repo.register_worker("elsewhere", job.id, "another-host", 4242)
    (held,) = repo.claim(job.id, "elsewhere", 1, time.time() + 3600)

    counts = run_job(repo, job, moto, wait_for_others=False)

    assert counts.get(TaskStatus.SUCCEEDED) == 2
    assert counts.get(TaskStatus.RUNNING) == 1
    assert repo.get_job(job.id).status is JobStatus.RUNNING
    # the other worker's result is still accepted: it kept its claim
    assert (
        repo.record(
            "elsewhere", [TaskResult(held.id, TaskStatus.SUCCEEDED, 1, 1.0, 2.0)]
        )
        == 1
    )
    assert repo.counts(job.id).get(TaskStatus.SUCCEEDED) == 3


def test_a_run_waits_for_another_workers_tasks_and_takes_them_when_its_lease_expires(
    moto: S3Server, tmp_path: Path
) -> None:
    """With nothing left to claim, a run waits while another worker holds tasks;
    once that lease has expired (backdated here) it takes the task back and
    copies it; the other worker's late result is then refused."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "ab"])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    repo.register_worker("lost-host", job.id, "another-host", 4242)
    (held,) = repo.claim(job.id, "lost-host", 1, time.time() + 3600)
    waited: list[float] = []

    def expire_when_waiting(worker: Worker) -> None:
        async def backdate() -> None:
            while repo.counts(job.id).get(TaskStatus.SUCCEEDED) < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            waited.append(time.monotonic())
            with repo.engine.begin() as conn:
                conn.execute(
                    tables.tasks.update()
                    .where(tables.tasks.c.id == held.id)
                    .values(lease_until=time.time() - 1)
                )

        worker.on_client = lambda _client: holder.append(
            asyncio.get_running_loop().create_task(backdate())
        )

    holder: list[Any] = []
    counts = run_job(repo, job, moto, worker_hook=expire_when_waiting, idle_poll=0.05)

    assert waited
    assert counts.get(TaskStatus.SUCCEEDED) == 2
    assert repo.get_job(job.id).status is JobStatus.COMPLETE
    late = TaskResult(held.id, TaskStatus.FAILED, 1, 1.0, 2.0, error_code="X")
    assert repo.record("lost-host", [late]) == 0
    row = {r.id: r for r in repo.iter_results(job.id)}[held.id]
    assert (row.status, row.attempts) == (TaskStatus.SUCCEEDED, 2)


def test_a_dead_runs_claims_are_taken_back(moto: S3Server, tmp_path: Path) -> None:
    """Tasks claimed by a worker whose process is gone are copied by the next run."""
    src, dst = moto.new_bucket(), moto.new_bucket()
    seed(moto, src, ["a", "b", "c"])
    manifest = write_manifest(tmp_path / "m.csv", [(src, k, None) for k in "abc"])
    repo = Repository(str(tmp_path / "db.sqlite"))
    job = submit_job(repo, manifest, moto, f"s3://{dst}")
    dead_pid = 2**22 + 12345  # above pid_max: no such process
    repo.register_worker("crashed", job.id, socket.gethostname(), dead_pid)
    claimed = repo.claim(job.id, "crashed", 2, time.time() + 3600)
    assert len(claimed) == 2
    seen: list[Event] = []

    counts = run_job(repo, job, moto, observer=seen.append)

    assert counts.get(TaskStatus.SUCCEEDED) == 3
    assert len([e for e in seen if isinstance(e, TaskFinished)]) == 3
