"""Byte sizes as people write them: ``5242880``, ``8MiB``, ``20GiB``, ``1GiB/s``."""

from __future__ import annotations

import math

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """A byte count; K/M/G/T and KiB/MiB/GiB/TiB are binary, KB/MB/GB/TB decimal.

    A trailing ``/s`` is accepted so rates read naturally (``2GiB/s``).
    """
    t = text.strip().lower().replace(" ", "").removesuffix("/s")
    digits = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(digits) :]
    try:
        number = float(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a size like 8MiB or 20GiB") from None
    if unit not in _UNITS or not math.isfinite(number) or number < 0:
        raise ValueError(f"{text!r} is not a size like 8MiB or 20GiB")
    return int(number * _UNITS[unit])


def format_size(n: float) -> str:
    """``21474836480`` as ``20GiB``; exact binary multiples stay exact."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= factor:
            value = n / factor
            return f"{value:g}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    if n >= 1024:
        return f"{n / 1024:.1f}KiB"
    return f"{int(n)}B"
