"""The ``bulkcopy`` command line: thin commands, errors mapped to exit codes."""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning our errors into one line and an exit code."""
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
