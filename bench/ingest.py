"""Ingest benchmark: how fast ``bulkcopy submit`` loads a manifest into SQLite,
and how much memory it needs, for S3 Inventory reports (CSV.gz, Parquet, ORC)
and S3 Batch Operations CSVs.

    python bench/ingest.py                       # 1,000,000 rows, 4 formats, 3 rounds
    python bench/ingest.py --rows 10000000 --formats inventory-csv --rounds 1

The manifests are generated once into ``--cache`` (``bench/.cache/ingest``) and
reused.  Each round runs ``python -m engine submit MANIFEST --to
s3://dst-bucket/p/ --db FRESH.db`` once per format (the order rotates from
round to round) through ``bench/measure.py``, which reports its wall time, CPU
time and memory: the peak RSS of its largest process (``wait4``) and the peak
RSS and PSS of all its processes together (bulkcopy may fork a manifest
reader).  Then the job in the database must hold one pending task per
manifest row, and the sample keys (the first row, the first key with spaces,
``+`` or non-ASCII characters, the last row) must be among them, mapped to
``p/KEY``.  Prints a table of medians; exits 1 if any submit failed or any
job was wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a file (python bench/ingest.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import manifests, tools
from bench.manifests import FORMATS, Generated
from bench.version import compile_engine, engine_changed, engine_version

MEASURE = Path(__file__).resolve().parent / "measure.py"
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "ingest"
DESTINATION = "s3://dst-bucket/p/"
MB = 1_000_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="objects per manifest")
    p.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"comma-separated, from {', '.join(FORMATS)}",
    )
    p.add_argument("--rounds", type=int, default=3, help="submits of each format")
    p.add_argument(
        "--rows-per-file",
        type=int,
        default=1_000_000,
        help="rows per inventory data file (S3 splits large reports)",
    )
    p.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="where manifests are kept"
    )
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep each run's job database and log in DIR (default: a temporary "
        "directory, deleted)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the results as JSON to PATH; alone: print JSON instead of "
        "the table",
    )
    p.add_argument(
        "--engine-root",
        type=Path,
        default=tools.REPO,
        help="the bulkcopy checkout whose `python -m engine` is measured",
    )
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed for one submit"
    )
    args = p.parse_args(argv)
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(args.formats) - set(FORMATS))
    if unknown or not args.formats:
        p.error(f"--formats: unknown {unknown}; known: {', '.join(FORMATS)}")
    if args.rows < 1 or args.rows_per_file < 1 or args.rounds < 1:
        p.error("--rows, --rows-per-file and --rounds must be at least 1")
    args.engine_root = args.engine_root.resolve()
    if not (args.engine_root / "engine" / "__main__.py").is_file():
        p.error(f"--engine-root: no engine/__main__.py in {args.engine_root}")
    return args


@dataclass(frozen=True, slots=True)
class Measured:
    """One finished child process."""

    returncode: int
    wall_s: float
    cpu_s: float  # user + system
    peak_rss: int  # bytes: the largest single process (ru_maxrss)
    tree_rss: int | None  # bytes: the most all its processes held at once
    tree_pss: int | None  # the same, shared pages split (Linux only)
    processes: int | None  # the most processes alive at once


def run_measured(
    argv: list[str], *, cwd: Path, env: dict[str, str], out: Path, timeout: float
) -> Measured:
    """Run ``argv`` to the end (stdout to ``out``, stderr to ``out.log``)
    through ``measure.py``, which reads its own rusage (see there: measured
    from here, the child's peak RSS would start at this process's)."""
    result = out.with_suffix(".rusage.json")
    result.unlink(missing_ok=True)
    wrapper = [sys.executable, "-S", str(MEASURE), "--out", str(result)]
    wrapper += ["--timeout", str(timeout), "--"]
    with out.open("wb") as stdout, out.with_suffix(".log").open("wb") as stderr:
        subprocess.run(
            wrapper + argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, check=True
        )
    r = json.loads(result.read_text())
    return Measured(
        r["returncode"],
        r["wall_s"],
        r["cpu_s"],
        r["peak_rss"],
        r.get("tree_peak_rss"),
        r.get("tree_peak_pss"),
        r.get("tree_most_processes"),
    )


def check_job(db: Path, job_id: str, gen: Generated) -> str | None:
    """Why the job in ``db`` does not hold one pending task per manifest row
    (with the sample keys among them), or ``None`` when it does."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT id, total_tasks FROM jobs").fetchall()
        if [j for j, _ in found] != [job_id]:
            return f"expected the one job {job_id}, found {[j for j, _ in found]}"
        total = found[0][1]
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM tasks WHERE job_id = ? GROUP BY status",
                (job_id,),
            ).fetchall()
        )
        marks = ",".join("?" * len(gen.sample_keys))
        samples = conn.execute(
            f"SELECT count(*) FROM tasks WHERE job_id = ? AND src_bucket = ? "
            f"AND src_key IN ({marks}) AND coalesce(dst_key, "
            "(SELECT dst_prefix FROM jobs WHERE jobs.id = tasks.job_id) || src_key)"
            " = 'p/' || src_key",
            (job_id, manifests.BUCKET, *gen.sample_keys),
        ).fetchone()[0]
    tasks = sum(counts.values())
    if tasks != gen.rows or total != gen.rows or counts.get("pending") != gen.rows:
        return (
            f"expected {gen.rows} pending tasks, found {tasks} tasks {counts} "
            f"(jobs.total_tasks {total})"
        )
    if samples != len(gen.sample_keys):
        return f"only {samples} of the sample keys {gen.sample_keys} are tasks"
    return None


