"""Fixtures of the store matrix: the CLI runner the acceptance tests use."""

from __future__ import annotations

from tests.acceptance.conftest import cli_for

__all__ = ["cli_for"]
