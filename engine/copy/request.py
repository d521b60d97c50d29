"""The arguments each S3 call of a copy carries: pure, from the job's options.

:class:`Requests` is built once per run from the job's
:class:`~engine.domain.options.ObjectOptions` and its SSE-C keys, and answers, for
each call a copy makes, the extra arguments it needs: ownership checks,
requester-pays, SSE-C keys (source and destination), conditions, and what the
destination object gets.

Metadata rules, the same for CopyObject and for multipart copies:

- ``metadata_directive`` COPY (the default): the source's metadata and
  content headers are kept.
- REPLACE: the destination gets exactly the metadata and headers given, as
  with S3 itself (a header not given is absent).
- A per-object override from the manifest, and an in-place copy (same bucket
  and key, which S3 refuses without a change), change only what they name:
  everything else is carried from the source's HEAD.

Storage class and encryption (SSE-S3, SSE-KMS with its key) are carried from
the source's HEAD on both paths, unless an option sets them; CopyObject
without a HEAD (``--no-stat-source``) leaves them to S3's defaults.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.copy.properties import (
    CONTENT_HEADERS,
    create_upload_args,
    storage_and_encryption,
    tagging_value,
)
from engine.domain.options import CONTENT_HEADERS as OPTION_HEADERS
from engine.domain.options import ObjectOptions, parse_time
from engine.s3.sse_keys import Keys

# per-object override columns of a manifest -> S3 parameter names: the
# content headers (a website redirect is not a per-object column)
OVERRIDE_HEADERS = {
    name: param
    for name, param in OPTION_HEADERS.items()
    if name != "website_redirect_location"
}
_SSE_PARAMS = ("ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled")

# IBM COS retention: option name -> the header IBM's SDK sends
IBM_RETENTION_HEADERS = {
    "retention_directive": "Retention-Directive",
    "retention_period": "Retention-Period",
    "retention_expiration_date": "Retention-Expiration-Date",
    "retention_legal_hold_id": "Retention-Legal-Hold-ID",
}


def _sse_c(key: bytes | None, prefix: str = "") -> dict[str, Any]:
    """SSE-C arguments; botocore base64-encodes the key and adds its MD5."""
    if key is None:
        return {}
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": key}


def _tags(tags: dict[str, str]) -> str:
    return tagging_value([{"Key": k, "Value": v} for k, v in tags.items()])


def source_properties(head: dict[str, Any]) -> dict[str, Any]:
    """The source's user metadata and content headers, from its HEAD."""
    out: dict[str, Any] = {"Metadata": dict(head.get("Metadata") or {})}
    for name in CONTENT_HEADERS:
        value = head.get(name)
        if value not in (None, ""):
            out[name] = value
    return out


