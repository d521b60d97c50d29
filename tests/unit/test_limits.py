"""The open-files limit and the run's ceiling (engine.run.limits)."""

from __future__ import annotations

import resource

import pytest

from engine.run import limits


def test_a_ceiling_under_the_limit_is_kept() -> None:
    """Few connections wanted: all of them, whatever the limit."""
    assert limits.connections_allowed(8) == 8


def test_the_soft_limit_is_raised_towards_the_hard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A soft limit of 1,024 and a hard one of 8,192: raised to fit 2,048."""
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 8192))
    monkeypatch.setattr(resource, "setrlimit", lambda _, v: asked.append(v))
    assert limits.connections_allowed(2048) == 2048
    assert asked == [(2048 + limits.RESERVE, 8192)]


def test_a_limit_that_cannot_be_raised_lowers_the_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Soft = hard = 1,024: the run keeps 1,024 - RESERVE connections at most
    (not "Too many open files" in the middle of a climb)."""

    def refuse(_: int, __: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert limits.connections_allowed(2048) == 1024 - limits.RESERVE
