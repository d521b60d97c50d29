"""The sample S3 Inventory reports in manifests/ read alike in every format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.orc as paorc
import pyarrow.parquet as pq
import pytest

from engine.domain.models import ObjectRef
from engine.manifest.inventory import read_inventory

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

FORMATS = ["csv", "parquet", "orc"]
GIB = 1024**3
SRC = "example-src"
# the current versions: no delete marker, no older version
LATEST = {
    (ObjectRef(SRC, "archive/2019/db-backup.tar", "Ql3d0HF0yvcdPXbHw2pqs6TLmWvq.N_B"),
     734_003_200),
    (ObjectRef(SRC, "data/versioned.csv", "oZ8vKwZV1L5rcd7qNN_Ck5T3LfBLT9iq"), 2_048),
    (ObjectRef(SRC, "docs/annual report 2024.pdf", "tQf2v5Yc8GQ0v1v4Xb0rSxKzq0mUO7zW"),
     1_048_576),
    (ObjectRef(SRC, "docs/café/menü.txt", "b5Nq2x9Kp3Lr7Tz1Wv4Yd6Fh8Jm0Qs2E"), 4_321),
    (ObjectRef(SRC, "empty/.keep", "null"), 0),
    (ObjectRef(SRC, "logs/2025/01/01/app.log.gz", "Z7r0Yb3Qk9Wm2Xv5Tc8Ln1Pd4Hf6Js0G"),
     5_242_881),
    (ObjectRef(SRC, "math/1+1=2.txt", "N2p4R6t8V0x2Z4b6D8f0H2j4L6n8P0r2"), 12),
    (ObjectRef(SRC, "photos/2024/beach.jpg", "null"), 2_345_678),
    (ObjectRef(SRC, "video/raw/take-01.mov", "Jd9Sb7Qz5Xx3Vv1Tt9Rr7Pp5Nn3Ll1Kk"),
     6 * GIB),
}  # fmt: skip
OLDER = (
    ObjectRef(SRC, "data/versioned.csv", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrH"),
    1_024,
)


def manifest(fmt: str) -> str:
    return str(MANIFESTS / f"inventory-{fmt}" / "manifest.json")


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_gives_the_current_versions(fmt: str) -> None:
    """Keys decoded, empty VersionId as 'null', no delete marker, no older version."""
    entries = list(read_inventory(manifest(fmt)))
    assert all(e.error is None for e in entries)
    assert len(entries) == len(LATEST)
    assert {(e.src, e.size) for e in entries} == LATEST


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_with_all_versions_adds_the_older_version(fmt: str) -> None:
    """all_versions=True adds the non-current version; the delete marker stays out."""
    entries = list(read_inventory(manifest(fmt), all_versions=True))
    assert {(e.src, e.size) for e in entries} == LATEST | {OLDER}
    assert "tmp/deleted.log" not in {e.src.key for e in entries}


def test_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    """manifests/make_inventory_samples.py reproduces the committed samples."""
    script = MANIFESTS / "make_inventory_samples.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for fmt in FORMATS:
        mine, theirs = tmp_path / f"inventory-{fmt}", MANIFESTS / f"inventory-{fmt}"
        (new,) = (mine / "data").iterdir()
        (old,) = (theirs / "data").iterdir()
        assert new.name == old.name
        if fmt == "csv":  # byte for byte; Parquet and ORC carry the writer version
            assert new.read_bytes() == old.read_bytes()
            assert (mine / "manifest.json").read_text() == (
                theirs / "manifest.json"
            ).read_text()
        else:
            read = pq.read_table if fmt == "parquet" else paorc.read_table
            assert read(str(new)).equals(read(str(old)))
