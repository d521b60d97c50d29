"""What the destination object gets: every CopyObject option a user can set.

:class:`ObjectOptions` is stored with the job (so ``resume`` copies with the
very same options) and checked once, at submit, by :func:`validate`, which
names the option at fault.  It holds no secrets: SSE-C keys are named by where
they come from (``env:NAME`` or ``file:PATH``, see :mod:`engine.s3.sse_keys`) and
read only when a run starts.

The request arguments these options become are decided in
:mod:`engine.copy.request`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from engine.domain.content import CHECKSUM_ALGORITHMS
from engine.domain.errors import UsageError

CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
DIRECTIVES = ("COPY", "REPLACE")
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
LEGAL_HOLD = ("ON", "OFF")
# the headers a signature covers or a transport owns; --header may not set them
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "x-amz-copy-source",
        "x-amz-copy-source-range",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STORAGE_CLASS = re.compile(r"^[A-Z0-9_]+$")

# option name -> the S3 parameter it sets, for the content headers and metadata
CONTENT_HEADERS = {
    "content_type": "ContentType",
    "cache_control": "CacheControl",
    "content_disposition": "ContentDisposition",
    "content_encoding": "ContentEncoding",
    "content_language": "ContentLanguage",
    "expires": "Expires",
    "website_redirect_location": "WebsiteRedirectLocation",
}


def flag(name: str) -> str:
    """An option's name as the user writes it on the command line."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class ObjectOptions:
    """CopyObject options for every object of a job (``None``: not set)."""

    # access control
    acl: str | None = None
    grant_read: str | None = None
    grant_read_acp: str | None = None
    grant_write_acp: str | None = None
    grant_full_control: str | None = None
    # metadata and content headers (only with metadata_directive REPLACE)
    metadata_directive: str | None = None
    metadata: dict[str, str] | None = None
    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    expires: str | None = None  # ISO 8601
    website_redirect_location: str | None = None
    # tags (only with tagging_directive REPLACE)
    tagging_directive: str | None = None
    tags: dict[str, str] | None = None
    storage_class: str | None = None
    # encryption
    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_kms_encryption_context: dict[str, str] | None = None
    bucket_key_enabled: bool | None = None
    sse_c_key: str | None = None  # env:NAME | file:PATH, never the key
    source_sse_c_key: str | None = None
    checksum_algorithm: str | None = None
    # object lock
    object_lock_mode: str | None = None
    object_lock_retain_until_date: str | None = None  # ISO 8601
    object_lock_legal_hold: str | None = None
    # conditional copy, evaluated by S3 against the source
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None  # ISO 8601
    if_unmodified_since: str | None = None  # ISO 8601
    # ownership and billing
    expected_bucket_owner: str | None = None
    expected_source_bucket_owner: str | None = None
    request_payer: bool = False
    # IBM Cloud Object Storage retention (Immutable Object Storage)
    retention_directive: str | None = None
    retention_period: int | None = None  # seconds
    retention_expiration_date: str | None = None  # ISO 8601
    retention_legal_hold_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The options that differ from their defaults (what the job stores)."""
        defaults = {f.name: f.default for f in fields(self)}
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"unknown copy option {flag(unknown[0])}")
        return cls(**data)

    def replaces_metadata(self) -> bool:
        return self.metadata_directive == "REPLACE"

    def given_headers(self) -> dict[str, str]:
        """The content headers set here, as S3 parameter names."""
        out = {}
        for name, param in CONTENT_HEADERS.items():
            value = getattr(self, name)
            if value is not None:
                out[param] = value
        return out


def parse_time(value: str, option: str) -> datetime:
    """An ISO 8601 date or timestamp (UTC when no zone is given)."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag(option)}: {value!r} is not an ISO 8601 date "
            "(e.g. 2030-01-31 or 2030-01-31T12:00:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _choice(opts: ObjectOptions, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(opts, name)
    if value is not None and value not in allowed:
        raise UsageError(
            f"{flag(name)} must be one of {', '.join(allowed)}, got {value!r}"
        )


def _strings(value: Any, option: str) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise UsageError(f"{flag(option)} must map names to strings")


