"""The ``bulkcopy`` command line: thin commands, errors mapped to exit codes."""

from __future__ import annotations

import gc
import sys

import click

from engine.cli import (  # noqa: F401 - registers the commands
    cleanup,
    control,
    report,
    retry,
    run,
    status,
    submit,
    verify,
    worker,
)
from engine.cli.app import cli
from engine.domain.errors import BulkcopyError

# Python's cyclic collector, tuned for a process that makes millions of
# short-lived objects (a task, its requests, its result) around a large heap
# that lives as long as the process (modules, the clients): 700 allocations
# a collection, the default, spent a fifth of a small copy's CPU on
# `bulkcopy copy --from` at 20,000 objects (bench/README.md)
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """What is loaded by now stays for good: out of the collector's sight
    (``gc.freeze``); and collections far less often (:data:`GC_THRESHOLDS`).
    Only the command line does this: a program importing bulkcopy keeps its
    own collector settings."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning our errors into one line and an exit
    code.  The process's own command line (``argv`` None) tunes the collector
    first; a caller passing ``argv`` (tests) keeps its own."""
    if argv is None:
        tune_gc()
    try:
        cli.main(args=argv, prog_name="bulkcopy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BulkcopyError as exc:
        click.echo(f"bulkcopy: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
