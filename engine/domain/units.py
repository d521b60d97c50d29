"""Byte sizes as people write them: ``5242880``, ``5MiB``, ``128M``, ``5GB``."""

from __future__ import annotations

import math

UNITS = {
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

    Raises ``ValueError`` saying what is wrong.
    """
    t = str(text).strip().lower().replace(" ", "")
    digits = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(digits) :]
    try:
        number = float(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a size like 5MiB or 128M") from None
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{text!r} is not a size like 5MiB or 128M")
    return int(number * UNITS[unit])
