"""A job spec checks itself: a job built through the Python API is refused
for what the CLI would refuse, before anything is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.domain.errors import UsageError
from engine.domain.keys import KeyMapping
from engine.domain.models import Destination
from engine.domain.spec import CopyOptions, JobSpec
from engine.store import Repository
from engine.usecases.submit import submit
from tests.helpers import write_manifest


@pytest.mark.parametrize(
    ("copy", "words"),
    [
        (CopyOptions(multipart_threshold=1024), "--multipart-threshold"),
        (CopyOptions(part_size=6 * 1024**3), "--part-size"),
        (CopyOptions(skip_existing="sometimes"), "skip_existing"),
        (CopyOptions(delete_source=True, skip_existing="newer"), "cannot vouch"),
    ],
)
def test_copy_options_no_copy_can_be_made_with_are_refused(
    copy: CopyOptions, words: str
) -> None:
    """Part sizes out of S3's range, unknown skip policies and a move that a
    size could vouch for are refused by the spec itself."""
    with pytest.raises(UsageError, match=words):
        JobSpec(copy=copy).validate()


def test_a_bad_key_template_or_header_is_refused() -> None:
    """The key template and the extra headers are checked with the rest."""
    with pytest.raises(UsageError):
        JobSpec(keys=KeyMapping(template="{nope}")).validate()
    with pytest.raises(UsageError):
        JobSpec(headers={"Authorization": "x"}).validate()


def test_the_api_refuses_a_spec_the_cli_would(tmp_path: Path, repo: Repository) -> None:
    """submit() through the Python API refuses a bad spec before writing a job
    (it used to fail every task as UnexpectedError)."""
    manifest = write_manifest(tmp_path / "m.csv", [("b", "k", None)])
    bad = replace(JobSpec(), copy=CopyOptions(part_size=1))
    with pytest.raises(UsageError, match="--part-size"):
        submit(repo, str(manifest), Destination.parse("s3://dst"), bad)
    assert repo.list_jobs() == []
