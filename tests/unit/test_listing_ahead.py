"""A listing asks for its next page before the current one is stored
(:func:`engine.manifest.listing.list_batches`): a run that copies while it
lists shares the event loop with the listing, and storing a page and
fetching the next one then go at once, not one after the other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.manifest.listing import list_batches


class PagedBucket:
    """ListObjectsV2 over ``pages`` pages of two keys; records what happened
    when, beside the consumer's own notes."""

    def __init__(
        self, pages: int, fail_at: int | None = None, slow_from: int | None = None
    ) -> None:
        self.pages = pages
        self.fail_at = fail_at
        self.slow_from = slow_from
        self.log: list[str] = []
        self.finished = 0

    async def list_objects_v2(self, **args: Any) -> dict[str, Any]:
        n = int(args.get("ContinuationToken", "0"))
        self.log.append(f"ask {n}")
        await asyncio.sleep(
            10 if self.slow_from is not None and n >= self.slow_from else 0.01
        )
        if n == self.fail_at:
            raise RuntimeError("the connection dropped")
        self.finished += 1
        last = n == self.pages - 1
        return {
            "Contents": [
                {"Key": f"k{n}-{i}", "Size": 1, "ETag": '"e"'} for i in range(2)
            ],
            "IsTruncated": not last,
            **({} if last else {"NextContinuationToken": str(n + 1)}),
        }


def test_the_next_page_is_asked_for_while_this_one_is_stored() -> None:
    bucket = PagedBucket(pages=3)

    async def consume() -> list[str]:
        keys: list[str] = []
        async for rows in list_batches(bucket, "s3://src/p/"):
            bucket.log.append(f"store {rows.keys[0]}")
            await asyncio.sleep(0.05)  # the page being stored
            bucket.log.append(f"stored {rows.keys[0]}")
            keys += rows.keys
        return keys

    keys = asyncio.run(consume())
    assert keys == [f"k{n}-{i}" for n in range(3) for i in range(2)]
    # page 1 was asked for before page 0 was stored, page 2 before page 1
    assert bucket.log.index("ask 1") < bucket.log.index("stored k0-0")
    assert bucket.log.index("ask 2") < bucket.log.index("stored k1-0")
    assert bucket.log.count("ask 1") == 1
    assert "ask 3" not in bucket.log


def test_positions_are_those_after_each_page_as_before() -> None:
    """What a resumed ingest starts from: the page after the one stored, not
    the one fetched ahead."""
    bucket = PagedBucket(pages=3)

    async def positions() -> list[dict[str, Any]]:
        return [dict(r.position) async for r in list_batches(bucket, "s3://src/p/")]

    got = asyncio.run(positions())
    assert (got[0]["token"], got[0]["row"], got[0]["after"]) == ("1", 2, "k0-1")
    assert (got[1]["token"], got[1]["row"]) == ("2", 4)
    assert got[2].get("done") is True


@pytest.mark.parametrize("ahead", ["failed", "in flight"])
def test_a_listing_left_early_leaves_no_page_in_flight(ahead: str) -> None:
    """The consumer stops after the first page (a run stopped, a bad row):
    the page asked for ahead is cancelled while in flight, and its failure,
    had it failed already, is not left unretrieved."""
    if ahead == "failed":
        bucket = PagedBucket(pages=5, fail_at=1)
    else:
        bucket = PagedBucket(pages=5, slow_from=1)
    leftovers: list[asyncio.Task[Any]] = []
    unretrieved: list[dict[str, Any]] = []

    async def first_page_only() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: unretrieved.append(context)
        )
        batches = list_batches(bucket, "s3://src/p/")
        async for _rows in batches:
            await asyncio.sleep(0.05)  # page 1's ask fails, or waits, meanwhile
            break
        await batches.aclose()
        await asyncio.sleep(0)  # a cancelled page ends at the next turn
        me = asyncio.current_task()
        leftovers.extend(t for t in asyncio.all_tasks() if t is not me)

    asyncio.run(first_page_only())
    assert leftovers == []
    assert bucket.finished == 1
    assert unretrieved == []
