"""The same manifest makes the same job on SQLite and on PostgreSQL.

PostgreSQL takes task batches with COPY, SQLite with a multi-row INSERT;
whatever the path, every column of every task must come out the same.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.domain.models import Destination
from engine.domain.spec import JobSpec
from engine.manifest.sources import Source, detect_kind
from engine.store import Repository
from engine.usecases.submit import submit_source

REPO_ROOT = Path(__file__).resolve().parents[2]

CSV_PLAIN = "src,a.txt\nsrc,dir/b%20c.txt\nsrc,a.txt\nother,%E2%82%AC.bin\n"
CSV_VERSIONS = "src,a.txt,v1\nsrc,a.txt,v2\nsrc,b.txt,null\nsrc,a.txt,v1\n"
CSV_HEADER = (
    "bucket,key,version_id,dst_key,storage_class,metadata\n"
    'src,a.txt,,renamed/a.txt,STANDARD_IA,"{""owner"": ""team-a""}"\n'
    "src,b.txt,,,GLACIER_IR,\n"
    'src,c.txt,,,,"{""owner"": ""t\u00e9am-c""}"\n'
)
CSV_INVALID = "src,ok.txt\nsrc\n,,\nsrc,%ZZbad\nsrc,ok2.txt\n"


def _job_rows(repo: Repository, job_id: str) -> list[dict[str, Any]]:
    out = []
    for r in repo.iter_results(job_id):
        row = {
            name: getattr(r, name)
            for name in r.__dataclass_fields__
            if name not in ("id", "finished_at", "started_at")
        }
        out.append(row)
    return out


def _ingest(
    url: str, manifest: Path, **source: Any
) -> tuple[dict[str, Any], list[Any]]:
    repo = Repository(url)
    try:
        src = Source(detect_kind(str(manifest)), str(manifest), **source)
        job = asyncio.run(
            submit_source(repo, src, Destination("dst", "copy/"), JobSpec())
        )
        totals = {
            "status": job.status.value,
            "total": job.total_tasks,
            "invalid": job.invalid_rows,
            "duplicate": job.duplicate_rows,
            "filtered": job.filtered_rows,
        }
        return totals, _job_rows(repo, job.id)
    finally:
        repo.close()


@pytest.mark.parametrize(
    ("name", "content", "options"),
    [
        ("plain.csv", CSV_PLAIN, {}),
        ("versions.csv", CSV_VERSIONS, {}),
        ("header.csv", CSV_HEADER, {}),
        ("invalid.csv", CSV_INVALID, {"skip_invalid": True}),
    ],
)
def test_csv_manifests_make_the_same_job_on_both_backends(
    tmp_path: Path, pg_url: str, name: str, content: str, options: dict[str, Any]
) -> None:
    manifest = tmp_path / name
    manifest.write_text(content, encoding="utf-8")
    on_sqlite = _ingest(str(tmp_path / "jobs.sqlite"), manifest, **options)
    on_postgres = _ingest(pg_url, manifest, **options)
    assert on_postgres == on_sqlite
    assert on_sqlite[1], "the manifest made no tasks"


@pytest.mark.parametrize("fmt", ["inventory-csv", "inventory-parquet"])
@pytest.mark.parametrize("all_versions", [False, True])
def test_inventories_make_the_same_job_on_both_backends(
    tmp_path: Path, pg_url: str, fmt: str, all_versions: bool
) -> None:
    manifest = REPO_ROOT / "manifests" / fmt / "manifest.json"
    on_sqlite = _ingest(
        str(tmp_path / "jobs.sqlite"), manifest, all_versions=all_versions
    )
    on_postgres = _ingest(pg_url, manifest, all_versions=all_versions)
    assert on_postgres == on_sqlite
    assert len(on_sqlite[1]) > 1
