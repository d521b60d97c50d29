"""A task's result from how it ended (engine.copy.result; pure)."""

from __future__ import annotations

from engine.copy.attempt import AlreadyThere
from engine.copy.result import LEASE_LOST, failed, finished, lost, record_of_skip
from engine.domain import codes
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import CopyRecord, ObjectRef, Task, TaskStatus

TASK = Task(id=7, job_id="j", src=ObjectRef("src", "k", "v1"), dst_key="d/k")
COPIED = CopyRecord(
    etag='"e"',
    bytes=3,
    src_etag='"e"',
    src_version_id="v1",
    dst_version_id="dv",
    http_status=200,
    method="copy",
)


def test_a_copy_succeeds_with_what_it_made() -> None:
    result = finished(TASK, 1.0, 2, COPIED)
    assert (result.status, result.attempts, result.etag) == (
        TaskStatus.SUCCEEDED,
        2,
        '"e"',
    )
    assert result.delete_state is None


def test_a_move_says_whether_it_deleted_the_source_or_found_it_gone() -> None:
    assert finished(TASK, 1.0, 1, COPIED, deleted=5.0).delete_state == codes.DELETED
    gone = finished(TASK, 1.0, 1, COPIED, deleted=5.0, gone=True)
    assert (gone.delete_state, gone.deleted_at) == (codes.GONE, 5.0)


def test_a_move_whose_destination_held_the_object_is_skipped() -> None:
    """--skip-existing on a move: skipped, with the reason, source deleted."""
    there = AlreadyThere(
        "same ETag", {"ETag": '"e"'}, {"ETag": '"e"', "ContentLength": 3}
    )
    result = finished(TASK, 1.0, 1, record_of_skip(TASK, there), deleted=5.0)
    assert result.status is TaskStatus.SKIPPED
    assert result.error_code == codes.DESTINATION_EXISTS
    assert result.error_message == "same ETag; the source is deleted"
    assert result.src_version_id == "v1"  # the task's, the HEAD had none


def test_a_failure_names_the_operation_and_skips_what_cannot_be_copied() -> None:
    err = S3Error("NoSuchKey", "gone", 404, Disposition.FATAL, "CopyObject")
    result = failed(TASK, 1.0, 1, err, None)
    assert (result.status, result.error_message, result.http_status) == (
        TaskStatus.FAILED,
        "CopyObject: gone",
        404,
    )
    archived = S3Error("ObjectArchived", "cold", None, Disposition.FATAL, "HeadObject")
    assert failed(TASK, 1.0, 1, archived, None).status is TaskStatus.SKIPPED


def test_a_move_failing_after_its_copy_keeps_the_copy_and_the_source() -> None:
    err = S3Error("AccessDenied", "no", 403, Disposition.FATAL, "DeleteObject")
    result = failed(TASK, 1.0, 3, err, COPIED)
    assert result.status is TaskStatus.FAILED
    assert result.delete_state == codes.KEPT
    assert result.etag == '"e"'
    assert (
        result.error_message == "DeleteObject: no (copied; the source was not deleted)"
    )


def test_a_task_taken_over_is_a_result_the_job_table_refuses() -> None:
    result = lost(TASK, 1.0, 2)
    assert (result.error_code, result.attempts) == (LEASE_LOST, 2)