@dataclass(frozen=True, slots=True)
class Run:
    """One submit of one manifest, as measured and checked."""

    format: str
    round: int
    rows: int
    returncode: int
    wall_s: float
    rows_per_s: float
    cpu_s: float
    peak_rss_mb: float
    tree_rss_mb: float | None
    tree_pss_mb: float | None
    processes: int | None
    tasks_ok: bool
    problem: str | None


def one_run(
    gen: Generated, round_no: int, workdir: Path, env: dict[str, str], args: Any
) -> Run:
    """Submit ``gen``'s manifest into a fresh database; time it; check the job."""
    name = f"{gen.format}-{round_no}"
    db = workdir / f"{name}.db"
    for stale in workdir.glob(f"{name}.db*"):
        stale.unlink()
    argv = [sys.executable, "-m", "engine", "submit", str(gen.manifest)]
    argv += ["--to", DESTINATION, "--db", str(db)]
    m = run_measured(
        argv,
        cwd=args.engine_root,
        env=env,
        out=workdir / f"{name}.out",
        timeout=args.timeout,
    )
    problem = None
    if m.returncode != 0:
        log = (workdir / f"{name}.log").read_text(errors="replace").splitlines()
        problem = f"exit {m.returncode}: " + " | ".join(log[-3:])
    else:
        job_id = (workdir / f"{name}.out").read_text().strip()
        problem = check_job(db, job_id, gen)
    return Run(
        format=gen.format,
        round=round_no,
        rows=gen.rows,
        returncode=m.returncode,
        wall_s=round(m.wall_s, 3),
        rows_per_s=round(gen.rows / m.wall_s),
        cpu_s=round(m.cpu_s, 3),
        peak_rss_mb=round(m.peak_rss / MB, 1),
        tree_rss_mb=None if m.tree_rss is None else round(m.tree_rss / MB, 1),
        tree_pss_mb=None if m.tree_pss is None else round(m.tree_pss / MB, 1),
        processes=m.processes,
        tasks_ok=problem is None,
        problem=problem,
    )


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def summarize(runs: list[Run], generated: dict[str, Generated]) -> dict[str, Any]:
    """Per format: medians over the rounds whose job was right (over all
    rounds when none was), and every run."""
    out: dict[str, Any] = {}
    for fmt in dict.fromkeys(r.format for r in runs):
        mine = [r for r in runs if r.format == fmt]
        good = [r for r in mine if r.tasks_ok]
        counted = good or mine
        wall = statistics.median(r.wall_s for r in counted)
        gen = generated[fmt]
        out[fmt] = {
            "rows": gen.rows,
            "data_files": gen.data_files,
            "manifest_bytes": gen.bytes,
            "rounds": len(mine),
            "rounds_ok": len(good),
            "wall_s_median": round(wall, 3),
            "wall_s_min": min(r.wall_s for r in counted),
            "wall_s_max": max(r.wall_s for r in counted),
            "rows_per_s_median": round(gen.rows / wall),
            "peak_rss_mb_median": _median(r.peak_rss_mb for r in counted),
            "peak_rss_mb_max": max(r.peak_rss_mb for r in counted),
            "tree_rss_mb_median": _median(r.tree_rss_mb for r in counted),
            "tree_pss_mb_median": _median(r.tree_pss_mb for r in counted),
            "processes": max((r.processes or 0) for r in counted) or None,
            "cpu_s_median": round(statistics.median(r.cpu_s for r in counted), 2),
            "tasks_ok": len(good) == len(mine),
            "problems": sorted({r.problem for r in mine if r.problem}),
            "runs": [asdict(r) for r in mine],
        }
    return out


