"""Byte sizes as people write them: ``5242880``, ``8MiB``, ``20GiB``, ``1GiB/s``."""

from __future__ import annotations

from engine.domain.units import parse_size as _parse_size


def parse_size(text: str) -> int:
    """A byte count (see :func:`engine.domain.units.parse_size`); a trailing ``/s`` is
    accepted so rates read naturally (``2GiB/s``)."""
    return _parse_size(text.strip().removesuffix("/s").removesuffix("/S"))


def format_size(n: float) -> str:
    """``21474836480`` as ``20GiB``; exact binary multiples stay exact."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= factor:
            value = n / factor
            return f"{value:g}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    if n >= 1024:
        return f"{n / 1024:.1f}KiB"
    return f"{int(n)}B"
