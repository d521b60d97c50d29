"""Repository: every read and write of the job database goes through here.

One class, composed of one mixin per concern over
:class:`~engine.store.base.RepositoryBase` (the engine and the retry on a
lost connection, :mod:`engine.store.reconnect`):

=========================  =====================================================
:mod:`engine.store.jobs`   look jobs up, change their status (pause, cancel, …)
:mod:`engine.store.ingest` create a job, load its tasks, finish the ingest
:mod:`~engine.store.claims`   claim tasks under a lease, give them back
:mod:`~engine.store.recording` record results (fenced), moves' copies
:mod:`engine.store.workers`  worker rows, heartbeats, dead workers' tasks
:mod:`engine.store.uploads`  the multipart ledger (uploads and their parts)
:mod:`engine.store.reads`  counts, error counts, results for status and reports
=========================  =====================================================

Rows become records (:mod:`engine.domain.records`) in one place,
:mod:`engine.store.rows`, by column name.  Writes are batched: tasks are
inserted in batches inside one transaction per batch, claims take many tasks
in one statement, and results are recorded in group commits.  A claim sets
``owner`` and a lease; a result is only recorded while the recorder still
owns the task (fencing), so a worker that lost its claim cannot overwrite
the new owner's result.
"""

from __future__ import annotations

from engine.store.claims import ClaimsMixin
from engine.store.ingest import IngestMixin
from engine.store.reads import ReadsMixin
from engine.store.recording import RecordingMixin
from engine.store.uploads import UploadsMixin
from engine.store.workers import WorkersMixin


class Repository(
    IngestMixin,
    ReadsMixin,
    ClaimsMixin,
    RecordingMixin,
    WorkersMixin,
    UploadsMixin,
):
    """The job database.  Thread-compatible; the engine calls it from one thread.

    Every call survives a lost connection (see :mod:`engine.store.reconnect`):
    ``on_reconnect(what, error, delay)`` hears of each retry.
    """
