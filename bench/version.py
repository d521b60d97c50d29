"""Which engine a benchmark measured: the checkout's commit, and whether it
changed while the benchmark ran (someone may be editing it meanwhile)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def engine_version(root: Path = REPO) -> str:
    """The engine's git commit, ``+dirty`` when engine/ or migrations/ have
    uncommitted changes; ``unknown`` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "engine", "migrations")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def compile_engine(root: Path = REPO) -> None:
    """Write the engine's bytecode (``__pycache__``) before it is timed, as
    installing a wheel does.  An editable install writes it on the first run,
    unless ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines these
    figures come from): then every run would compile the engine's ~130
    modules again, ~0.2 s no installed copy pays.  Peers are compiled
    binaries; this keeps the comparison about the copying."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "engine")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def engine_changed(before: str, root: Path = REPO) -> str:
    """The engine's version, or both when it changed during the benchmark."""
    after = engine_version(root)
    if after == before:
        return before
    print(f"the engine changed during the run: {before} -> {after}", file=sys.stderr)
    return f"{before} -> {after} (changed during the run)"


def provenance(
    script: str,
    load_start: list[float],
    engine_root: Path,
    engine_before: str,
    env: dict[str, str],
) -> dict[str, Any]:
    """What a result file says of where it came from: the command, the time,
    the host (and its load at the start and end), the engine measured."""
    return {
        "command": " ".join(["python", script, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "engine": {
            "root": str(engine_root),
            "version": engine_changed(engine_before, engine_root),
            "env": env,
        },
    }
