"""The SIZE option type: byte counts as users type them on the command line."""

from __future__ import annotations

import click
import pytest

from engine.cli.app import SIZE

MiB = 1024**2
GiB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5242880", 5 * MiB),
        ("5MiB", 5 * MiB),
        ("5M", 5 * MiB),
        ("5m", 5 * MiB),
        ("5mib", 5 * MiB),
        ("128MiB", 128 * MiB),
        ("1.5GiB", 3 * GiB // 2),
        ("5G", 5 * GiB),
        ("5GB", 5_000_000_000),
        ("5MB", 5_000_000),
        ("1KiB", 1024),
        ("1K", 1024),
        ("1KB", 1000),
        ("1TiB", 1024**4),
        ("1TB", 1000**4),
        ("100B", 100),
        ("5 MiB", 5 * MiB),
        (" 5MiB ", 5 * MiB),
    ],
)
def test_sizes_convert_to_bytes(text: str, expected: int) -> None:
    """Plain bytes, binary K/M/G/T (with or without iB) and decimal KB/MB/GB parse."""
    value = SIZE.convert(text, None, None)
    assert value == expected
    assert type(value) is int


def test_an_int_passes_through() -> None:
    """An int default is returned as it is."""
    assert SIZE.convert(5 * MiB, None, None) == 5 * MiB


@pytest.mark.parametrize(
    "text",
    ["", "MiB", "abc", "5XB", "5 MiBs", "5.5.5M", "five", "5M5", "nan", "1e999"],
)
def test_bad_sizes_are_a_usage_error(text: str) -> None:
    """Text that is not a size raises click.BadParameter, not another exception."""
    with pytest.raises(click.BadParameter):
        SIZE.convert(text, None, None)