COLUMNS = (
    ("format", None),
    ("rows", "rows"),
    ("files", "data_files"),
    ("wall s", "wall_s_median"),
    ("min-max s", "spread"),
    ("rows/s", "rows_per_s_median"),
    ("peak RSS MB", "peak_rss_mb_median"),
    ("all procs RSS MB", "tree_rss_mb_median"),
    ("PSS MB", "tree_pss_mb_median"),
    ("procs", "processes"),
    ("CPU s", "cpu_s_median"),
    ("tasks ok", "rounds_ok"),
)


def table(summary: dict[str, Any]) -> str:
    """A Markdown table, one row per format."""

    def cell(fmt: str, s: dict[str, Any], key: str | None) -> str:
        if key is None:
            return fmt
        if key == "spread":
            return f"{s['wall_s_min']:.2f}-{s['wall_s_max']:.2f}"
        value = s[key]
        if key == "rounds_ok":  # rounds whose job was right, of all rounds
            return "yes" if s["tasks_ok"] else f"NO ({value}/{s['rounds']})"
        if not s["rounds_ok"] and key != "rows":
            return "-"  # every submit failed: nothing to measure
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}" if "_mb_" in key else f"{value:.2f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    head = [name for name, _ in COLUMNS]
    rows = [[cell(f, s, key) for _, key in COLUMNS] for f, s in summary.items()]
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    generated = manifests.generate(
        args.cache, args.rows, args.rows_per_file, args.formats
    )
    print(
        f"manifests ready in {time.perf_counter() - started:.1f}s under "
        f"{manifests.cache_dir(args.cache, args.rows, args.rows_per_file)}",
        file=sys.stderr,
        flush=True,
    )
    compile_engine(args.engine_root)
    version = engine_version(args.engine_root)
    env = tools.environment(workdir)
    env["PYTHONPATH"] = str(args.engine_root)
    runs: list[Run] = []
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(args.formats)
        for fmt in args.formats[shift:] + args.formats[:shift]:
            run = one_run(generated[fmt], round_no, workdir, env, args)
            print(
                f"round {round_no} {fmt}: {run.wall_s:.2f}s, "
                f"{run.rows_per_s:,} rows/s, {run.peak_rss_mb:.0f} MB peak RSS, "
                f"{run.tree_pss_mb or 0:.0f} MB PSS of {run.processes or 1} process(es)"
                + ("" if run.tasks_ok else f", FAILED: {run.problem}"),
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    return {
        "benchmark": "manifest ingest (bulkcopy submit into SQLite)",
        "command": " ".join(["python", "bench/ingest.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "engine": {
            "root": str(args.engine_root),
            "version": engine_changed(version, args.engine_root),
        },
        "settings": {
            "rows": args.rows,
            "rows_per_file": args.rows_per_file,
            "rounds": args.rounds,
            "formats": args.formats,
            "destination": DESTINATION,
        },
        "manifests": {f: g.to_dict() for f, g in generated.items()},
        "formats": summarize(runs, generated),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_bench(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            result = run_bench(args, Path(tmp))
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    else:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text)
        version = result["engine"]["version"]
        print(f"{args.rows:,} rows, {args.rounds} rounds, engine {version}")
        print(table(result["formats"]))
        print(
            "(medians over rounds; rows/s = manifest rows / wall time of the process)"
        )
    return 0 if all(f["tasks_ok"] for f in result["formats"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
