"""engine.cli.render: what the log says of the engine's warnings."""

from __future__ import annotations

from structlog.testing import capture_logs

from engine.cli.render import Renderer
from engine.run import events


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
