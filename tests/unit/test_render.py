"""engine.cli.render: what the log says of the engine's warnings."""

from __future__ import annotations

from structlog.testing import capture_logs

from engine.cli.render import Renderer
from engine.domain.models import JobCounts, ObjectRef, Task, TaskResult, TaskStatus
from engine.run import events

TASK = Task(1, "job-1", ObjectRef("src", "k"), "k")
RESULT = TaskResult(1, TaskStatus.SUCCEEDED, 1, 0.0, 0.0)


def test_uploads_left_open_are_a_warning_with_the_cleanup_command() -> None:
    """Uploads whose abort failed are a warning naming the command that
    removes them, never silent."""
    command = "bulkcopy cleanup s3://dst/p/ --older-than 0s"
    with capture_logs() as logs, Renderer(progress=False) as render:
        render(events.UploadsLeft("job-1", 2, command))
    [entry] = logs
    assert entry["event"] == "uploads_left_open"
    assert entry["log_level"] == "warning"
    assert entry["uploads"] == 2
    assert command in entry["detail"]


def test_a_listing_copied_as_it_is_read_grows_the_progress_total() -> None:
    """The progress lines' total follows the listing (not the first page's
    tasks the run started with); its end is logged with the job's total."""
    with capture_logs() as logs, Renderer(progress=False, every=0.0) as render:
        render(
            events.RunStarted("job-1", "w", JobCounts(by_status={"pending": 1000}), 0)
        )
        render(events.TasksListed("job-1", 2000, False))
        render(events.TasksListed("job-1", 2100, True))
        render(events.TaskFinished(TASK, RESULT))
    progress = [e for e in logs if e["event"] == "progress"]
    assert progress[-1]["total"] == 2100
    (done,) = [e for e in logs if e["event"] == "listing_done"]
    assert done["tasks"] == 2100
