"""A submit's listing on the lean path, on every real store: page by page, the
same objects botocore lists (awkward keys, sizes, ETags, dates), and the
same position (the last key) where a resume needs it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.domain.spec import JobSpec
from engine.manifest.listing import list_batches
from engine.run.jobclient import reading_client
from tests.helpers import client_settings
from tests.servers import S3Server

pytestmark = pytest.mark.integration

KEYS = [
    "p/a b",
    "p/c+d",
    "p/e%41f",
    "p/x&y<z>'\"",
    "p/q?r#s",
    "p/dir/sub/k",
    "p/~tilde*star",
    "p/=eq;semi,comma",
]
# LocalStack lists no key that is not ASCII after a listing's first page
# (the README's provider table): there it is looked for in both listings'
# agreement only
NOT_ASCII = "p/ü/é ñ"


def _listed(store: S3Server, uri: str, lean: bool) -> tuple[list[Any], Any]:
    """Every row a listing of ``uri`` gives, pages of 3, and the client."""
    spec = JobSpec(client=client_settings(store))
    bucket = uri[len("s3://") :].split("/")[0]

    async def go() -> tuple[list[Any], Any]:
        rows: list[Any] = []
        async with reading_client(spec, list_buckets=(bucket,) if lean else ()) as (
            client,
            _,
        ):
            async for page in list_batches(client, uri, page_size=3):
                rows += [
                    (k, s, e, m)
                    for k, s, e, m in zip(
                        page.keys, page.sizes, page.etags, page.modified, strict=True
                    )
                ]
                # where a resume starts: the last key (a store's tokens are
                # its own, and need not be the same from one listing to
                # the next)
                position = dict(page.position or {})
                position.pop("token", None)
                rows.append(("position", position))
            return rows, client

    return asyncio.run(go())


def test_a_listing_takes_the_lean_path_and_lists_what_botocore_lists(
    store: S3Server,
) -> None:
    src = store.new_bucket()
    for i, key in enumerate([*KEYS, NOT_ASCII, "q/outside"]):
        store.client().put_object(Bucket=src, Key=key, Body=b"x" * i)

    lean_rows, client = _listed(store, f"s3://{src}/p/", lean=True)
    boto_rows, _ = _listed(store, f"s3://{src}/p/", lean=False)

    assert lean_rows == boto_rows
    listed = sorted(r[0] for r in lean_rows if r[0] != "position")
    expected = sorted([*KEYS, NOT_ASCII])
    if store.name == "localstack":
        expected.remove(NOT_ASCII)
    assert listed == expected
    # every page went the lean way (pages of 3, the last one short)
    assert client.lean["ListObjectsV2"] == (len(expected) + 2) // 3


def test_an_empty_listing_ends_as_botocores_does(store: S3Server) -> None:
    """A prefix with nothing under it: one page, no rows, the listing done,
    on the lean path as on botocore's (no store answers it with a body the
    lean path would take for a page cut short)."""
    src = store.new_bucket()
    store.client().put_object(Bucket=src, Key="elsewhere/k", Body=b"x")

    lean_rows, client = _listed(store, f"s3://{src}/none/", lean=True)
    boto_rows, _ = _listed(store, f"s3://{src}/none/", lean=False)

    assert lean_rows == boto_rows
    assert lean_rows == [("position", {"done": True, "row": 0, "after": None})]
    assert client.lean["ListObjectsV2"] == 1
