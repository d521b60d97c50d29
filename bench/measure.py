"""Run a command; write its wall time, CPU time and memory as JSON.

    python -S bench/measure.py --out RESULT.json [--timeout S] -- COMMAND...

Two memory figures:

- ``peak_rss``: the kernel's ``ru_maxrss`` for the command, read with
  ``wait4`` on its pid: the peak RSS of the largest single process among the
  command and the children it waited for (not their sum).
- ``tree_peak_rss`` / ``tree_peak_pss`` (Linux): the highest sum, over the
  command and all its descendants alive at once, of RSS and of PSS (shared
  pages split between the processes sharing them), sampled from
  ``/proc/PID/smaps_rollup`` every ``--interval`` seconds.  This is what a
  command that forks helpers (bulkcopy parses big manifests in a forked
  reader) costs the machine; a spike shorter than the interval can be missed.

Why a process of its own: on Linux a child's ``ru_maxrss`` starts at its
parent's high-water RSS (the forked copy of the parent's memory counts until
``exec``), so a benchmark process that has grown (pyarrow, generated rows)
would inflate every measurement.  This wrapper stays small (about 10 MB, run
with ``-S``: standard library only).  The command inherits stdin, stdout and
stderr; CPU time includes the children it waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/PID/task/TID/children``)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:  # gone meanwhile
            pass
    return found


def _memory(pids: list[int]) -> tuple[int, int]:
    """The summed RSS and PSS of ``pids``, in bytes."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Samples the memory of a process tree until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = self.samples = self.most_processes = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            pids = _tree(self.pid)
            rss, pss = _memory(pids)
            self.peak_rss, self.peak_pss = (
                max(self.peak_rss, rss),
                max(self.peak_pss, pss),
            )
            self.most_processes = max(self.most_processes, len(pids))
            self.samples += 1
            self.stopped.wait(self.interval)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="where the JSON result goes")
    p.add_argument("--timeout", type=float, default=None, help="kill after S seconds")
    p.add_argument(
        "--interval", type=float, default=0.05, help="seconds between memory samples"
    )
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    sampler = None
    if os.path.exists(f"/proc/{proc.pid}/smaps_rollup"):
        sampler = TreeSampler(proc.pid, args.interval)
        sampler.start()
    timer = threading.Timer(args.timeout, proc.kill) if args.timeout else None
    if timer:
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer:
            timer.cancel()
        if sampler:
            sampler.stopped.set()
            sampler.join()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits
    result = {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        "peak_rss": usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024),
        "tree_peak_rss": sampler.peak_rss if sampler else None,
        "tree_peak_pss": sampler.peak_pss if sampler else None,
        "tree_most_processes": sampler.most_processes if sampler else None,
        "samples": sampler.samples if sampler else 0,
        "timed_out": bool(timer) and proc.returncode < 0 and wall >= args.timeout,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
