"""``bulkcopy submit`` and ``bulkcopy copy``: a manifest in, a job out."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
import structlog

from engine.cli.app import (
    EXIT_CODES,
    cli,
    client_options,
    db_option,
    log_options,
    run_options,
    source_client_options,
)
from engine.cli.common import (
    client_opener,
    client_overrides,
    ingest_progress,
    make_worker,
    open_repo,
    run_job,
    run_worker,
    setup,
    source_overrides,
)
from engine.cli.estimate import print_estimate
from engine.cli.job_options import MANIFEST_HELP, submit_options
from engine.cli.object_options import given_object_options
from engine.domain.errors import UsageError
from engine.domain.keys import KeyMapping
from engine.domain.models import Destination, JobCounts, JobStatus
from engine.domain.options import (
    ObjectOptions,
    parse_headers,
    parse_time,
)
from engine.domain.records import JobRecord
from engine.domain.spec import COPY_FLAGS, ClientSettings, CopyOptions, JobSpec
from engine.domain.units import parse_size
from engine.manifest.filters import Filters
from engine.manifest.sources import Source, detect_kind
from engine.run import loop
from engine.run.loading import Loading
from engine.run.worker import Worker
from engine.s3.sse_keys import load_keys
from engine.store import Repository
from engine.usecases.dry_run import dry_run
from engine.usecases.specfile import load_spec_file
from engine.usecases.submit import (
    copies_while_listing,
    submit_and_run,
    submit_source,
)

log = structlog.get_logger("bulkcopy")


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
    for name in COPY_FLAGS:
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
    unknown = set(preserve) - {"acl"}
    if unknown:
        raise UsageError(f"--preserve: unknown property {sorted(unknown)[0]!r}")
    return CopyOptions(**values, preserve_acl="acl" in preserve)


def _object_options(opts: dict[str, Any], file: dict[str, Any]) -> ObjectOptions:
    values = {**file, **given_object_options(opts)}
    obj = ObjectOptions.from_dict(values)
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
    source_file = file.get("source_client")
    source = source_overrides(
        ClientSettings.from_dict(source_file) if source_file else None, **opts
    )
    template = opts["key_template"] or file.get("key_template") or "{key}"
    keys = KeyMapping(
        strip_prefix=opts["strip_prefix"] or file.get("strip_prefix") or "",
        template=template,
    )
    headers = {**file.get("headers", {}), **parse_headers(opts["header"])}
    spec = JobSpec(
        client=client,
        copy=_copy_options(opts, file.get("copy", {})),
        object=_object_options(opts, file.get("object", {})),
        keys=keys,
        headers=headers,
        source_client=source,
    )
    spec.validate()
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
    job: JobRecord = loop.run(
        submit_source(repo, source, destination, spec, **_ingest_options(opts, source))
    )
    _submitted(repo, job, source)
    return job


def _ingest_options(opts: dict[str, Any], source: Source) -> dict[str, Any]:
    """How a submit reads ``source`` into its job, from the command line."""
    return {
        "restart": opts["restart"],
        "priority": opts.get("priority") or 0,
        "open_client": client_opener(opts),
        "on_batch": ingest_progress(source.location),
    }


def _submitted(repo: Repository, job: JobRecord, source: Source) -> None:
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
@source_client_options
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
@source_client_options
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
    source = build_source(opts)
    destination, spec = build_spec(opts)
    if copies_while_listing(source, destination, spec):
        raise SystemExit(_copy_while_listing(repo, source, destination, spec, opts))
    job = _submit(repo, opts)
    click.echo(f"job {job.id}", err=True)
    raise SystemExit(run_job(repo, job, opts))


def _copy_while_listing(
    repo: Repository,
    source: Source,
    destination: Destination,
    spec: JobSpec,
    opts: dict[str, Any],
) -> int:
    """``copy --from``: copy each page of the listing as soon as it is
    stored, instead of after the last page (engine.usecases.submit)."""

    async def start(
        observer: Any, adopt: Callable[[Worker], Worker]
    ) -> tuple[str, JobCounts]:
        def runner(job: JobRecord, loading: Loading) -> Worker:
            click.echo(f"job {job.id}", err=True)
            return adopt(make_worker(repo, job, opts, observer, loading=loading))

        job, counts = await submit_and_run(
            repo, source, destination, spec, runner, **_ingest_options(opts, source)
        )
        if job.status is not JobStatus.INGESTING:
            _submitted(repo, job, source)
        return job.id, counts

    return run_worker(repo, opts, start)


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
@source_client_options
@db_option
@log_options
def move_cmd(**opts: Any) -> None:
    _copy_and_run({**opts, "move": True})
