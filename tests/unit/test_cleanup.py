"""Choosing which multipart uploads `bulkcopy cleanup` aborts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.usecases.cleanup import parse_age, stale_uploads

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class FakeClient:
    """Answers ListMultipartUploads from a list, two uploads per page."""

    def __init__(self, uploads: list[dict[str, Any]]) -> None:
        self.uploads = uploads
        self.calls: list[dict[str, Any]] = []

    async def list_multipart_uploads(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        start = int(kw.get("KeyMarker") or 0)
        page = [u for u in self.uploads if u["Key"].startswith(kw["Prefix"])][
            start : start + 2
        ]
        more = start + 2 < len(self.uploads)
        return {
            "Uploads": page,
            "IsTruncated": more,
            "NextKeyMarker": str(start + 2),
            "NextUploadIdMarker": "x",
        }


def _upload(key: str, hours_ago: float) -> dict[str, Any]:
    return {
        "Key": key,
        "UploadId": f"id-{key}",
        "Initiated": NOW - timedelta(hours=hours_ago),
    }


def test_only_uploads_older_than_the_cutoff_are_stale() -> None:
    """Uploads younger than --older-than are left alone, across pages."""
    client = FakeClient(
        [_upload("p/a", 30), _upload("p/b", 1), _upload("p/c", 25), _upload("p/d", 0.1)]
    )
    found = asyncio.run(stale_uploads(client, "b", "p/", timedelta(hours=24), NOW))
    assert [u.key for u in found] == ["p/a", "p/c"]
    assert len(client.calls) == 2
    assert client.calls[1]["KeyMarker"] == "2"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 604800),
        ("0s", 0),
        ("1.5h", 5400),
    ],
)
def test_ages_parse(text: str, seconds: float) -> None:
    """Ages are seconds, minutes, hours or days."""
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "", "-1h", "h"])
def test_bad_ages_are_refused(text: str) -> None:
    """An age that is not a duration is a ValueError with the text in it."""
    with pytest.raises(ValueError, match="age"):
        parse_age(text)
