"""Command-line flags for every CopyObject option (``ObjectOptions``).

One table: each entry is an option's field name and its click settings; the
flag is the field name with dashes.  ``--metadata KEY=VALUE`` and
``--tag KEY=VALUE`` repeat.  The same names work in a ``--spec`` file's
``[object]`` table.
"""

from __future__ import annotations

import json
from typing import Any

import click

from engine.domain.content import CHECKSUM_ALGORITHMS
from engine.domain.errors import UsageError
from engine.domain.options import (
    CANNED_ACLS,
    DIRECTIVES,
    LEGAL_HOLD,
    LOCK_MODES,
    SSE_ALGORITHMS,
)

GRANTEES = 'Grantees, e.g. id="CANONICAL_ID",uri="http://acs.amazonaws.com/groups/…".'
DATE = "DATE"

# (field, click.option kwargs); help order is this order
FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("storage_class", {"metavar": "CLASS", "help": "e.g. STANDARD_IA, GLACIER_IR."}),
    (
        "acl",
        {
            "type": click.Choice(CANNED_ACLS),
            "metavar": "ACL",
            "help": "Canned ACL of the copies: " + ", ".join(CANNED_ACLS) + ".",
        },
    ),
    ("grant_read", {"metavar": "GRANTEES", "help": GRANTEES}),
    ("grant_read_acp", {"metavar": "GRANTEES", "help": GRANTEES}),
    ("grant_write_acp", {"metavar": "GRANTEES", "help": GRANTEES}),
    ("grant_full_control", {"metavar": "GRANTEES", "help": GRANTEES}),
    (
        "metadata_directive",
        {
            "type": click.Choice(DIRECTIVES),
            "help": "COPY keeps the source's metadata and content headers; "
            "REPLACE sets exactly those given here.",
        },
    ),
    (
        "metadata",
        {
            "metavar": "KEY=VALUE",
            "multiple": True,
            "help": "User metadata (x-amz-meta-KEY), with REPLACE. Repeatable.",
        },
    ),
    ("content_type", {"metavar": "TYPE", "help": "With REPLACE."}),
    ("cache_control", {"metavar": "VALUE", "help": "With REPLACE."}),
    ("content_disposition", {"metavar": "VALUE", "help": "With REPLACE."}),
    ("content_encoding", {"metavar": "VALUE", "help": "With REPLACE."}),
    ("content_language", {"metavar": "VALUE", "help": "With REPLACE."}),
    ("expires", {"metavar": DATE, "help": "ISO 8601, with REPLACE."}),
    (
        "website_redirect_location",
        {"metavar": "URL", "help": "With REPLACE."},
    ),
    (
        "tagging_directive",
        {
            "type": click.Choice(DIRECTIVES),
            "help": "COPY keeps the source's tags; REPLACE sets those of --tag.",
        },
    ),
    (
        "tag",
        {
            "metavar": "KEY=VALUE",
            "multiple": True,
            "help": "A tag, with --tagging-directive REPLACE. Repeatable.",
        },
    ),
    ("sse", {"type": click.Choice(SSE_ALGORITHMS), "help": "Server-side encryption."}),
    ("sse_kms_key_id", {"metavar": "KEY_ID", "help": "KMS key, with --sse aws:kms."}),
    (
        "sse_kms_encryption_context",
        {"metavar": "JSON", "help": 'KMS encryption context, e.g. \'{"app":"x"}\'.'},
    ),
    (
        "bucket_key_enabled",
        {
            "flag": "--bucket-key-enabled/--no-bucket-key-enabled",
            "default": None,
            "help": "S3 Bucket Key for SSE-KMS.",
        },
    ),
    (
        "sse_c_key",
        {
            "metavar": "SOURCE",
            "help": "Encrypt copies with SSE-C, the key read from env:VAR "
            "(base64) or file:PATH (32 bytes); the key is never stored.",
        },
    ),
    (
        "source_sse_c_key",
        {"metavar": "SOURCE", "help": "SSE-C key of the sources (env:VAR/file:PATH)."},
    ),
    ("checksum_algorithm", {"type": click.Choice(CHECKSUM_ALGORITHMS)}),
    ("object_lock_mode", {"type": click.Choice(LOCK_MODES)}),
    ("object_lock_retain_until_date", {"metavar": DATE, "help": "ISO 8601."}),
    ("object_lock_legal_hold", {"type": click.Choice(LEGAL_HOLD)}),
    (
        "if_match",
        {"metavar": "ETAG", "help": "Copy only a source with this ETag."},
    ),
    (
        "if_none_match",
        {"metavar": "ETAG", "help": "Copy only a source without this ETag."},
    ),
    (
        "if_modified_since",
        {"metavar": DATE, "help": "Copy only sources modified since."},
    ),
    (
        "if_unmodified_since",
        {"metavar": DATE, "help": "Copy only sources not modified since."},
    ),
    (
        "expected_bucket_owner",
        {"metavar": "ACCOUNT", "help": "Fail unless the destination bucket's owner."},
    ),
    (
        "expected_source_bucket_owner",
        {"metavar": "ACCOUNT", "help": "Fail unless the source buckets' owner."},
    ),
    (
        "request_payer",
        {"is_flag": True, "default": None, "help": "Accept requester-pays charges."},
    ),
    (
        "retention_directive",
        {"type": click.Choice(DIRECTIVES), "help": "IBM COS: Retention-Directive."},
    ),
    (
        "retention_period",
        {"type": click.IntRange(0), "metavar": "SECONDS", "help": "IBM COS."},
    ),
    ("retention_expiration_date", {"metavar": DATE, "help": "IBM COS, ISO 8601."}),
    ("retention_legal_hold_id", {"metavar": "ID", "help": "IBM COS."}),
]
FIELD_OF_PARAM = {"tag": "tags"}


def object_options(f: Any) -> Any:
    """Add every flag of ``FLAGS`` to a command, in table order."""
    for name, settings in reversed(FLAGS):
        kwargs = dict(settings)
        decl = kwargs.pop("flag", "--" + name.replace("_", "-"))
        f = click.option(decl, name, **kwargs)(f)
    return f


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {raw!r}: expected KEY=VALUE")
        out[key] = value
    return out


def given_object_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The object options set on the command line, by field name."""
    out: dict[str, Any] = {}
    for name, _ in FLAGS:
        value = opts.get(name)
        if value is None or value == ():
            continue
        if name in ("metadata", "tag"):
            value = _pairs(value, "--" + name)
        elif name == "sse_kms_encryption_context":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--sse-kms-encryption-context is not JSON: {exc.msg}"
                ) from None
        out[FIELD_OF_PARAM.get(name, name)] = value
    return out
