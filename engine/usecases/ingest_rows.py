"""The hot loop of a submit: each batch of manifest rows filtered, its keys
mapped and its task rows built (:class:`Preparer`, :class:`RowBuilder`), with
the ingest's state (position, totals, source buckets) stored with each batch
(:class:`IngestState`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from engine.domain.codes import INVALID_ROW
from engine.domain.errors import ManifestError
from engine.domain.keys import KeyMapping, default_destination
from engine.domain.models import TaskStatus
from engine.domain.records import IngestTotals, TaskRows, key_hash
from engine.manifest.rows import Rows
from engine.manifest.sources import Source

MAX_TRACKED_SOURCE_BUCKETS = 100

PENDING = TaskStatus.PENDING.value
FAILED = TaskStatus.FAILED.value

Prepared = tuple[TaskRows, "IngestState"]


@dataclass(slots=True)
class IngestState:
    """What the ingest has done so far; stored with each batch."""

    position: dict[str, Any] = field(default_factory=dict)
    totals: IngestTotals = field(default_factory=IngestTotals)
    buckets: list[str] = field(default_factory=list)
    own_keys: bool = False  # some row names its own dst_key

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "totals": self.totals.to_dict(),
            "buckets": self.buckets,
            "own_keys": self.own_keys,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestState:
        return cls(
            position=dict(data.get("position", {})),
            totals=IngestTotals.from_dict(data.get("totals", {})),
            buckets=list(data.get("buckets", [])),
            own_keys=bool(data.get("own_keys")),
        )


class Preparer:
    """Filters a batch, maps its keys, builds its task rows, and keeps the
    ingest's totals (the hot loop of a submit)."""

    def __init__(
        self,
        job_id: str,
        mapping: KeyMapping,
        prefix: str,
        source: Source,
        state: IngestState,
    ) -> None:
        self.source = source
        self.state = state
        self.build = RowBuilder(job_id, mapping, prefix, source)
        self.buckets = dict.fromkeys(state.buckets)
        self.first = True

    def prepare(self, rows: Rows) -> TaskRows:
        source, state = self.source, self.state
        if self.first:
            source.filters.check(rows, source.location)
            self.first = False
        state.totals.read += len(rows)
        keep = source.filters.keep(rows)
        if keep is not None:
            state.totals.filtered += len(rows) - len(keep)
            rows = rows.take(keep)
        if not source.all_versions:
            rows.modified = None  # stored only to order versions
        task_rows, invalid, own = self.build.rows(rows, state.totals.read - len(rows))
        buckets = self.buckets
        if len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
            named = rows.buckets
            if rows.errors:
                named = [b for i, b in enumerate(named) if i not in rows.errors]
            for b in dict.fromkeys(named):  # first-seen order
                if len(buckets) < MAX_TRACKED_SOURCE_BUCKETS:
                    buckets.setdefault(b)
            state.buckets = list(buckets)
        state.totals.invalid += invalid
        state.own_keys = state.own_keys or own
        state.position = rows.position
        return task_rows


class RowBuilder:
    """Turns rows into task tuples (see :class:`TaskRows`): the hot loop."""

    def __init__(
        self, job_id: str, mapping: KeyMapping, prefix: str, source: Source
    ) -> None:
        self.job_id = job_id
        self.mapping = mapping
        self.prefix = prefix
        self.source = source
        # every key its prefix + source key: those are not stored (NULL)
        self.plain = mapping.default

    def rows(self, rows: Rows, before: int) -> tuple[TaskRows, int, bool]:
        """The task rows of ``rows`` (``before`` rows of the manifest came
        earlier), how many are malformed, and whether any names its own key.

        A batch of plain rows (no error, override or delete marker: nearly
        all of them) is built in the short form; a batch with any of those in
        the full one, so ids keep the manifest's order either way."""
        job_id, prefix = self.job_id, self.prefix
        sizes: Iterator[Any] = iter(rows.sizes) if rows.sizes else repeat(None)
        modified: Iterator[Any] = iter(rows.modified) if rows.modified else repeat(None)
        dst: list[str | None]
        if self.plain:  # prefix + key is not stored (NULL) but in full rows
            extras = bool(rows.errors or rows.overrides or rows.kinds)
            dst = (
                [default_destination(prefix, k) for k in rows.keys]
                if extras
                else [None] * len(rows)
            )
        else:
            dst = list(self._mapped(rows))  # may add errors
            extras = bool(rows.errors or rows.overrides or rows.kinds)
        columns = zip(
            rows.lines,
            rows.buckets,
            rows.keys,
            rows.versions,
            sizes,
            dst,
            modified,
            strict=False,
        )
        if not extras:
            return self._plain(rows, dst), 0, False
        full = [
            (
                job_id,
                n,
                b,
                k,
                v or "",
                0,
                s,
                d,
                None,
                PENDING,
                None,
                None,
                None,
                m,
                None,
                key_hash(k),
            )
            for n, b, k, v, s, d, m in columns
        ]
        return self._extras(rows, full, before)

    def _plain(self, rows: Rows, dst: list[str | None]) -> TaskRows:
        """Rows in the short form, with only the columns that hold something
        in this batch (each parameter bound costs, and a CSV manifest has no
        sizes, dates or versions): the others take their defaults."""
        names = ["job_id", "line", "src_bucket", "src_key"]
        values: list[Iterable[Any]] = [
            repeat(self.job_id),
            rows.lines,
            rows.buckets,
            rows.keys,
        ]
        optional: list[tuple[str, list[Any] | None]] = [
            ("src_version", rows.versions),
            ("size", rows.sizes),
            ("dst_key", dst),
            ("last_modified", rows.modified),
        ]
        for name, column in optional:
            if column is not None and any(v is not None for v in column):
                names.append(name)
                values.append(
                    [v or "" for v in column] if name == "src_version" else column
                )
        names.append("key_hash")
        values.append([key_hash(k) for k in rows.keys])
        if rows.etags is not None and any(rows.etags):
            names.append("src_etag")
            values.append(rows.etags)
        return TaskRows(
            plain=list(zip(*values, strict=False)), plain_columns=tuple(names)
        )

    def _mapped(self, rows: Rows) -> list[str]:
        out = []
        for i, key in enumerate(rows.keys):
            try:
                out.append(self.mapping.destination(rows.src(i)))
            except ValueError as exc:
                rows.errors.setdefault(i, str(exc))
                out.append(default_destination(self.prefix, key))
        return out

    def _extras(
        self, rows: Rows, out: list[tuple[Any, ...]], before: int
    ) -> tuple[TaskRows, int, bool]:
        own = False
        now = time.time()
        for i, kind in rows.kinds.items():
            t = list(out[i])
            t[14] = kind
            out[i] = tuple(t)
        for i, overrides in rows.overrides.items():
            t = list(out[i])
            t[8] = json.dumps(overrides)
            given = overrides.get("dst_key")
            if given:
                own = True
                t[7] = given
                t[5] = before + i + 1  # one source may go to several keys
            out[i] = tuple(t)
        for i, error in rows.errors.items():
            if rows.fatal == i or not self.source.skip_invalid:
                raise ManifestError(self.source.location, rows.lines[i], error)
            t = list(out[i])
            t[5] = before + i + 1  # never merged with another row
            t[9], t[10], t[11], t[12] = FAILED, INVALID_ROW, error, now
            t[2], t[3], t[7] = _clean(t[2]), _clean(t[3]), _clean(t[7])
            out[i] = tuple(t)
        return TaskRows(full=out), len(rows.errors), own


def _clean(value: str) -> str:
    """A malformed row's text as the database can store it (no lone surrogates)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8", "replace")
