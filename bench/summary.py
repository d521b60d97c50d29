"""Benchmark runs into a summary per tool and a text table: pure functions
(and the working directory every benchmark runs in)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.units import format_size


@dataclass(frozen=True, slots=True)
class Run:
    """One copy by one tool, as measured."""

    tool: str
    round: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    parts: int  # UploadPartCopy requests
    max_parts_in_flight: int
    copy_objects: int  # CopyObject requests
    requests: int  # every S3 request the fake endpoint answered
    size_ok: bool
    metadata_kept: bool
    tags_kept: bool


def _spread(values: Sequence[int]) -> str:
    return spread(values, "{}")


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """``low-high`` of ``values`` (one value where all rounds agree)."""
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}-{high}"


def requests_text(counts: Sequence[Mapping[str, int]], first: str = "") -> str:
    """Requests by operation over the rounds (``counts``: one per round),
    e.g. ``CopyObject 20,000, ListObjectsV2 21``; a range where rounds
    differ; ``first``: the operation named first."""
    ops = sorted({op for c in counts for op in c}, key=lambda op: (op != first, op))
    return ", ".join(f"{op} {spread([c.get(op, 0) for c in counts])}" for op in ops)


def medians(
    runs: Sequence[Any], digits: Mapping[str, int], ranged: Sequence[str] = ()
) -> dict[str, float]:
    """``<attr>_median`` of each attribute of ``runs`` in ``digits`` (rounded
    to that many digits), and ``<attr>_min`` / ``<attr>_max`` of those in
    ``ranged``."""
    out: dict[str, float] = {}
    for attr, n in digits.items():
        values = [getattr(r, attr) for r in runs]
        out[f"{attr}_median"] = round(float(statistics.median(values)), n)
        if attr in ranged:
            out[f"{attr}_min"], out[f"{attr}_max"] = min(values), max(values)
    return out


@contextlib.contextmanager
def workdir_for(keep: Path | None, prefix: str) -> Iterator[Path]:
    """Where a benchmark keeps its files: ``keep`` (``--keep``), else a
    temporary directory removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def summarize(
    runs: list[Run], size: int, baseline: str = "bulkcopy"
) -> dict[str, dict[str, Any]]:
    """Per tool: medians over rounds, parts, and the ratio to ``baseline``."""
    tools = list(dict.fromkeys(r.tool for r in runs))
    medians = {
        t: statistics.median(r.wall_s for r in runs if r.tool == t) for t in tools
    }
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        mine = [r for r in runs if r.tool == tool]
        parts = statistics.median(r.parts for r in mine)
        out[tool] = {
            "rounds": len(mine),
            "wall_s_median": round(medians[tool], 3),
            "wall_s_min": round(min(r.wall_s for r in mine), 3),
            "wall_s_max": round(max(r.wall_s for r in mine), 3),
            "ratio_to_" + baseline: round(medians[tool] / medians[baseline], 2)
            if baseline in medians
            else None,
            "parts": _spread([r.parts for r in mine]),
            "part_size": format_size(size / parts) if parts else None,
            "copy_objects": _spread([r.copy_objects for r in mine]),
            "max_parts_in_flight": _spread([r.max_parts_in_flight for r in mine]),
            "client_cpu_s_median": round(
                statistics.median(r.client_cpu_s for r in mine), 2
            ),
            "server_cpu_s_median": round(
                statistics.median(r.server_cpu_s for r in mine), 2
            ),
            "size_ok": all(r.size_ok for r in mine),
            "metadata_kept": all(r.metadata_kept for r in mine),
            "tags_kept": all(r.tags_kept for r in mine),
            "runs": [asdict(r) for r in mine],
        }
    return out


COLUMNS = (
    ("tool", "tool"),
    ("wall s", "wall_s_median"),
    ("min-max s", None),
    ("x bulkcopy", "ratio_to_bulkcopy"),
    ("parts", "parts"),
    ("part size", "part_size"),
    ("max in flight", "max_parts_in_flight"),
    ("client CPU s", "client_cpu_s_median"),
    ("server CPU s", "server_cpu_s_median"),
    ("size ok", "size_ok"),
    ("metadata kept", "metadata_kept"),
    ("tags kept", "tags_kept"),
)


def _cell(row: dict[str, Any], key: str | None, tool: str) -> str:
    if key is None:
        return f"{row['wall_s_min']:.2f}-{row['wall_s_max']:.2f}"
    if key == "tool":
        return tool
    value = row.get(key)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, each column as wide as its widest cell."""
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def table(summary: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, one row per tool."""
    rows = [[_cell(s, key, t) for _, key in COLUMNS] for t, s in summary.items()]
    return markdown([name for name, _ in COLUMNS], rows)
