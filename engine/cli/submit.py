"""``bulkcopy submit`` and ``bulkcopy copy``: a manifest in, a job out."""

from __future__ import annotations

from typing import Any

import click
import structlog

from engine.cli.app import (
    EXIT_CODES,
    SIZE,
    cli,
    client_options,
    db_option,
    log_options,
    run_options,
)
from engine.cli.common import client_overrides, open_repo, run_job, setup
from engine.copy.plan import MAX_COPY_OBJECT, MAX_PART_SIZE, MIN_PART_SIZE
from engine.errors import UsageError
from engine.models import Destination
from engine.s3.client import ClientSettings
from engine.spec import CopyOptions, JobSpec
from engine.store.repo import JobRecord, Repository
from engine.submit import submit

log = structlog.get_logger("bulkcopy")

MANIFEST_HELP = """\b
MANIFEST is an S3 Batch Operations CSV: no header (or the header
`bucket,key,version_id`), one `bucket,key[,versionId]` row per object, keys
URL-encoded (`a%2Bb+c` is the key `a+b c`).  Either every row has a version id
or none does.  Duplicate rows become one task.  A malformed row fails the
submit with FILE:LINE and writes nothing, unless --skip-invalid records it as
a failed task.  Each object goes to PREFIX + its source key."""


def submit_options(f: Any) -> Any:
    f = click.argument("manifest", type=click.Path(dir_okay=False))(f)
    f = click.option(
        "--to",
        "to",
        required=True,
        metavar="s3://BUCKET[/PREFIX]",
        help="Destination bucket and key prefix.",
    )(f)
    f = click.option(
        "--skip-invalid",
        is_flag=True,
        help="Record malformed manifest rows as failed tasks instead "
        "of refusing the manifest.",
    )(f)
    f = click.option(
        "--stat-source/--no-stat-source",
        default=True,
        show_default=True,
        help="HEAD each source first: records its size and pins the copy "
        "to the ETag seen (CopySourceIfMatch).",
    )(f)
    f = click.option(
        "--multipart-threshold",
        type=SIZE,
        default="5GiB",
        show_default=True,
        help="Objects larger than this are copied part by part "
        "(UploadPartCopy); 5MiB to 5GiB.",
    )(f)
    f = click.option(
        "--part-size",
        type=SIZE,
        default=None,
        help="Part size for multipart copies, 5MiB to 5GiB [default: 128MiB, "
        "raised when an object would need more than 10,000 parts].",
    )(f)
    f = click.option(
        "--preserve",
        "preserve",
        type=click.Choice(["acl"]),
        multiple=True,
        help="Also carry this property over, for CopyObject and multipart "
        "copies alike: 'acl' copies the source ACL (GetObjectAcl/PutObjectAcl). "
        "Repeatable.",
    )(f)
    f = click.option(
        "--verify",
        is_flag=True,
        help="Check each copy right after it is made: size, ETag (or checksum "
        "where ETags are not comparable), metadata and tags. A mismatch fails "
        "the task with VerificationFailed.",
    )(f)
    f = click.option(
        "--match-source-parts",
        is_flag=True,
        help="Copy a multipart source with its own part boundaries (read with "
        "HeadObject PartNumber) so the destination's ETag equals the source's.",
    )(f)
    f = click.option(
        "--preserve-tags/--no-preserve-tags",
        default=True,
        show_default=True,
        help="Multipart copies read the source's tags (s3:GetObjectTagging) "
        "and set them on the destination.",
    )(f)
    f = click.option(
        "--preserve-object-lock",
        is_flag=True,
        help="Multipart copies carry the source's object-lock mode, "
        "retain-until date and legal hold.",
    )(f)
    return f


def _copy_options(opts: dict[str, Any]) -> CopyOptions:
    threshold = opts["multipart_threshold"]
    if not MIN_PART_SIZE <= threshold <= MAX_COPY_OBJECT:
        raise UsageError("--multipart-threshold must be between 5MiB and 5GiB")
    part_size = opts["part_size"]
    if part_size is not None and not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise UsageError("--part-size must be between 5MiB and 5GiB")
    return CopyOptions(
        stat_source=opts["stat_source"],
        multipart_threshold=threshold,
        part_size=part_size,
        match_source_parts=opts["match_source_parts"],
        verify=opts["verify"],
        preserve_acl="acl" in opts["preserve"],
        preserve_tags=opts["preserve_tags"],
        preserve_object_lock=opts["preserve_object_lock"],
    )


def _submit(repo: Repository, opts: dict[str, Any]) -> JobRecord:
    spec = JobSpec(
        client=client_overrides(ClientSettings(), **opts),
        copy=_copy_options(opts),
    )
    job = submit(
        repo,
        opts["manifest"],
        Destination.parse(opts["to"]),
        spec,
        skip_invalid=opts["skip_invalid"],
    )
    log.info(
        "job_submitted",
        job_id=job.id,
        tasks=job.total_tasks,
        invalid_rows=job.invalid_rows,
        duplicate_rows=job.duplicate_rows,
        destination=f"s3://{job.dst_bucket}/{job.dst_prefix}",
        db=repo.url,
    )
    return job


@cli.command(
    "submit",
    help=f"""Load MANIFEST into a new job; print its id.

{MANIFEST_HELP}

Nothing is copied until `bulkcopy run JOB_ID`.
""",
)
@submit_options
@client_options
@db_option
@log_options
def submit_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    job = _submit(repo, opts)
    click.echo(job.id)


@cli.command(
    "copy",
    help=f"""Submit MANIFEST and run the job at once.

{MANIFEST_HELP}

The job id is logged first; if the copy is interrupted, `bulkcopy resume JOB_ID`
continues it.

{EXIT_CODES}""",
)
@submit_options
@run_options
@client_options
@db_option
@log_options
def copy_cmd(**opts: Any) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    repo = open_repo(opts["db"])
    job = _submit(repo, opts)
    click.echo(f"job {job.id}", err=True)
    raise SystemExit(run_job(repo, job, opts))
