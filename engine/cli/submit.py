"""``bulkcopy submit`` and ``bulkcopy copy``: a manifest in, a job out."""

from __future__ import annotations

import os
from collections.abc import Callable
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
from engine.cli.common import (
    client_opener,
    client_overrides,
    ingest_progress,
    open_repo,
    run_job,
    setup,
)
from engine.cli.estimate import print_estimate
from engine.cli.object_options import given_object_options, object_options
from engine.copy.skip import POLICIES
from engine.domain.errors import UsageError
from engine.domain.keys import KeyMapping, check_template
from engine.domain.models import Destination
from engine.domain.options import (
    ObjectOptions,
    parse_headers,
    parse_time,
    validate,
    validate_headers,
)
from engine.domain.plan import MAX_COPY_OBJECT, MAX_PART_SIZE, MIN_PART_SIZE
from engine.domain.records import JobRecord
from engine.domain.spec import ClientSettings, CopyOptions, JobSpec
from engine.domain.units import parse_size
from engine.manifest.filters import Filters
from engine.manifest.sources import Source, detect_kind
from engine.run import loop
from engine.s3.sse_keys import load_keys
from engine.store import Repository
from engine.usecases.specfile import load_spec_file
from engine.usecases.submit import dry_run, submit_source

log = structlog.get_logger("bulkcopy")

MANIFEST_HELP = """\b
MANIFEST is a local path or an s3:// URI of one of:
  - an S3 Batch Operations CSV (see below);
  - an S3 Inventory report's manifest.json (CSV, ORC or Parquet; each data
    file's MD5 is checked; latest versions only unless --all-versions);
  - a completion report of an earlier job (bulkcopy's or S3 Batch
    Operations'; --only-status picks its rows).
Or, instead of a MANIFEST, --from s3://BUCKET/PREFIX lists the source.

A Batch Operations CSV has one `bucket,key[,versionId]` row per object and no
header (or the header `bucket,key,version_id`); keys are URL-encoded
(`a%2Bb+c` is the key `a+b c`); either every row has a version id or none
does.  Duplicate rows become one task.  A malformed row fails the submit with
FILE:LINE and leaves nothing behind, unless --skip-invalid records it as a
failed task.  Each object goes to PREFIX + its source key (see --key-template,
--strip-prefix).

A header row may name more columns, each overriding one thing for its row's
object: dst_key, storage_class, metadata (JSON), tags (JSON), content_type,
cache_control, content_disposition, content_encoding, content_language,
expires, acl (see the README).

Rows are read and stored 10,000 at a time.  If the submit is killed, run the
same command again: it continues where it stopped (a manifest that changed
since is refused; --restart starts over).

Every CopyObject option has a flag below, and all of them can also be set in a
--spec file (manifests/job.toml is a commented example).  The options are
stored with the job: `resume` copies with exactly the same ones."""


