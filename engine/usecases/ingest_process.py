"""A big local manifest is read and its rows prepared in a forked child
process, so parsing runs on one core while the parent writes to the
database: the child sends each prepared batch with the state after it down a
pipe; an error it meets (a malformed manifest) is raised in the parent."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from typing import Any

from engine.domain.errors import ManifestError, UsageError
from engine.domain.keys import KeyMapping
from engine.domain.records import JobRecord, TaskRows
from engine.domain.spec import JobSpec
from engine.manifest.inventory import load_inventory_manifest
from engine.manifest.sources import Reader, Source
from engine.usecases.ingest_rows import IngestState, Prepared, Preparer

# local manifests at least this big are parsed in a child process
PROCESS_MIN_BYTES = 16 << 20
# batches the child has ready are written together, up to this many rows
COMMIT_ROWS = 50_000


def worth_a_process(source: Source) -> bool:
    """Whether the manifest is big enough to pay for a reader process (and
    this platform can fork one)."""
    if "fork" not in mp.get_all_start_methods():
        return False
    try:
        if source.kind == "inventory":
            files = load_inventory_manifest(source.location).files
            size = sum(int(f.get("size") or 0) for f in files)
        else:
            size = os.path.getsize(source.location)
    except (OSError, ValueError, ManifestError):
        return False
    return size >= PROCESS_MIN_BYTES


def in_child(
    source: Source, job: JobRecord, spec: JobSpec, state: IngestState
) -> Iterator[Prepared]:
    """Run the reader and preparer in a forked child; yield what it sends.

    The child sends each batch's rows with the state after it; an error it
    meets (a malformed manifest) is raised here, as if read here.
    """
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    args = (send, source, job.id, spec.keys, job.dst_prefix, state)
    child = ctx.Process(target=_child_main, args=args, daemon=True)
    child.start()
    send.close()

    def next_message() -> Any:
        try:
            return receive.recv()
        except EOFError:
            raise RuntimeError(
                f"the manifest reader process died (exit code {child.exitcode})"
            ) from None

    try:
        message = next_message()
        while True:
            kind = message[0]
            if kind == "batch":
                # what the child has already sent goes in one transaction (a
                # batch whose rows were all filtered out is committed alone:
                # commit points do not depend on the pipe's timing)
                rows, after = message[1], message[2]
                message = None
                while (
                    0 < len(rows.plain) + len(rows.full) < COMMIT_ROWS
                    and receive.poll()
                ):
                    message = next_message()
                    if message[0] != "batch" or not _joinable(rows, message[1]):
                        break
                    rows.plain += message[1].plain
                    rows.full += message[1].full
                    after, message = message[2], None
                yield rows, IngestState.from_dict(after)
                message = message or next_message()
            elif kind == "done":
                return
            elif kind == "manifest":
                raise ManifestError(*message[1])
            elif kind == "usage":
                raise UsageError(message[1])
            else:
                raise RuntimeError(f"the manifest reader failed: {message[1]}")
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def _joinable(rows: TaskRows, more: TaskRows) -> bool:
    """Whether ``more`` can go in the same statements as ``rows`` with the
    ids still in manifest order: both short rows of the same columns, or
    both full rows."""
    if rows.full or more.full:
        return not (rows.plain or more.plain)
    return rows.plain_columns == more.plain_columns


def _child_main(
    send: Any,
    source: Source,
    job_id: str,
    mapping: KeyMapping,
    prefix: str,
    state: IngestState,
) -> None:
    try:
        prep = Preparer(job_id, mapping, prefix, source, state)
        for rows in Reader(source).local_batches(state.position or None):
            send.send(("batch", prep.prepare(rows), prep.state.to_dict()))
        send.send(("done",))
    except ManifestError as exc:
        send.send(("manifest", (exc.source, exc.line, exc.reason)))
    except UsageError as exc:
        send.send(("usage", str(exc)))
    except BaseException as exc:  # reported to the parent, which raises
        send.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
