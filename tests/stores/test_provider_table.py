"""The README's provider table is what the stores of the matrix answer."""

from __future__ import annotations

import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from tests.servers import S3Server, rclone_binary
from tests.stores.behaviours import observe, table

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- provider-table:begin (tests/stores/test_provider_table.py) -->\n"
END = "<!-- provider-table:end -->"
WRITE = "BULKCOPY_WRITE_PROVIDER_TABLE"
# read when the module is collected: the autouse fixture that clears BULKCOPY_*
# from each test's environment has not run yet
WRITING = os.environ.get(WRITE) == "1"


def _first_line(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else ""


def _versions() -> dict[str, str]:
    from tests.stores.localstack import localstack_python

    rclone = _first_line([rclone_binary(), "version"]).removeprefix("rclone ")
    ceph = re.search(r"\d+\.\d+\.\d+", _first_line(["radosgw", "--version"]))
    python = localstack_python() or "python3"
    localstack = _first_line(
        [
            python,
            "-c",
            "import importlib.metadata as m; print(m.version('localstack-core'))",
        ]
    )
    return {
        "moto": metadata.version("moto"),
        "rclone": rclone,
        "rgw": ceph.group(0) if ceph else "",
        "localstack": localstack,
    }


def _rows(text: str) -> list[str]:
    """The table's rows below its header (the header names versions)."""
    return [line for line in text.splitlines()[2:] if line.startswith("|")]


def test_the_readme_provider_table_is_what_the_stores_answer(
    moto: S3Server, rclone: S3Server, rgw: S3Server, localstack: S3Server
) -> None:
    """Every store is probed for each behaviour bulkcopy's promises rest on;
    the README must say what they answered (``BULKCOPY_WRITE_PROVIDER_TABLE=1``
    rewrites it)."""
    stores = {s.name: s for s in (moto, rclone, rgw, localstack)}
    observed = {name: observe(store) for name, store in stores.items()}
    fresh = table(observed, _versions())
    readme = README.read_text(encoding="utf-8")
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    if WRITING:
        README.write_text(readme[:start] + fresh + readme[end:], encoding="utf-8")
    current = readme[start:end]
    assert _rows(current) == _rows(fresh), (
        f"the stores answer differently from README's provider table; run "
        f"{WRITE}=1 pytest {Path(__file__).relative_to(README.parent)}\n{fresh}"
    )