def validate(opts: ObjectOptions, *, now: datetime | None = None) -> None:
    """Refuse what S3 would refuse, or silently ignore, naming the option.

    Pure: SSE-C key sources are checked by :mod:`engine.s3.sse_keys`.
    """
    _choice(opts, "acl", CANNED_ACLS)
    _choice(opts, "metadata_directive", DIRECTIVES)
    _choice(opts, "tagging_directive", DIRECTIVES)
    _choice(opts, "sse", SSE_ALGORITHMS)
    _choice(opts, "checksum_algorithm", CHECKSUM_ALGORITHMS)
    _choice(opts, "object_lock_mode", LOCK_MODES)
    _choice(opts, "object_lock_legal_hold", LEGAL_HOLD)
    _choice(opts, "retention_directive", DIRECTIVES)

    grants = ("grant_read", "grant_read_acp", "grant_write_acp", "grant_full_control")
    if opts.acl and any(getattr(opts, g) for g in grants):
        raise UsageError("--acl cannot be combined with --grant-* options")

    if not opts.replaces_metadata():
        given = ["metadata"] if opts.metadata is not None else []
        given += [n for n in CONTENT_HEADERS if getattr(opts, n) is not None]
        if given:
            raise UsageError(
                f"{flag(given[0])} needs --metadata-directive REPLACE "
                "(with COPY, S3 keeps the source's and ignores it)"
            )
    if opts.metadata is not None:
        _strings(opts.metadata, "metadata")
    if opts.expires is not None:
        parse_time(opts.expires, "expires")
    wrl = opts.website_redirect_location
    if wrl is not None and not wrl.startswith(("/", "http://", "https://")):
        raise UsageError(
            "--website-redirect-location must start with /, http:// or https://"
        )

    if opts.tags is not None:
        if opts.tagging_directive != "REPLACE":
            raise UsageError(
                "--tag needs --tagging-directive REPLACE "
                "(with COPY, S3 keeps the source's tags and ignores them)"
            )
        _strings(opts.tags, "tag")
        if len(opts.tags) > 10:
            raise UsageError("--tag: S3 allows at most 10 tags per object")

    if opts.storage_class is not None and not _STORAGE_CLASS.match(opts.storage_class):
        raise UsageError(
            f"--storage-class {opts.storage_class!r} is not a storage class "
            "(e.g. STANDARD_IA, GLACIER_IR, INTELLIGENT_TIERING)"
        )

    kms = opts.sse in ("aws:kms", "aws:kms:dsse")
    for name in ("sse_kms_key_id", "sse_kms_encryption_context", "bucket_key_enabled"):
        if getattr(opts, name) is not None and not kms:
            raise UsageError(f"{flag(name)} needs --sse aws:kms or aws:kms:dsse")
    if opts.sse_kms_encryption_context is not None:
        _strings(opts.sse_kms_encryption_context, "sse_kms_encryption_context")
    if opts.sse and opts.sse_c_key:
        raise UsageError(
            "--sse and --sse-c-key are exclusive: an object has one encryption"
        )

    now = now or datetime.now(UTC)
    lock = (opts.object_lock_mode, opts.object_lock_retain_until_date)
    if any(lock) and not all(lock):
        raise UsageError(
            "--object-lock-mode and --object-lock-retain-until-date go together"
        )
    if opts.object_lock_retain_until_date is not None:
        until = parse_time(
            opts.object_lock_retain_until_date, "object_lock_retain_until_date"
        )
        if until <= now:
            raise UsageError("--object-lock-retain-until-date is in the past")

    for name in ("if_modified_since", "if_unmodified_since"):
        value = getattr(opts, name)
        if value is not None:
            parse_time(value, name)

    if opts.retention_period is not None and opts.retention_expiration_date:
        raise UsageError(
            "--retention-period and --retention-expiration-date are exclusive "
            "(IBM COS answers 400 to both)"
        )
    if opts.retention_period is not None and (
        not isinstance(opts.retention_period, int) or opts.retention_period < 0
    ):
        raise UsageError("--retention-period must be a whole number of seconds ≥ 0")
    if opts.retention_expiration_date is not None:
        parse_time(opts.retention_expiration_date, "retention_expiration_date")
    hold = opts.retention_legal_hold_id
    if hold is not None and not 0 < len(hold) <= 64:
        raise UsageError("--retention-legal-hold-id must be 1 to 64 characters")


def parse_headers(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``NAME:VALUE`` strings (``--header``) as a dict, refusing reserved names."""
    out: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name):
            raise UsageError(f"--header {raw!r}: expected NAME:VALUE")
        if name.lower() in RESERVED_HEADERS:
            raise UsageError(f"--header {name} is set by bulkcopy and cannot be given")
        out[name] = value
    return out


def validate_headers(headers: dict[str, str]) -> None:
    parse_headers([f"{k}:{v}" for k, v in headers.items()])
