"""Run a command; write its wall time, CPU time and peak RSS as JSON.

    python -S bench/measure.py --out RESULT.json [--timeout S] -- COMMAND...

Why a process of its own: on Linux a child's ``ru_maxrss`` starts at its
parent's high-water RSS (the forked copy of the parent's memory counts until
``exec``), so a benchmark process that has grown (pyarrow, generated rows)
would inflate every measurement.  This wrapper stays small (about 10 MB, run
with ``-S``: standard library only) and reads the command's own rusage with
``wait4`` on its pid.  The command inherits stdin, stdout and stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="where the JSON result goes")
    p.add_argument("--timeout", type=float, default=None, help="kill after S seconds")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    timer = threading.Timer(args.timeout, proc.kill) if args.timeout else None
    if timer:
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer:
            timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits
    result = {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        "peak_rss": usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024),
        "timed_out": bool(timer) and proc.returncode < 0 and wall >= args.timeout,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
