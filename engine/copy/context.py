"""What every copy of a run shares (:class:`CopyContext`), and where a move
records its copy before deleting the source (:class:`MoveLog`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.copy.budget import ByteBudget
from engine.copy.request import Requests
from engine.copy.upload import PartLog
from engine.domain.models import CopyRecord, Task
from engine.domain.spec import CopyOptions
from engine.s3.quirks import Quirks


class MoveLog(Protocol):
    """Where a move records its copy before deleting the source (the worker)."""

    async def copied(self, task: Task, record: CopyRecord) -> bool:
        """Record it durably; ``False`` when the task is no longer ours."""
        ...


@dataclass(frozen=True, slots=True)
class CopyContext:
    """What every copy in a run shares."""

    client: Any
    dst_bucket: str
    options: CopyOptions
    part_log: PartLog
    part_slots: asyncio.Semaphore
    stopping: asyncio.Event
    requests: Requests = field(default_factory=Requests)
    # refresh the credentials now (an ExpiredToken answer); False: cannot
    refresh_credentials: Callable[[], Awaitable[bool]] | None = None
    # a move (--delete-source): where the copy is recorded before the delete
    move_log: MoveLog | None = None
    # a move: the source buckets that keep versions (engine.run.preflight.check_move)
    versioned_sources: frozenset[str] = frozenset()
    # what the store was found not to do, this run (engine.s3.quirks)
    quirks: Quirks = field(default_factory=Quirks)
    # the client that reads the sources when it is not ``client`` (another
    # service or identity: engine.run.jobclient.open_source)
    source_client: Any = None
    # read each source and write it (engine.copy.stream), not CopyObject
    stream: bool = False
    # bytes of streamed bodies held at once (engine.copy.budget)
    budget: ByteBudget | None = None
    # every body goes with its Content-MD5 (--content-md5: IBM COS protected
    # buckets), even where a CRC would do (engine.copy.stream.with_md5)
    content_md5: bool = False

    @property
    def src(self) -> Any:
        """The client that reads (and, for a move, deletes) the sources."""
        return self.client if self.source_client is None else self.source_client
