"""S3 writes inventory CSVs with every field quoted; bulkcopy splits those
lines in one pass and falls back to the csv module for anything else.  Both
must read the same rows."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest

from engine.manifest.inventory import _csv_batches, _split_quoted

ROWS = [
    ["src", "a%2Cb.txt", "", "12", "2026-01-02T03:04:05.000Z", "STANDARD"],
    ["src", "dir/with+plus", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "0", "", ""],
    ["src-2", "x,y", "null", "7", "2026-01-02T03:04:05Z", "GLACIER"],
]
COLUMNS = ["bucket", "key", "version_id", "size", "last_modified_date", "storage"]


def _quoted(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_fully_quoted_lines_split_into_the_csv_modules_columns() -> None:
    text = _quoted(ROWS)
    expected = [list(c) for c in zip(*csv.reader(io.StringIO(text)), strict=True)]
    assert _split_quoted(text, len(COLUMNS)) == expected


@pytest.mark.parametrize(
    "text",
    [
        'src,plain,"",1,,\n',  # not every field quoted
        '"src","say ""hi""","","1","",""\n',  # a quote inside a field
        '"src","k","","1","",""\r\n',  # CRLF
        '"src","k","","1",""\n',  # a column short
    ],
)
def test_anything_else_is_left_to_the_csv_module(text: str) -> None:
    assert _split_quoted(text, len(COLUMNS)) is None


@pytest.mark.parametrize("quoting", [csv.QUOTE_ALL, csv.QUOTE_MINIMAL])
def test_data_file_reads_the_same_rows_either_way(tmp_path: Path, quoting: int) -> None:
    """A multi-member gzip file, quoted like S3 or minimally like other tools:
    the same typed columns."""
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="\n").writerows(ROWS * 3)
    data = out.getvalue().encode()
    path = tmp_path / "part.csv.gz"
    half = len(data) // 2
    cut = data.rindex(b"\n", 0, half) + 1
    path.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    cols: dict[str, list[object]] = {c: [] for c in COLUMNS}
    for batch in _csv_batches(path, COLUMNS):
        for name in COLUMNS:
            cols[name] += batch[name]
    assert cols["key"] == ["a%2Cb.txt", "dir/with+plus", "x,y"] * 3
    assert cols["size"] == [12, 0, 7] * 3
    assert cols["version_id"] == ["", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "null"] * 3
    assert cols["last_modified_date"][:3] == [1767323045.0, None, 1767323045.0]


def test_a_row_with_too_few_columns_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress(b"src,a,,1,,\nsrc,b\n"))
    with pytest.raises(ValueError, match="row 2 has 2 columns"):
        list(_csv_batches(path, COLUMNS))
