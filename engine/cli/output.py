"""Logging set-up: human lines on a terminal, JSON lines (structlog) elsewhere."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is *now*.

    rich's live display swaps ``sys.stderr`` for a proxy while it runs; looking
    it up at each call keeps log lines above the progress bar.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = msg


def _factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def use_json(log_format: str) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    return not sys.stderr.isatty()


def configure_logging(
    log_format: str = "auto", verbose: int = 0, quiet: bool = False
) -> None:
    """Configure structlog for the CLI.

    ``log_format``: ``json``, ``text`` or ``auto`` (JSON when stderr is not a
    terminal).  ``verbose`` 1 shows debug events (retries); ``quiet`` only
    warnings and errors.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    renderer: Any
    if use_json(log_format):
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_factory,
        cache_logger_on_first_use=False,
    )
