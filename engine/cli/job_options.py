"""The flags of ``submit``, ``copy`` and ``move`` — what to copy, where, and
how — in the order ``--help`` lists them, and the help text on manifests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from engine.cli.app import SIZE
from engine.cli.object_options import object_options
from engine.domain.spec import SKIP_POLICIES, TRANSFER_MODES

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
            type=click.Choice(SKIP_POLICIES),
            default="never",
            show_default=True,
            help="HEAD the destination first and skip objects already there: "
            "same-etag (same size and ETag, else a checksum both carry; the size "
            "alone when neither can tell: SSE-KMS, SSE-C), same-size, newer "
            "(destination at least as new). Skipped objects are counted and "
            "reported as skipped, DestinationExists; not a failure.",
        ),
        click.option(
            "--transfer",
            type=click.Choice(TRANSFER_MODES),
            default="auto",
            show_default=True,
            help="server: CopyObject / UploadPartCopy, the store copies by "
            "itself. stream: GetObject from the source, PutObject / UploadPart "
            "to the destination, each body checked by MD5 and checksum; for "
            "sources on another service or readable only by another identity. "
            "auto: server when the source client (--source-*) is the "
            "destination's endpoint and access key, else stream.",
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
