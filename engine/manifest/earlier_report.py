"""Completion reports as manifests, so the objects of an earlier job can be re-run.

A report is read in any of these forms:

- a report ``manifest.json`` (``Format: Report_CSV_20180820``), or the
  ``job-<id>/`` directory holding it: every result CSV it lists is read (only
  those of the wanted ``TaskExecutionStatus`` when asked), each checked
  against its ``MD5Checksum`` before a row of it is used;
- one result CSV (bulkcopy's ``results/failed.csv``, S3's ``results/<hash>.csv``);
- bulkcopy's ``results.jsonl``, one JSON object per task.

Result CSVs have no header and seven columns; keys are URL-encoded.  Columns
5 and 6 come in two orders::

    declared (ReportSchema), bulkcopy:  Bucket, Key, VersionId, TaskStatus,
                                        ErrorCode, HTTPStatusCode, ResultMessage
    written by S3 Batch Operations:     Bucket, Key, VersionId, TaskStatus,
                                        HTTPStatusCode, ErrorCode, ResultMessage

so ``bkt,k,,failed,NoSuchKey,404,…`` (bulkcopy) and ``bkt,k,,failed,404,NoSuchKey,…``
(S3) say the same.  The order is told apart row by row: the column holding a
3-digit HTTP status (100-599) or nothing is the status (see
:func:`report_status_columns`).  Rows of objects that were invalid in the
reported job's own manifest (``InvalidManifestRow``) come out as errors.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.domain.codes import INVALID_ROW
from engine.domain.errors import ManifestError
from engine.domain.models import ManifestEntry, ObjectRef, TaskStatus
from engine.manifest.csv import parse_row
from engine.manifest.filehash import md5_file

REPORT_FORMAT = "Report_CSV_20180820"
COLUMNS = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
CSV_STATUSES = frozenset({TaskStatus.SUCCEEDED.value, TaskStatus.FAILED.value})
STATUSES = frozenset(s.value for s in TaskStatus)  # results.jsonl has every one
_SNIFF_BYTES = 1 << 16
_BOM = "\ufeff"
_NOWHERE = ObjectRef("", "")


def _is_http_status(value: str) -> bool:
    return (
        len(value) == 3
        and value.isascii()
        and value.isdigit()
        and 100 <= int(value) <= 599
    )


def report_status_columns(fields: Sequence[str]) -> tuple[str | None, int | None]:
    """The error code and HTTP status of a 7-column report row, in either order.

    The declared order (``ErrorCode, HTTPStatusCode``) is taken when its
    HTTP column holds a status code, or is empty while the other column is no
    status code; S3's swapped order when its HTTP column (the 5th) holds a
    status code or is empty.  A row where both could be the status is read in
    the declared order.  Raises ``ValueError`` when neither column can be
    the HTTP status.
    """
    fifth, sixth = fields[4].strip(), fields[5].strip()
    if _is_http_status(sixth) or (sixth == "" and not _is_http_status(fifth)):
        code, status = fifth, sixth
    elif _is_http_status(fifth) or fifth == "":
        code, status = sixth, fifth
    else:
        raise ValueError(
            f"neither {fifth!r} nor {sixth!r} (columns 5 and 6) is an HTTP "
            "status code: not an ErrorCode, HTTPStatusCode pair in either order"
        )
    return code or None, int(status) if status else None


def _csv_entry(
    line: int, fields: list[str], statuses: frozenset[str] | None
) -> ManifestEntry | None:
    """One report CSV row as an entry; ``None`` when its status is not wanted."""
    partial = ObjectRef(fields[0], fields[1] if len(fields) > 1 else "")
    if len(fields) != 7:
        return ManifestEntry(
            line, partial, f"expected 7 columns ({COLUMNS}), got {len(fields)}"
        )
    status = fields[3].strip()
    if status not in CSV_STATUSES:
        return ManifestEntry(
            line, partial, f"TaskStatus {status!r} is not succeeded or failed"
        )
    if statuses is not None and status not in statuses:
        return None
    try:
        error_code, _ = report_status_columns(fields)
    except ValueError as exc:
        return ManifestEntry(line, partial, str(exc))
    version = fields[2].strip()
    src, error = parse_row(fields[:3] if version else fields[:2], None)
    if error_code == INVALID_ROW:
        error = f"was an invalid row of the reported job's manifest: {fields[6]}"
    return ManifestEntry(line, src, error)


def _read_csv(
    path: Path, statuses: frozenset[str] | None, label: str = ""
) -> Iterator[ManifestEntry]:
    with path.open("rb") as raw:
        text = io.TextIOWrapper(
            raw, encoding="utf-8", errors="surrogateescape", newline=""
        )
        reader = csv.reader(text, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # an unterminated quote swallowed the rest: nothing more to trust
                fatal = "unexpected end of data" in str(exc) or "EOF" in str(exc)
                error = f"{label}malformed CSV: {exc}"
                yield ManifestEntry(start, _NOWHERE, error, fatal=fatal)
                if fatal:
                    return
                continue
            if start == 1 and fields:
                fields[0] = fields[0].removeprefix(_BOM)
            if not fields or fields == [""]:
                continue  # blank line
            entry = _csv_entry(start, fields, statuses)
            if entry is not None and entry.error is not None and label:
                entry = replace(entry, error=label + entry.error)
            if entry is not None:
                yield entry


def _jsonl_entry(
    line: int, raw: bytes, statuses: frozenset[str] | None
) -> ManifestEntry | None:
    """One ``results.jsonl`` line as an entry; ``None`` when not wanted."""
    try:
        record: Any = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return ManifestEntry(line, _NOWHERE, f"not a JSON object: {exc}")
    source = record.get("source") if isinstance(record, dict) else None
    if not isinstance(source, dict):
        return ManifestEntry(line, _NOWHERE, "no source object")
    bucket, key = source.get("bucket"), source.get("key")
    version = source.get("version_id")
    if not (
        isinstance(bucket, str)
        and isinstance(key, str)
        and isinstance(version, str | None)
    ):
        return ManifestEntry(
            line, _NOWHERE, "source bucket, key and version_id must be strings"
        )
    src = ObjectRef(bucket, key, version or None)
    status = record.get("status")
    if status not in STATUSES:
        return ManifestEntry(line, src, f"unknown status {status!r}")
    if statuses is not None and status not in statuses:
        return None
    if record.get("error_code") == INVALID_ROW:
        message = record.get("error_message")
        error = f"was an invalid row of the reported job's manifest: {message}"
        return ManifestEntry(line, src, error)
    if not bucket or not key:
        return ManifestEntry(line, src, "empty bucket or key")
    return ManifestEntry(line, src)


def _read_jsonl(path: Path, statuses: frozenset[str] | None) -> Iterator[ManifestEntry]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip():
                entry = _jsonl_entry(n, raw, statuses)
                if entry is not None:
                    yield entry


def _locate(manifest: Path, key: str) -> Path:
    """A listed result file: ``key`` is relative to the folder above the report
    (bulkcopy), else its basename is in ``results/`` beside the manifest (S3)."""
    here = manifest.parent
    candidates = [here.parent / key, here / "results" / key.rsplit("/", 1)[-1]]
    for c in candidates:
        if c.is_file():
            return c
    looked = " and ".join(str(c) for c in candidates)
    raise ManifestError(str(manifest), None, f"result file {key} not found ({looked})")


def _load_manifest(path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(
            str(path), None, f"not a readable report manifest: {exc}"
        ) from None
    return data


def _result_files(path: Path, statuses: frozenset[str] | None) -> list[Path]:
    """The wanted result CSVs of a report ``manifest.json``, found and checked."""
    data = _load_manifest(path)
    if not isinstance(data, dict) or data.get("Format") != REPORT_FORMAT:
        raise ManifestError(str(path), None, f"Format is not {REPORT_FORMAT}")
    results = data.get("Results")
    if not isinstance(results, list) or not all(
        isinstance(r, dict)
        and isinstance(r.get("Key"), str)
        and r.get("TaskExecutionStatus") in CSV_STATUSES
        for r in results
    ):
        raise ManifestError(
            str(path),
            None,
            "Results must list objects with a Key and a TaskExecutionStatus "
            "of succeeded or failed",
        )
    files = []
    for result in results:
        if statuses is not None and result["TaskExecutionStatus"] not in statuses:
            continue
        found = _locate(path, result["Key"])
        want = result.get("MD5Checksum")
        if want and md5_file(found) != want:
            raise ManifestError(
                str(found),
                None,
                f"MD5 checksum is not the {want} the report manifest gives "
                "(pass the CSV itself to read it as it is)",
            )
        files.append(found)
    return files


def _read_files(
    files: list[Path], statuses: frozenset[str] | None
) -> Iterator[ManifestEntry]:
    for path in files:
        yield from _read_csv(path, statuses, label=f"{path.name}: ")


def read_report(
    path: str, statuses: frozenset[str] | None = None
) -> Iterator[ManifestEntry]:
    """Stream the objects of a completion report whose status is in ``statuses``.

    Parameters
    ----------
    path:
        A report ``manifest.json``, the ``job-<id>/`` directory holding one,
        a result CSV, or a ``results.jsonl``.
    statuses:
        The task statuses wanted (``{"failed"}`` to re-run failures); ``None``
        for every row.

    Each entry's ``line`` is the row's line in its own file; errors of rows
    read through a manifest name that file.  Raises :class:`ManifestError`
    when the report cannot be used at all (missing, not a report, a listed
    file missing or not matching its checksum).
    """
    if statuses is not None and not statuses <= STATUSES:
        raise ValueError(f"unknown statuses {sorted(statuses - STATUSES)}")
    if not os.path.exists(path):
        raise ManifestError(path, None, "no such file")
    report = Path(path)
    if report.is_dir():
        report = report / "manifest.json"
        if not report.is_file():
            raise ManifestError(path, None, "is a directory without a manifest.json")
    if report.suffix == ".json":
        return _read_files(_result_files(report, statuses), statuses)
    if report.suffix == ".jsonl":
        return _read_jsonl(report, statuses)
    return _read_csv(report, statuses)


def _head(path: Path) -> str:
    with path.open("rb") as fh:
        return fh.read(_SNIFF_BYTES).decode("utf-8", "replace").removeprefix(_BOM)


def is_report(path: str) -> bool:
    """Whether ``path`` looks like a completion report, from its first bytes.

    A report ``manifest.json`` (or a directory holding one), a ``.jsonl``
    whose first line is a bulkcopy result, or a CSV whose first row has 7
    columns and a TaskStatus of succeeded or failed.
    """
    target = Path(path)
    try:
        if target.is_dir():
            target = target / "manifest.json"
        if target.suffix == ".json":
            data = json.loads(_head(target))
            return isinstance(data, dict) and data.get("Format") == REPORT_FORMAT
        head = _head(target)
        if target.suffix == ".jsonl":
            record = json.loads(head.split("\n", 1)[0])
            return (
                isinstance(record, dict)
                and isinstance(record.get("source"), dict)
                and record.get("status") in STATUSES
            )
        row = next((r for r in csv.reader(io.StringIO(head)) if r), [])
        return len(row) == 7 and row[3].strip() in CSV_STATUSES
    except (OSError, ValueError, csv.Error):
        return False