def submit_options(f: Any) -> Any:
    """The options of ``submit`` and ``copy``, listed in --help in this order."""
    decorators: list[Callable[[Any], Any]] = [
        click.argument("manifest", required=False, metavar="[MANIFEST]"),
        click.option(
            "--from",
            "from_",
            metavar="s3://BUCKET[/PREFIX]",
            help="List the source instead of reading a manifest (ListObjectsV2, "
            "or ListObjectVersions with --all-versions); resumable.",
        ),
        click.option(
            "--to",
            "to",
            metavar="s3://BUCKET[/PREFIX]",
            help="Destination bucket and key prefix (required here or in --spec).",
        ),
        click.option(
            "--priority",
            type=int,
            default=0,
            show_default=True,
            help="Workers without --job take jobs of higher priority first "
            "(then older first).",
        ),
        click.option(
            "--spec",
            "spec_file",
            metavar="FILE.toml",
            type=click.Path(dir_okay=False),
            help="Job spec file with any of these options (see "
            "manifests/job.toml); flags given here win over it.",
        ),
        click.option(
            "--key-template",
            metavar="TEMPLATE",
            help="Destination key under the prefix, from {key} {basename} "
            "{dirname} {stem} {ext} {bucket} {version_id}  [default: {key}].",
        ),
        click.option(
            "--strip-prefix",
            metavar="PREFIX",
            help="Remove PREFIX from each source key before mapping it.",
        ),
        click.option(
            "--all-versions",
            is_flag=True,
            help="Copy every version, not only the latest: each key's versions "
            "are copied oldest first, so the destination's history has the "
            "source's order (the destination bucket should be versioned).",
        ),
        click.option(
            "--delete-markers",
            is_flag=True,
            help="With --all-versions: recreate delete markers, in order.",
        ),
        click.option(
            "--include-prefix",
            metavar="PREFIX",
            multiple=True,
            help="Only keys starting with PREFIX (repeatable: any of them).",
        ),
        click.option(
            "--exclude-prefix",
            metavar="PREFIX",
            multiple=True,
            help="Leave out keys starting with PREFIX (repeatable).",
        ),
        click.option(
            "--min-size", type=SIZE, help="Only objects of at least SIZE bytes."
        ),
        click.option(
            "--max-size", type=SIZE, help="Only objects of at most SIZE bytes."
        ),
        click.option(
            "--modified-after",
            metavar="DATE",
            help="Only objects last modified at or after DATE (ISO 8601, UTC "
            "unless a zone is given).",
        ),
        click.option(
            "--modified-before",
            metavar="DATE",
            help="Only objects last modified before DATE.",
        ),
        click.option(
            "--source-storage-class",
            "storage_classes",
            metavar="CLASS",
            multiple=True,
            help="Only objects the manifest lists in this storage class "
            "(repeatable; --storage-class sets the copies' class).",
        ),
        click.option(
            "--only-status",
            "only_status",
            type=click.Choice(["succeeded", "failed", "skipped"]),
            multiple=True,
            help="With a completion report as MANIFEST: only its rows of this "
            "status (repeatable) [default: all rows].",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Read the manifest and print what the job would hold (objects, "
            "bytes, multipart copies, requests); write nothing.",
        ),
        click.option(
            "--restart",
            is_flag=True,
            help="Discard an interrupted submit of the same manifest and "
            "destination and start over (otherwise it is resumed).",
        ),
        click.option(
            "--skip-invalid",
            is_flag=True,
            help="Record malformed manifest rows as failed tasks instead "
            "of refusing the manifest.",
        ),
        click.option(
            "--stat-source/--no-stat-source",
            default=True,
            show_default=True,
            help="HEAD each source first: records its size and pins the copy "
            "to the ETag seen (CopySourceIfMatch).",
        ),
        click.option(
            "--skip-existing",
            type=click.Choice(POLICIES),
            default="never",
            show_default=True,
            help="HEAD the destination first and skip objects already there: "
            "same-etag (same size and ETag; the size alone when ETags cannot be "
            "compared: multipart, SSE-KMS, SSE-C), same-size, newer "
            "(destination at least as new). Skipped objects are counted and "
            "reported as skipped, DestinationExists; not a failure.",
        ),
        click.option(
            "--multipart-threshold",
            type=SIZE,
            default="5GiB",
            show_default=True,
            help="Objects larger than this are copied part by part "
            "(UploadPartCopy); 5MiB to 5GiB.",
        ),
        click.option(
            "--part-size",
            type=SIZE,
            default=None,
            help="Part size for multipart copies, 5MiB to 5GiB [default: 128MiB, "
            "raised when an object would need more than 10,000 parts].",
        ),
        click.option(
            "--match-source-parts",
            is_flag=True,
            help="Copy a multipart source with its own part boundaries (read "
            "with HeadObject PartNumber) so the destination's ETag equals the "
            "source's.",
        ),
        click.option(
            "--preserve-tags/--no-preserve-tags",
            default=True,
            show_default=True,
            help="Multipart copies read the source's tags (s3:GetObjectTagging) "
            "and set them on the destination.",
        ),
        click.option(
            "--preserve-object-lock",
            is_flag=True,
            help="Multipart copies carry the source's object-lock mode, "
            "retain-until date and legal hold.",
        ),
        click.option(
            "--preserve",
            "preserve",
            type=click.Choice(["acl"]),
            multiple=True,
            help="Also carry this property over, for CopyObject and multipart "
            "copies alike: 'acl' copies the source ACL "
            "(GetObjectAcl/PutObjectAcl). Repeatable.",
        ),
        click.option(
            "--verify",
            is_flag=True,
            help="Check each copy right after it is made: size, ETag (or "
            "checksum where ETags are not comparable), metadata and tags. A "
            "mismatch fails the task with VerificationFailed.",
        ),
        click.option(
            "--delete-source",
            is_flag=True,
            help="Move: once an object's copy is recorded and verified (size, "
            "and ETag or checksum), delete its source (that version). A source "
            "is never deleted without a verified copy; a delete that fails "
            "keeps the source and fails the task. Same as `bulkcopy move`.",
        ),
        object_options,
        click.option(
            "--header",
            "header",
            metavar="NAME:VALUE",
            multiple=True,
            help="Extra request header sent (and signed) with every S3 request, "
            "for S3-compatible stores. Repeatable.",
        ),
    ]
    for decorate in reversed(decorators):
        f = decorate(f)
    return f


COPY_FIELDS = (
    "stat_source",
    "skip_existing",
    "multipart_threshold",
    "part_size",
    "match_source_parts",
    "preserve_tags",
    "preserve_object_lock",
    "verify",
    "delete_source",
)


def _given(name: str) -> bool:
    """Whether option ``name`` was typed on the command line (not a default)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) not in (
        None,
        click.core.ParameterSource.DEFAULT,
        click.core.ParameterSource.DEFAULT_MAP,
    )


def _copy_options(opts: dict[str, Any], file: dict[str, Any]) -> CopyOptions:
    values: dict[str, Any] = {}
    for name in COPY_FIELDS:
        values[name] = opts[name] if _given(name) else file.get(name, opts[name])
    if opts.get("move"):  # `bulkcopy move`
        values["delete_source"] = True
    for name in ("multipart_threshold", "part_size"):
        if isinstance(values[name], str):
            try:
                values[name] = parse_size(values[name])
            except ValueError as exc:
                raise UsageError(f"--{name.replace('_', '-')}: {exc}") from None
    preserve = opts["preserve"] if _given("preserve") else file.get("preserve", ())
    threshold = values["multipart_threshold"]
    if not MIN_PART_SIZE <= threshold <= MAX_COPY_OBJECT:
        raise UsageError("--multipart-threshold must be between 5MiB and 5GiB")
    part_size = values["part_size"]
    if part_size is not None and not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise UsageError("--part-size must be between 5MiB and 5GiB")
    if values["skip_existing"] not in POLICIES:
        raise UsageError(
            f"skip_existing: {values['skip_existing']!r} is not one of "
            f"{', '.join(POLICIES)}"
        )
    if values["delete_source"] and values["skip_existing"] in ("same-size", "newer"):
        raise UsageError(
            f"--skip-existing {values['skip_existing']} cannot vouch for a move: "
            "a source is deleted only when its copy is verified (use same-etag)"
        )
    unknown = set(preserve) - {"acl"}
    if unknown:
        raise UsageError(f"--preserve: unknown property {sorted(unknown)[0]!r}")
    return CopyOptions(**values, preserve_acl="acl" in preserve)


def _object_options(opts: dict[str, Any], file: dict[str, Any]) -> ObjectOptions:
    values = {**file, **given_object_options(opts)}
    obj = ObjectOptions.from_dict(values)
    validate(obj)
    # read the keys now so a wrong one fails the submit; they are not kept
    load_keys(obj.sse_c_key, obj.source_sse_c_key)
    return obj


def build_spec(opts: dict[str, Any]) -> tuple[Destination, JobSpec]:
    """The destination and spec of a new job, from --spec and the flags."""
    file = load_spec_file(opts["spec_file"]) if opts.get("spec_file") else {}
    to = opts["to"] or file.get("to")
    if not to:
        raise UsageError("--to is required (on the command line or in --spec)")
    client_file = {k: v for k, v in file.get("client", {}).items() if v is not None}
    client = client_overrides(ClientSettings.from_dict(client_file), **opts)
    template = opts["key_template"] or file.get("key_template") or "{key}"
    check_template(template)
    keys = KeyMapping(
        strip_prefix=opts["strip_prefix"] or file.get("strip_prefix") or "",
        template=template,
    )
    headers = {**file.get("headers", {}), **parse_headers(opts["header"])}
    validate_headers(headers)
    spec = JobSpec(
        client=client,
        copy=_copy_options(opts, file.get("copy", {})),
        object=_object_options(opts, file.get("object", {})),
        keys=keys,
        headers=headers,
    )
    return Destination.parse(to), spec


def build_source(opts: dict[str, Any]) -> Source:
    """Where the job's rows come from, from MANIFEST / --from and the filters."""
    manifest: str = opts.get("manifest") or ""
    listing: str = opts.get("from_") or ""
    if bool(manifest) == bool(listing):
        raise UsageError("give either a MANIFEST or --from s3://BUCKET[/PREFIX]")
    if opts.get("delete_markers") and not opts.get("all_versions"):
        raise UsageError("--delete-markers needs --all-versions")
    after, before = opts.get("modified_after"), opts.get("modified_before")
    filters = Filters(
        include_prefixes=tuple(opts.get("include_prefix") or ()),
        exclude_prefixes=tuple(opts.get("exclude_prefix") or ()),
        min_size=opts.get("min_size"),
        max_size=opts.get("max_size"),
        modified_after=parse_time(after, "modified_after").timestamp()
        if after
        else None,
        modified_before=parse_time(before, "modified_before").timestamp()
        if before
        else None,
        storage_classes=tuple(c.upper() for c in opts.get("storage_classes") or ()),
    )
    kind = "listing" if listing else detect_kind(manifest)
    if manifest and not manifest.startswith("s3://"):
        # stored with the job: `run` from another directory finds it
        manifest = os.path.abspath(manifest)
    if opts.get("only_status") and kind != "report":
        raise UsageError("--only-status applies to a completion report as MANIFEST")
    if opts.get("all_versions") and kind not in ("listing", "inventory"):
        raise UsageError(
            "--all-versions needs an S3 Inventory report or a listing (--from)"
        )
    return Source(
        kind=kind,
        location=listing or manifest,
        all_versions=bool(opts.get("all_versions")),
        delete_markers=bool(opts.get("delete_markers")),
        statuses=tuple(opts.get("only_status") or ()),
        filters=filters,
        skip_invalid=bool(opts.get("skip_invalid")),
    )


def _submit(repo: Repository, opts: dict[str, Any]) -> JobRecord:
    source = build_source(opts)
    destination, spec = build_spec(opts)
    job = loop.run(
        submit_source(
            repo,
            source,
            destination,
            spec,
            restart=opts["restart"],
            priority=opts.get("priority") or 0,
            open_client=client_opener(opts),
            on_batch=ingest_progress(source.location),
        )
    )
    log.info(
        "job_submitted",
        job_id=job.id,
        source=source.describe(),
        tasks=job.total_tasks,
        invalid_rows=job.invalid_rows,
        duplicate_rows=job.duplicate_rows,
        filtered_rows=job.filtered_rows,
        destination=f"s3://{job.dst_bucket}/{job.dst_prefix}",
        db=repo.url,
    )
    return job


def _dry_run(opts: dict[str, Any]) -> None:
    source = build_source(opts)
    destination, spec = build_spec(opts)
    estimate = loop.run(dry_run(source, spec, open_client=client_opener(opts)))
    print_estimate(estimate, source, destination, opts.get("log_format") == "json")


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
    if opts["dry_run"]:
        _dry_run(opts)
        return
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
    _copy_and_run(opts)


def _copy_and_run(opts: dict[str, Any]) -> None:
    setup(opts["log_format"], opts["verbose"], opts["quiet"])
    if opts["dry_run"]:
        _dry_run(opts)
        return
    repo = open_repo(opts["db"])
    job = _submit(repo, opts)
    click.echo(f"job {job.id}", err=True)
    raise SystemExit(run_job(repo, job, opts))


MOVE_HELP = """Move the objects of MANIFEST: copy each one, then delete its source.

\b
  bulkcopy move manifests/example.csv --to s3://dst-bucket/prefix/
  bulkcopy move --from s3://old-bucket/logs/ --to s3://new-bucket/logs/ \\
      --skip-existing same-etag

`bulkcopy copy --delete-source`, with the same options.  For each object, in
this order: the copy is made (pinned to the source's ETag) and recorded in the
job; the source and the copy are HEADed and compared (size, and ETag where
both are MD5s, else a checksum both carry, else the source's ETag the copy was
pinned to); only then is the source deleted: the version copied, when the
source is versioned (no delete marker is added).  Anything else keeps the
source and fails the task with the reason (VerificationFailed, SourceChanged,
the delete's own error); its copy stays recorded.  A run killed between a copy
and its delete resumes to the delete.  With --skip-existing same-etag an
object the destination already holds (same size and ETag) is not copied
again, and its source is deleted.

Moving an object onto itself fails (SameObject).  Needs s3:DeleteObject (and
s3:DeleteObjectVersion) on the sources.

{manifest}

{exits}"""


@cli.command(
    "move",
    help=MOVE_HELP.format(manifest=MANIFEST_HELP, exits=EXIT_CODES),
)
@submit_options
@run_options
@client_options
@db_option
@log_options
def move_cmd(**opts: Any) -> None:
    _copy_and_run({**opts, "move": True})
