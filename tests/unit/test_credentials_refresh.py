"""Refreshing botocore's credentials on an ExpiredToken answer.

botocore offers no public way to force a refresh; bulkcopy calls
``_protected_refresh(is_mandatory=True)``.  These tests fail loudly when an
aiobotocore upgrade changes that."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from typing import Any

from aiobotocore.credentials import AioCredentials, AioRefreshableCredentials

from engine.run.jobclient import credentials_refresher


def test_the_private_refresh_is_still_there() -> None:
    method = AioRefreshableCredentials._protected_refresh
    assert inspect.iscoroutinefunction(method)
    assert "is_mandatory" in inspect.signature(method).parameters


def _metadata(token: str) -> dict[str, Any]:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # not due
    return {
        "access_key": "AKID",
        "secret_key": "SECRET",
        "token": token,
        "expiry_time": expiry.isoformat(),
    }


def test_refreshable_credentials_are_refreshed_even_before_they_are_due() -> None:
    asked: list[int] = []

    async def provider() -> dict[str, Any]:
        asked.append(1)
        return _metadata(f"token-{len(asked)}")

    async def main() -> tuple[bool, str | None]:
        creds = AioRefreshableCredentials.create_from_metadata(
            _metadata("token-0"), refresh_using=provider, method="test"
        )
        refreshed = await credentials_refresher(creds)()
        frozen = await creds.get_frozen_credentials()
        return refreshed, frozen.token

    assert asyncio.run(main()) == (True, "token-1")
    assert asked == [1]


def test_static_credentials_cannot_be_refreshed() -> None:
    creds = AioCredentials("AKID", "SECRET", "token")
    assert asyncio.run(credentials_refresher(creds)()) is False
