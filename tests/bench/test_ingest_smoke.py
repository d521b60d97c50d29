"""The ingest benchmark keeps working: its manifests are well formed, and
``bench/ingest.py`` runs every format as a user types it (no timings checked)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_plus

import pyarrow.compute as pc
import pyarrow.orc as paorc
import pyarrow.parquet as pq

from bench import manifests
from bench.manifests import FORMATS, INVENTORY
from engine.manifest.inventory import schema_columns

REPO = Path(__file__).resolve().parents[2]


def test_generated_keys_look_like_a_real_bucket() -> None:
    """Keys are unique, 30-120 characters, about 1% odd, and URL-encode both ways."""
    table = manifests.rows(0, 20_000)
    keys = table["key"].to_pylist()
    assert len(set(keys)) == len(keys)
    assert all(30 <= len(k) <= 120 for k in keys)
    assert all(k.count("/") >= 4 for k in keys)
    odd = [k for k in keys if " " in k or "+" in k or not k.isascii()]
    assert 0.005 < len(odd) / len(keys) < 0.02
    assert odd == table.filter(table["special"])["key"].to_pylist()
    encoded = table["key_encoded"].to_pylist()
    assert [unquote_plus(e) for e in encoded] == keys
    assert not any(" " in e or "," in e or '"' in e for e in encoded)
    assert manifests.rows(7, 3)["key"].to_pylist() == keys[7:10]  # row i is fixed


def test_generated_reports_are_real_shaped(tmp_path: Path) -> None:
    """Each report splits its rows over data files whose size, MD5 and columns
    are what manifest.json says."""
    made = manifests.generate(tmp_path, 2500, 1000, list(FORMATS))
    for fmt, file_format in INVENTORY.items():
        report = json.loads(made[fmt].manifest.read_text())
        assert report["fileFormat"] == file_format
        assert report["sourceBucket"] == manifests.BUCKET
        assert len(report["files"]) == 3 == made[fmt].data_files
        columns = schema_columns(file_format, report["fileSchema"])
        rows = 0
        for entry in report["files"]:
            data = made[fmt].manifest.parents[1] / "data" / entry["key"].split("/")[-1]
            assert entry["key"].startswith(f"{manifests.BUCKET}/")
            assert entry["size"] == data.stat().st_size
            assert entry["MD5checksum"] == manifests.md5_of(data)
            if file_format == "CSV":
                lines = gzip.decompress(data.read_bytes()).decode().splitlines()
                assert all(line.count('","') == len(columns) - 1 for line in lines)
                rows += len(lines)
            else:
                read = paorc.read_table if file_format == "ORC" else pq.read_table
                table = read(str(data))
                assert table.column_names == columns
                assert pc.min_max(table["size"]).as_py()["min"] >= 0
                rows += table.num_rows
        assert rows == 2500
    bops = made["bops-csv"].manifest.read_text().splitlines()
    assert len(bops) == 2500
    assert all(line.startswith(f"{manifests.BUCKET},") for line in bops)


def test_ingest_bench_runs_every_format(tmp_path: Path) -> None:
    """bench/ingest.py submits 2,000 rows of each format and checks every job."""
    out = tmp_path / "ingest.json"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/ingest.py",
            "--rows",
            "2000",
            "--rounds",
            "1",
            "--rows-per-file",
            "1000",
            "--cache",
            str(tmp_path / "cache"),
            "--keep",
            str(tmp_path / "runs"),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["formats"]
    assert list(result) == list(FORMATS)
    for fmt, summary in result.items():
        assert summary["rows"] == 2000, fmt
        assert summary["tasks_ok"], summary["runs"]
        assert summary["peak_rss_mb_median"] > 0
        assert f"| {fmt} " in proc.stdout
