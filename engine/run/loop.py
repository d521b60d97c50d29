"""The event loop every command runs on: uvloop where it is installed.

uvloop (libuv) spends about half of asyncio's CPU per socket event, which is
most of what a copy costs once requests are cheap to build (see issue 7's
profiles in bench/README.md).  ``BULKCOPY_UVLOOP=0`` keeps the standard loop
(to compare, or to rule uvloop out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_wanted() -> bool:
    """Whether to try uvloop (``BULKCOPY_UVLOOP`` unset or not ``0``)."""
    return os.environ.get("BULKCOPY_UVLOOP", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when available and wanted."""
    if uvloop_wanted():
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def loop_name() -> str:
    """The running loop's kind, for logs (``uvloop`` or ``asyncio``)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
