"""Every error bulkcopy raises on purpose.

::

    BulkcopyError                 root; ``exit_code`` tells the CLI what to return
    ├── UsageError                bad option or argument                      (exit 2)
    │   └── JobControlRefused     pause/resume/cancel not allowed in the job's status
    ├── ManifestError             a manifest row or file is malformed         (exit 2)
    │   └── KeyConflict           two sources onto one key, or onto a source
    ├── JobNotFound               no job with that id                         (exit 2)
    ├── DatabaseError             the job database cannot be used             (exit 3)
    │   └── SchemaTooNew          written by a newer bulkcopy                 (exit 3)
    ├── JobCannotStart            pre-flight failed: bucket missing, no access,
    │                             no credentials                              (exit 3)
    └── S3Error                   one S3 call failed; carries code, HTTP status
                                  and what to do about it (``disposition``)

Library errors (botocore, aiohttp, SQLAlchemy) are converted to these at the
boundary with ``raise ... from exc``; nothing above this module sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.domain.classify import Disposition


class BulkcopyError(Exception):
    """Root of every error bulkcopy raises on purpose."""

    exit_code = 1


class UsageError(BulkcopyError):
    """An option or argument the user gave cannot be used."""

    exit_code = 2


class JobControlRefused(UsageError):
    """``pause``, ``resume`` or ``cancel`` is not allowed in the job's status;
    carries the facts (the CLI says what to do instead)."""

    def __init__(self, job_id: str, action: str, status: str) -> None:
        self.job_id = job_id
        self.action = action
        self.status = status
        super().__init__(f"cannot {action} job {job_id}: it is {status}")


class ManifestError(BulkcopyError):
    """A manifest cannot be read; names the file and, where known, the line."""

    exit_code = 2

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class KeyConflict(ManifestError):
    """A job's rows would overwrite each other at the destination: two source
    objects map to one key (``collision``), or one would be copied onto
    another source object of the job (not ``collision``).  The reason states
    the facts; the submit adds what to change."""

    def __init__(self, source: str, reason: str, *, collision: bool) -> None:
        self.collision = collision
        super().__init__(source, None, reason)


class JobNotFound(BulkcopyError):
    """No job with the given id exists in the database."""

    exit_code = 2


class DatabaseError(BulkcopyError):
    """The job database cannot be opened, migrated or written."""

    exit_code = 3


class SchemaTooNew(DatabaseError):
    """The database was migrated by a newer bulkcopy than this one."""


class JobCannotStart(BulkcopyError):
    """The job's pre-flight checks failed; no task was attempted."""

    exit_code = 3


class S3Error(BulkcopyError):
    """One S3 call failed.

    Parameters
    ----------
    code:
        The S3 error code (``NoSuchKey``, ``SlowDown``) or one of ours
        (``ConnectionError``, ``EmptyResponse``, ``MissingETag``).
    message:
        Human-readable detail, never containing secrets.
    http_status:
        The HTTP status S3 answered with, ``None`` when no answer came.
    disposition:
        What to do about it: retry, back off harder, or give up.
    """

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int | None,
        disposition: Disposition,
        operation: str = "",
        sdk_retries: int = 0,
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.disposition = disposition
        self.operation = operation
        # the SDK sent the request this many times more before this answer
        # (an earlier send may have been carried out, its answer lost)
        self.sdk_retries = sdk_retries
        super().__init__(f"{operation}: {code}: {message}" if operation else message)
