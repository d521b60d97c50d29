"""Abort stale multipart uploads under a destination prefix (``bulkcopy cleanup``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.s3.call import invoke


@dataclass(frozen=True, slots=True)
class StaleUpload:
    key: str
    upload_id: str
    initiated: datetime


def parse_age(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` as a duration (bare numbers: s)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    unit = t[-1] if t and t[-1] in units else "s"
    number = t[:-1] if t and t[-1] in units else t
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not an age like 90s, 30m, 24h or 7d") from None
    if value < 0:
        raise ValueError(f"age must not be negative: {text!r}")
    return timedelta(seconds=value * units[unit])


async def stale_uploads(
    client: Any, bucket: str, prefix: str, older_than: timedelta, now: datetime | None
) -> list[StaleUpload]:
    """Multipart uploads under ``prefix`` initiated more than ``older_than`` ago."""
    cutoff = (now or datetime.now(UTC)) - older_than
    found: list[StaleUpload] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        resp = await invoke(
            "ListMultipartUploads", client.list_multipart_uploads, **kwargs
        )
        for u in resp.get("Uploads", []):
            initiated = u["Initiated"]
            if initiated.tzinfo is None:
                initiated = initiated.replace(tzinfo=UTC)
            if initiated <= cutoff:
                found.append(StaleUpload(u["Key"], u["UploadId"], initiated))
        if not resp.get("IsTruncated"):
            return found
        kwargs["KeyMarker"] = resp.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker", "")


async def abort_upload(client: Any, bucket: str, upload: StaleUpload) -> None:
    await invoke(
        "AbortMultipartUpload",
        client.abort_multipart_upload,
        Bucket=bucket,
        Key=upload.key,
        UploadId=upload.upload_id,
    )
