"""Commands run on uvloop unless ``BULKCOPY_UVLOOP=0`` asks for asyncio's loop."""

from __future__ import annotations

import pytest

from engine.run import loop


async def _which() -> str:
    return loop.loop_name()


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BULKCOPY_UVLOOP", raising=False)
    assert loop.run(_which()) == "uvloop"


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BULKCOPY_UVLOOP", value)
    assert loop.run(_which()) == "asyncio"


def test_standard_loop_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delenv("BULKCOPY_UVLOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop fails
    assert loop.run(_which()) == "asyncio"