def _override_properties(overrides: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "metadata" in overrides:
        out["Metadata"] = dict(overrides["metadata"])
    for name, param in OVERRIDE_HEADERS.items():
        if name in overrides:
            value = overrides[name]
            out[param] = parse_time(value, name) if name == "expires" else value
    return out


def changes_properties(overrides: dict[str, Any]) -> bool:
    return "metadata" in overrides or any(n in overrides for n in OVERRIDE_HEADERS)


@dataclass(frozen=True, slots=True)
class Requests:
    """Extra arguments for every S3 call of a run's copies."""

    options: ObjectOptions = field(default_factory=ObjectOptions)
    keys: Keys = field(default_factory=Keys)

    # -- reading the source -------------------------------------------------

    def head_source(self) -> dict[str, Any]:
        """HeadObject of the source (an SSE-C source needs its key even here)."""
        return {**self.read_source(), **_sse_c(self.keys.src)}

    def read_source(self) -> dict[str, Any]:
        """GetObjectTagging / GetObjectAcl of the source."""
        o = self.options
        out: dict[str, Any] = {}
        if o.expected_source_bucket_owner:
            out["ExpectedBucketOwner"] = o.expected_source_bucket_owner
        if o.request_payer:
            out["RequestPayer"] = "requester"
        return out

    # -- reading or finishing the destination --------------------------------

    def destination(self) -> dict[str, Any]:
        """Calls on the destination object or upload: HeadObject, ListParts,
        CompleteMultipartUpload, AbortMultipartUpload, PutObjectAcl."""
        o = self.options
        out: dict[str, Any] = {}
        if o.expected_bucket_owner:
            out["ExpectedBucketOwner"] = o.expected_bucket_owner
        if o.request_payer:
            out["RequestPayer"] = "requester"
        return out

    def destination_sse_c(self) -> dict[str, Any]:
        """The destination's SSE-C key, for the calls that read or extend it:
        HeadObject, CopyObject, CreateMultipartUpload, UploadPartCopy and
        CompleteMultipartUpload (botocore encodes the key for these; ListParts
        needs none)."""
        return _sse_c(self.keys.dst)

    # -- copying --------------------------------------------------------------

    def copy_source(self, pinned_etag: str | None) -> dict[str, Any]:
        """CopyObject and UploadPartCopy: conditions and access to the source.

        ``pinned_etag`` (the ETag seen by HEAD) becomes ``CopySourceIfMatch``;
        without one, the user's ``if_match`` is sent.
        """
        o = self.options
        out = {**self.destination(), **_sse_c(self.keys.src, "CopySource")}
        out.update(self.destination_sse_c())
        if o.expected_source_bucket_owner:
            out["ExpectedSourceBucketOwner"] = o.expected_source_bucket_owner
        if pinned_etag or o.if_match:
            out["CopySourceIfMatch"] = pinned_etag or o.if_match
        if o.if_none_match:
            out["CopySourceIfNoneMatch"] = o.if_none_match
        if o.if_modified_since:
            out["CopySourceIfModifiedSince"] = parse_time(
                o.if_modified_since, "if_modified_since"
            )
        if o.if_unmodified_since:
            out["CopySourceIfUnmodifiedSince"] = parse_time(
                o.if_unmodified_since, "if_unmodified_since"
            )
        return out

    def has_conditions(self) -> bool:
        """Whether the job copies only sources that meet ``--if-*``
        conditions (checked on a HEAD: a listed ETag cannot stand in)."""
        o = self.options
        return bool(
            o.if_match
            or o.if_none_match
            or o.if_modified_since
            or o.if_unmodified_since
        )

    def unmet_condition(self, head: dict[str, Any]) -> str | None:
        """Which ``if_*`` condition the source's HEAD fails, if any.

        Checked before copying because the copy is pinned to the HEAD's ETag
        (``CopySourceIfMatch``), and S3 skips If-Unmodified-Since when If-Match
        holds; the conditions are still sent, for S3 to check at copy time.
        """
        o = self.options
        etag = str(head.get("ETag") or "")
        modified = head.get("LastModified")
        if o.if_match and etag not in (o.if_match, f'"{o.if_match}"'):
            return f"source ETag {etag} does not match --if-match {o.if_match}"
        if o.if_none_match and etag in (o.if_none_match, f'"{o.if_none_match}"'):
            return f"source ETag {etag} matches --if-none-match"
        if isinstance(modified, datetime):
            if o.if_modified_since and modified <= parse_time(
                o.if_modified_since, "if_modified_since"
            ):
                return f"source not modified since {o.if_modified_since}"
            if o.if_unmodified_since and modified > parse_time(
                o.if_unmodified_since, "if_unmodified_since"
            ):
                return f"source modified since {o.if_unmodified_since}"
        return None

    def _written(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """What the new object gets besides metadata and tags: ACL, storage
        class, encryption, checksum, object lock."""
        o = self.options
        out: dict[str, Any] = {}
        acl = overrides.get("acl") or o.acl
        if acl:
            out["ACL"] = acl
        elif not overrides.get("acl"):
            for name, param in (
                ("grant_read", "GrantRead"),
                ("grant_read_acp", "GrantReadACP"),
                ("grant_write_acp", "GrantWriteACP"),
                ("grant_full_control", "GrantFullControl"),
            ):
                if getattr(o, name):
                    out[param] = getattr(o, name)
        storage_class = overrides.get("storage_class") or o.storage_class
        if storage_class:
            out["StorageClass"] = storage_class
        if o.sse:
            out["ServerSideEncryption"] = o.sse
            if o.sse_kms_key_id:
                out["SSEKMSKeyId"] = o.sse_kms_key_id
            if o.sse_kms_encryption_context is not None:
                text = json.dumps(o.sse_kms_encryption_context, sort_keys=True)
                out["SSEKMSEncryptionContext"] = base64.b64encode(
                    text.encode()
                ).decode()
            if o.bucket_key_enabled is not None:
                out["BucketKeyEnabled"] = o.bucket_key_enabled
        if o.checksum_algorithm:
            out["ChecksumAlgorithm"] = o.checksum_algorithm
        if o.object_lock_mode and o.object_lock_retain_until_date:
            out["ObjectLockMode"] = o.object_lock_mode
            out["ObjectLockRetainUntilDate"] = parse_time(
                o.object_lock_retain_until_date, "object_lock_retain_until_date"
            )
        if o.object_lock_legal_hold:
            out["ObjectLockLegalHoldStatus"] = o.object_lock_legal_hold
        return out

    def _replaced_properties(self) -> dict[str, Any]:
        """Metadata and headers under metadata_directive REPLACE: as given."""
        o = self.options
        out: dict[str, Any] = {"Metadata": dict(o.metadata or {})}
        for param, value in o.given_headers().items():
            out[param] = parse_time(value, "expires") if param == "Expires" else value
        return out

    def copy_object(
        self,
        head: dict[str, Any] | None,
        overrides: dict[str, Any],
        *,
        in_place: bool,
    ) -> dict[str, Any]:
        """What CopyObject sets on the destination (besides ``copy_source``).

        ``head`` is the source's HEAD; it is needed (and the caller makes sure
        it exists) when :meth:`needs_head` says so.
        """
        o = self.options
        out = self._kept_from_source(head)
        out.update(self._written(overrides))
        if o.replaces_metadata():
            props = self._replaced_properties()
        elif changes_properties(overrides) or in_place:
            props = source_properties(head or {})
        else:
            props = None
        if props is not None:
            props.update(_override_properties(overrides))
            out["MetadataDirective"] = "REPLACE"
            out.update(props)
        elif o.metadata_directive:
            out["MetadataDirective"] = o.metadata_directive
        if "tags" in overrides:
            out["TaggingDirective"] = "REPLACE"
            out["Tagging"] = _tags(overrides["tags"])
        elif o.tagging_directive == "REPLACE":
            out["TaggingDirective"] = "REPLACE"
            out["Tagging"] = _tags(o.tags or {})
        elif o.tagging_directive:
            out["TaggingDirective"] = o.tagging_directive
        return out

    def _kept_from_source(self, head: dict[str, Any] | None) -> dict[str, Any]:
        """The source's storage class and encryption, unless the options set
        encryption (or SSE-C) themselves; nothing without a HEAD."""
        kept = storage_and_encryption(head or {})
        if self.options.sse or self.keys.dst is not None:
            for name in _SSE_PARAMS:
                kept.pop(name, None)
        return kept

    def needs_head(self, overrides: dict[str, Any], *, in_place: bool) -> bool:
        """Whether a CopyObject needs the source's HEAD to carry its properties."""
        if self.options.replaces_metadata():
            return False
        return in_place or changes_properties(overrides)

    def replaces_tags(self, overrides: dict[str, Any]) -> bool:
        return "tags" in overrides or self.options.tagging_directive == "REPLACE"

    def create_upload(
        self,
        head: dict[str, Any],
        source_tags: list[dict[str, str]] | None,
        overrides: dict[str, Any],
        *,
        object_lock: bool,
    ) -> dict[str, Any]:
        """CreateMultipartUpload: the source's properties with the options applied.

        A multipart copy starts from nothing, so what CopyObject would keep
        (metadata, headers, tags, storage class, encryption) is read from the
        source and set here; the options then replace what they name.
        """
        o = self.options
        out = create_upload_args(head, source_tags, object_lock=object_lock)
        if o.replaces_metadata():
            out.pop("Metadata", None)
            for name in CONTENT_HEADERS:
                out.pop(name, None)
            out.update(self._replaced_properties())
        out.update(_override_properties(overrides))
        if "tags" in overrides:
            out["Tagging"] = _tags(overrides["tags"])
        elif o.tagging_directive == "REPLACE":
            out["Tagging"] = _tags(o.tags or {})
        if not out.get("Tagging"):
            out.pop("Tagging", None)
        written = self._written(overrides)
        if "ServerSideEncryption" in written or self.keys.dst is not None:
            for name in _SSE_PARAMS:  # the options' encryption, not the source's
                out.pop(name, None)
        out.update(written)
        out.update(self.destination())
        out.update(self.destination_sse_c())
        return out

    # -- what a copy should look like -----------------------------------------

    def expected(
        self, head: dict[str, Any], overrides: dict[str, Any]
    ) -> dict[str, Any]:
        """The source's HEAD as the copy's should read: metadata and headers
        as these options and ``overrides`` set them (for ``--verify``)."""
        out = dict(head)
        if self.options.replaces_metadata():
            out.pop("Metadata", None)
            for name in CONTENT_HEADERS:
                out.pop(name, None)
            out.update(self._replaced_properties())
        out.update(_override_properties(overrides))
        return out

    def expected_tags(
        self, source_tags: list[dict[str, str]], overrides: dict[str, Any]
    ) -> dict[str, str]:
        if "tags" in overrides:
            return dict(overrides["tags"])
        if self.options.tagging_directive == "REPLACE":
            return dict(self.options.tags or {})
        return {t["Key"]: t["Value"] for t in source_tags}

    # -- provider headers -----------------------------------------------------

    def retention_headers(self) -> dict[str, dict[str, str]]:
        """IBM COS retention headers by the operation that carries them, as
        IBM's SDK sends them: all on CopyObject; the retention itself (not the
        directive) on CompleteMultipartUpload."""
        out: dict[str, str] = {}
        for name, header in IBM_RETENTION_HEADERS.items():
            value = getattr(self.options, name)
            if value is None:
                continue
            if name == "retention_expiration_date":
                when = parse_time(value, name).astimezone(UTC)
                value = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            out[header] = str(value)
        if not out:
            return {}
        complete = {k: v for k, v in out.items() if k != "Retention-Directive"}
        return {"CopyObject": out, "CompleteMultipartUpload": complete}
