"""The arguments every S3 call of a copy carries, decided from the job's options."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session
from botocore.stub import Stubber

from engine.copy.attempt import copy_once
from engine.copy.context import CopyContext
from engine.copy.request import Requests
from engine.domain.errors import S3Error
from engine.domain.models import ObjectRef, Task
from engine.domain.options import ObjectOptions
from engine.domain.spec import CopyOptions
from engine.s3.sse_keys import Keys

DST_KEY = bytes(range(32))
SRC_KEY = bytes(range(32, 64))
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

# a source HEAD answer with every property a copy may carry
HEAD: dict[str, Any] = {
    "ETag": '"src-etag"',
    "ContentLength": 10,
    "LastModified": datetime(2026, 5, 1, tzinfo=UTC),
    "Metadata": {"owner": "ana", "team": "blue"},
    "ContentType": "text/csv",
    "CacheControl": "max-age=60",
    "ContentDisposition": "inline",
    "ContentEncoding": "gzip",
    "ContentLanguage": "en",
    "Expires": EXPIRES,
    "WebsiteRedirectLocation": "/old.html",
    "StorageClass": "STANDARD_IA",
    "ServerSideEncryption": "aws:kms",
    "SSEKMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/source",
    "BucketKeyEnabled": True,
    "ChecksumCRC32C": "AAAAAA==",
    "ObjectLockMode": "GOVERNANCE",
    "ObjectLockRetainUntilDate": datetime(2031, 1, 1, tzinfo=UTC),
    "ObjectLockLegalHoldStatus": "OFF",
}
SOURCE_HEADERS = {
    "ContentType": "text/csv",
    "CacheControl": "max-age=60",
    "ContentDisposition": "inline",
    "ContentEncoding": "gzip",
    "ContentLanguage": "en",
    "Expires": EXPIRES,
    "WebsiteRedirectLocation": "/old.html",
}
SOURCE_TAGS = [{"Key": "env", "Value": "prod"}]
HEADER_PARAMS = (*SOURCE_HEADERS, "Metadata")


def req(keys: Keys | None = None, **options: Any) -> Requests:
    return Requests(ObjectOptions(**options), keys or Keys())


def copy_args(r: Requests, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return r.copy_object(dict(HEAD), overrides or {}, in_place=False)


def upload_args(
    r: Requests,
    overrides: dict[str, Any] | None = None,
    tags: list[dict[str, str]] | None = None,
    *,
    object_lock: bool = False,
) -> dict[str, Any]:
    return r.create_upload(
        dict(HEAD),
        SOURCE_TAGS if tags is None else tags,
        overrides or {},
        object_lock=object_lock,
    )


def every_call(r: Requests) -> dict[str, dict[str, Any]]:
    """The extra arguments of each S3 call a copy makes, by call."""
    return {
        "HeadObject(source)": r.head_source(),
        "GetObjectTagging(source)": r.read_source(),
        "HeadObject(destination)": {**r.destination(), **r.destination_sse_c()},
        "CompleteMultipartUpload": {**r.destination(), **r.destination_sse_c()},
        "AbortMultipartUpload": r.destination(),
        "CopyObject": {**r.copy_source('"e"'), **copy_args(r)},
        "UploadPartCopy": r.copy_source('"e"'),
        "CreateMultipartUpload": upload_args(r),
    }


def tags_of(tagging: str) -> dict[str, str]:
    return dict(parse_qsl(tagging, keep_blank_values=True, strict_parsing=True))


# -- nothing asked, nothing sent -------------------------------------------------------


def test_no_options_add_no_arguments() -> None:
    """A job without options sends plain calls: no owner, payer, key or directive."""
    r = Requests()
    assert r.head_source() == {}
    assert r.read_source() == {}
    assert r.destination() == {}
    assert r.destination_sse_c() == {}
    assert r.copy_source(None) == {}
    assert r.copy_object(None, {}, in_place=False) == {}
    assert r.retention_headers() == {}
    assert not r.needs_head({}, in_place=False)
    assert not r.replaces_tags({})


# -- what lands on which call ----------------------------------------------------------


def test_storage_class_is_set_on_copy_object_and_create_upload() -> None:
    """--storage-class reaches CopyObject and, over the source's, the upload."""
    r = req(storage_class="GLACIER_IR")
    assert copy_args(r)["StorageClass"] == "GLACIER_IR"
    assert upload_args(r)["StorageClass"] == "GLACIER_IR"
    assert "StorageClass" not in r.copy_source('"e"')


def test_per_object_storage_class_wins_over_the_option() -> None:
    """A manifest storage_class cell beats --storage-class for its object."""
    r = req(storage_class="GLACIER_IR")
    overrides = {"storage_class": "DEEP_ARCHIVE"}
    assert copy_args(r, overrides)["StorageClass"] == "DEEP_ARCHIVE"
    assert upload_args(r, overrides)["StorageClass"] == "DEEP_ARCHIVE"


def test_storage_class_override_alone_keeps_metadata_copied() -> None:
    """Changing only the storage class is no metadata change: no HEAD, no directive."""
    r = req()
    overrides = {"storage_class": "STANDARD_IA"}
    assert not r.needs_head(overrides, in_place=False)
    assert r.copy_object(None, overrides, in_place=False) == {
        "StorageClass": "STANDARD_IA"
    }


def test_canned_acl_and_grants() -> None:
    """--acl sets ACL; --grant-* set their Grant parameters; a row's acl wins."""
    assert copy_args(req(acl="bucket-owner-full-control"))["ACL"] == (
        "bucket-owner-full-control"
    )
    grants = req(
        grant_read='id="r"',
        grant_read_acp='id="ra"',
        grant_write_acp='id="wa"',
        grant_full_control='id="f"',
    )
    expected = {
        "GrantRead": 'id="r"',
        "GrantReadACP": 'id="ra"',
        "GrantWriteACP": 'id="wa"',
        "GrantFullControl": 'id="f"',
    }
    for args in (copy_args(grants), upload_args(grants)):
        assert {k: args[k] for k in expected} == expected
        assert "ACL" not in args
    # a canned ACL from the manifest replaces the grants (S3 refuses both)
    overridden = copy_args(grants, {"acl": "private"})
    assert overridden["ACL"] == "private"
    assert not set(expected) & set(overridden)


def test_sse_kms_options_reach_both_writes() -> None:
    """SSE-KMS, its key, context (base64 JSON) and bucket key go on every write."""
    r = req(
        sse="aws:kms",
        sse_kms_key_id="alias/dst",
        sse_kms_encryption_context={"app": "archive", "b": "2"},
        bucket_key_enabled=False,
    )
    for args in (copy_args(r), upload_args(r)):
        assert args["ServerSideEncryption"] == "aws:kms"
        assert args["SSEKMSKeyId"] == "alias/dst"
        assert args["BucketKeyEnabled"] is False
        context = base64.b64decode(args["SSEKMSEncryptionContext"], validate=True)
        assert json.loads(context) == {"app": "archive", "b": "2"}


def test_destination_sse_c_key_goes_where_the_destination_is_written_or_read() -> None:
    """The destination key is sent on CopyObject/UploadPartCopy, CreateMultipartUpload
    and destination reads, and never on calls about the source."""
    r = req(keys=Keys(dst=DST_KEY), sse_c_key="env:K")
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": DST_KEY}
    assert r.destination_sse_c() == sse_c
    for args in (r.copy_source('"e"'), upload_args(r)):
        assert {k: args[k] for k in sse_c} == sse_c
    assert r.head_source() == {}
    assert r.read_source() == {}
    assert r.destination() == {}
    assert "CopySourceSSECustomerKey" not in r.copy_source('"e"')


def test_source_sse_c_key_goes_on_source_reads_and_copy_source_only() -> None:
    """The source key is SSECustomerKey on the source HEAD, CopySource… on copies."""
    r = req(keys=Keys(src=SRC_KEY), source_sse_c_key="env:K")
    assert r.head_source() == {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": SRC_KEY,
    }
    assert r.copy_source('"e"') == {
        "CopySourceSSECustomerAlgorithm": "AES256",
        "CopySourceSSECustomerKey": SRC_KEY,
        "CopySourceIfMatch": '"e"',
    }
    assert r.destination_sse_c() == {}
    assert SRC_KEY not in upload_args(r).values()
    assert SRC_KEY not in copy_args(r).values()


def test_both_sse_c_keys_on_one_copy_are_not_confused() -> None:
    """With both keys, a copy reads with the source's and writes with the other."""
    r = req(keys=Keys(dst=DST_KEY, src=SRC_KEY))
    args = r.copy_source(None)
    assert args["CopySourceSSECustomerKey"] == SRC_KEY
    assert args["SSECustomerKey"] == DST_KEY
    assert r.head_source()["SSECustomerKey"] == SRC_KEY


def test_sse_c_destination_drops_the_sources_encryption() -> None:
    """A multipart copy to SSE-C does not also ask for the source's SSE-KMS."""
    args = upload_args(req(keys=Keys(dst=DST_KEY)))
    assert args["SSECustomerKey"] == DST_KEY
    for name in ("ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled"):
        assert name not in args


def test_expected_owners_check_the_right_bucket() -> None:
    """The source owner is checked on source calls, the destination's on writes."""
    r = req(expected_bucket_owner="111", expected_source_bucket_owner="222")
    assert r.head_source() == {"ExpectedBucketOwner": "222"}
    assert r.read_source() == {"ExpectedBucketOwner": "222"}
    assert r.destination() == {"ExpectedBucketOwner": "111"}
    copy_source = r.copy_source(None)
    assert copy_source["ExpectedBucketOwner"] == "111"
    assert copy_source["ExpectedSourceBucketOwner"] == "222"
    assert upload_args(r)["ExpectedBucketOwner"] == "111"


def test_request_payer_is_sent_on_every_call() -> None:
    """--request-payer adds RequestPayer=requester to every call of a copy."""
    for call, args in every_call(req(request_payer=True)).items():
        assert args.get("RequestPayer") == "requester", call
    for call, args in every_call(req()).items():
        assert "RequestPayer" not in args, call


@pytest.mark.parametrize(
    ("option", "value", "param", "sent"),
    [
        ("if_none_match", '"x"', "CopySourceIfNoneMatch", '"x"'),
        (
            "if_modified_since",
            "2026-01-01",
            "CopySourceIfModifiedSince",
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        (
            "if_unmodified_since",
            "2026-01-01T12:00:00+01:00",
            "CopySourceIfUnmodifiedSince",
            datetime(2026, 1, 1, 11, tzinfo=UTC),
        ),
    ],
)
def test_conditions_go_on_copy_source_as_copy_source_if(
    option: str, value: str, param: str, sent: Any
) -> None:
    """Each --if-* option becomes its CopySourceIf* parameter (dates as datetimes)."""
    args = req(**{option: value}).copy_source(None)
    assert args == {param: sent}


def test_copy_source_pins_the_etag_seen_by_head() -> None:
    """The ETag from HEAD is CopySourceIfMatch; without one, --if-match is sent."""
    assert req().copy_source('"seen"') == {"CopySourceIfMatch": '"seen"'}
    assert req(if_match='"mine"').copy_source(None) == {"CopySourceIfMatch": '"mine"'}


def test_checksum_algorithm_on_both_writes() -> None:
    """--checksum-algorithm reaches CopyObject and, over the source's, the upload."""
    r = req(checksum_algorithm="SHA256")
    assert copy_args(r)["ChecksumAlgorithm"] == "SHA256"
    assert upload_args(r)["ChecksumAlgorithm"] == "SHA256"
    assert upload_args(req())["ChecksumAlgorithm"] == "CRC32C"


def test_object_lock_options_are_parsed_to_datetimes() -> None:
    """Object-lock mode, retain-until (a datetime) and legal hold go on both writes."""
    r = req(
        object_lock_mode="COMPLIANCE",
        object_lock_retain_until_date="2031-06-07T08:00:00+02:00",
        object_lock_legal_hold="ON",
    )
    lock = {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": datetime(2031, 6, 7, 6, tzinfo=UTC),
        "ObjectLockLegalHoldStatus": "ON",
    }
    for args in (copy_args(r), upload_args(r, object_lock=True)):
        assert {k: args[k] for k in lock} == lock


def test_ibm_retention_headers_by_operation() -> None:
    """IBM COS retention: all on CopyObject, all but the directive on Complete."""
    r = req(
        retention_directive="REPLACE",
        retention_expiration_date="2031-01-01",
        retention_legal_hold_id="case-42",
    )
    retention = {
        "Retention-Expiration-Date": "2031-01-01T00:00:00Z",
        "Retention-Legal-Hold-ID": "case-42",
    }
    assert r.retention_headers() == {
        "CopyObject": {"Retention-Directive": "REPLACE", **retention},
        "CompleteMultipartUpload": retention,
    }
    assert req(retention_period=3600).retention_headers() == {
        "CopyObject": {"Retention-Period": "3600"},
        "CompleteMultipartUpload": {"Retention-Period": "3600"},
    }


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("2031-01-01T02:00:00+02:00", "2031-01-01T00:00:00Z"),
        ("2030-12-31T19:00:00-05:00", "2031-01-01T00:00:00Z"),
    ],
)
def test_retention_expiration_date_is_sent_in_utc(given: str, sent: str) -> None:
    """A date with a zone offset is sent as the same instant in UTC ('Z')."""
    headers = req(retention_expiration_date=given).retention_headers()
    assert headers["CopyObject"]["Retention-Expiration-Date"] == sent


def test_retention_options_are_not_boto_parameters() -> None:
    """IBM retention travels as headers only, never as CopyObject arguments."""
    r = req(retention_directive="COPY", retention_period=60)
    assert not any("Retention" in name for name in copy_args(r))
    assert req(retention_directive="COPY").retention_headers() == {
        "CopyObject": {"Retention-Directive": "COPY"},
        "CompleteMultipartUpload": {},
    }


# -- metadata rules --------------------------------------------------------------------


def test_copy_directive_keeps_the_source_metadata() -> None:
    """By default nothing about metadata is sent: S3 keeps the source's."""
    r = req()
    assert not r.needs_head({}, in_place=False)
    args = copy_args(r)
    assert "MetadataDirective" not in args
    assert not set(HEADER_PARAMS) & set(args)
    assert req(metadata_directive="COPY").copy_object(None, {}, in_place=False) == {
        "MetadataDirective": "COPY"
    }


def test_replace_sets_exactly_what_is_given() -> None:
    """REPLACE sends the given metadata and headers and none of the source's."""
    r = req(
        metadata_directive="REPLACE",
        metadata={"new": "1"},
        content_type="image/png",
        expires="2030-01-01",
    )
    assert not r.needs_head({}, in_place=False)
    args = copy_args(r)
    assert args["MetadataDirective"] == "REPLACE"
    assert {k: args[k] for k in HEADER_PARAMS if k in args} == {
        "Metadata": {"new": "1"},
        "ContentType": "image/png",
        "Expires": datetime(2030, 1, 1, tzinfo=UTC),
    }


def test_replace_with_nothing_clears_the_metadata() -> None:
    """REPLACE without metadata sends an empty set: the copy has none."""
    args = copy_args(req(metadata_directive="REPLACE"))
    assert args["MetadataDirective"] == "REPLACE"
    assert args["Metadata"] == {}
    assert not set(SOURCE_HEADERS) & set(args)


def test_override_of_one_header_carries_the_rest_from_head() -> None:
    """A row's content_type changes only that: metadata and headers come from HEAD."""
    r = req()
    overrides = {"content_type": "image/jpeg"}
    assert r.needs_head(overrides, in_place=False)
    args = copy_args(r, overrides)
    assert args["MetadataDirective"] == "REPLACE"
    assert args["Metadata"] == HEAD["Metadata"]
    assert {k: args[k] for k in SOURCE_HEADERS} == {
        **SOURCE_HEADERS,
        "ContentType": "image/jpeg",
    }


def test_override_of_metadata_replaces_the_user_metadata_only() -> None:
    """A row's metadata is the object's new user metadata; headers stay the source's."""
    args = copy_args(req(), {"metadata": {"only": "this"}})
    assert args["Metadata"] == {"only": "this"}
    assert {k: args[k] for k in SOURCE_HEADERS} == SOURCE_HEADERS


def test_override_of_expires_is_sent_as_a_datetime() -> None:
    """An expires cell (ISO 8601 text) is sent as a timezone-aware datetime."""
    args = copy_args(req(), {"expires": "2032-02-03T04:05:06Z"})
    assert args["Expires"] == datetime(2032, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_override_applies_on_top_of_replace() -> None:
    """Under REPLACE a row's override changes the given set, never the source's."""
    r = req(metadata_directive="REPLACE", metadata={"job": "1"}, cache_control="x")
    overrides = {"content_language": "fr"}
    assert not r.needs_head(overrides, in_place=False)
    args = r.copy_object(None, overrides, in_place=False)
    assert {k: args[k] for k in HEADER_PARAMS if k in args} == {
        "Metadata": {"job": "1"},
        "CacheControl": "x",
        "ContentLanguage": "fr",
    }


def test_in_place_copy_replaces_with_the_sources_own_properties() -> None:
    """A copy onto itself sends REPLACE carrying the source's metadata and headers."""
    r = req(storage_class="GLACIER_IR")
    assert r.needs_head({}, in_place=True)
    args = r.copy_object(dict(HEAD), {}, in_place=True)
    assert args["MetadataDirective"] == "REPLACE"
    assert args["Metadata"] == HEAD["Metadata"]
    assert {k: args[k] for k in SOURCE_HEADERS} == SOURCE_HEADERS
    assert args["StorageClass"] == "GLACIER_IR"


def test_in_place_copy_omits_headers_the_source_lacks() -> None:
    """Empty or missing headers on the source are not sent as empty values."""
    head = {"ETag": '"e"', "ContentType": "a/b", "ContentLanguage": ""}
    args = req().copy_object(head, {}, in_place=True)
    assert args == {
        "MetadataDirective": "REPLACE",
        "Metadata": {},
        "ContentType": "a/b",
    }


def test_in_place_copy_under_replace_needs_no_head() -> None:
    """With REPLACE an in-place copy sends what was given; no HEAD is needed."""
    r = req(metadata_directive="REPLACE", metadata={"a": "1"})
    assert not r.needs_head({}, in_place=True)
    args = r.copy_object(None, {}, in_place=True)
    assert (args["MetadataDirective"], args["Metadata"]) == ("REPLACE", {"a": "1"})


def test_builders_never_change_the_head_they_are_given() -> None:
    """The source HEAD is read, not modified (verify compares against it later)."""
    head = copy.deepcopy(HEAD)
    r = req(metadata_directive="REPLACE", metadata={"a": "1"}, storage_class="X")
    overrides = {"metadata": {"b": "2"}, "content_type": "c/d", "tags": {"t": "1"}}
    r.copy_object(head, overrides, in_place=True)
    req().copy_object(head, overrides, in_place=True)
    r.create_upload(head, SOURCE_TAGS, overrides, object_lock=True)
    r.expected(head, overrides)
    req().expected(head, overrides)
    assert head == HEAD


# -- tags ------------------------------------------------------------------------------


def test_tag_override_replaces_tags_url_encoded() -> None:
    """A row's tags become TaggingDirective REPLACE with URL-encoded Tagging."""
    tags = {"team": "a b", "x&y": "1=2", "ü": "%"}
    r = req(tagging_directive="REPLACE", tags={"job": "tag"})
    assert r.replaces_tags({"tags": tags})
    args = copy_args(r, {"tags": tags})
    assert args["TaggingDirective"] == "REPLACE"
    assert tags_of(args["Tagging"]) == tags
    assert tags_of(upload_args(r, {"tags": tags})["Tagging"]) == tags


def test_tagging_replace_sets_the_given_tags() -> None:
    """--tagging-directive REPLACE with --tag sends exactly those tags."""
    r = req(tagging_directive="REPLACE", tags={"a": "1", "b": ""})
    assert r.replaces_tags({})
    args = copy_args(r)
    assert args["TaggingDirective"] == "REPLACE"
    assert tags_of(args["Tagging"]) == {"a": "1", "b": ""}
    assert tags_of(upload_args(r)["Tagging"]) == {"a": "1", "b": ""}


def test_tagging_replace_without_tags_removes_them() -> None:
    """REPLACE with no tags clears them: empty Tagging, none on the upload."""
    r = req(tagging_directive="REPLACE")
    assert copy_args(r)["Tagging"] == ""
    assert "Tagging" not in upload_args(r)


def test_tagging_copy_keeps_the_source_tags() -> None:
    """COPY is passed through; a multipart copy carries the source's tags itself."""
    r = req(tagging_directive="COPY")
    assert not r.replaces_tags({})
    args = copy_args(r)
    assert args["TaggingDirective"] == "COPY"
    assert "Tagging" not in args
    assert tags_of(upload_args(r)["Tagging"]) == {"env": "prod"}


# -- multipart: CreateMultipartUpload --------------------------------------------------


def test_create_upload_carries_the_sources_properties() -> None:
    """With no options the upload gets what CopyObject would have kept."""
    args = upload_args(req())
    assert args["Metadata"] == HEAD["Metadata"]
    assert {k: args[k] for k in SOURCE_HEADERS} == SOURCE_HEADERS
    assert args["StorageClass"] == "STANDARD_IA"
    assert args["ServerSideEncryption"] == "aws:kms"
    assert args["SSEKMSKeyId"] == HEAD["SSEKMSKeyId"]
    assert args["BucketKeyEnabled"] is True
    assert tags_of(args["Tagging"]) == {"env": "prod"}
    assert "ObjectLockMode" not in args
    assert upload_args(req(), object_lock=True)["ObjectLockMode"] == "GOVERNANCE"


def test_create_upload_under_replace_drops_the_sources_metadata() -> None:
    """REPLACE on a multipart copy sets the given metadata and headers only."""
    args = upload_args(req(metadata_directive="REPLACE", content_encoding="br"))
    assert args["Metadata"] == {}
    assert args["ContentEncoding"] == "br"
    assert not (set(SOURCE_HEADERS) - {"ContentEncoding"}) & set(args)


def test_create_upload_applies_overrides_over_the_source() -> None:
    """A row's overrides change what they name; the rest is the source's."""
    args = upload_args(req(), {"metadata": {"m": "1"}, "cache_control": "no-store"})
    assert args["Metadata"] == {"m": "1"}
    assert args["CacheControl"] == "no-store"
    assert args["ContentType"] == "text/csv"


def test_option_sse_replaces_the_sources_kms_key() -> None:
    """--sse AES256 on a KMS source sends AES256 without the source's KMS key."""
    args = upload_args(req(sse="AES256"))
    assert args["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in args
    assert "BucketKeyEnabled" not in args


def test_option_kms_key_replaces_the_sources_kms_key() -> None:
    """--sse aws:kms with its own key id replaces the source's key id."""
    args = upload_args(req(sse="aws:kms", sse_kms_key_id="alias/new"))
    assert args["SSEKMSKeyId"] == "alias/new"
    assert "BucketKeyEnabled" not in args


def test_option_object_lock_wins_over_the_sources() -> None:
    """Object-lock options replace the carried source lock settings."""
    r = req(object_lock_legal_hold="ON")
    args = upload_args(r, object_lock=True)
    assert args["ObjectLockLegalHoldStatus"] == "ON"
    assert args["ObjectLockMode"] == "GOVERNANCE"


def test_create_upload_carries_owner_payer_and_key() -> None:
    """CreateMultipartUpload carries the destination owner, payer and SSE-C key."""
    r = req(keys=Keys(dst=DST_KEY), expected_bucket_owner="111", request_payer=True)
    args = upload_args(r)
    assert args["ExpectedBucketOwner"] == "111"
    assert args["RequestPayer"] == "requester"
    assert args["SSECustomerKey"] == DST_KEY


# -- what --verify expects -------------------------------------------------------------


def test_expected_is_the_source_under_copy() -> None:
    """With COPY the copy should read like its source."""
    assert req().expected(dict(HEAD), {}) == HEAD


def test_expected_under_replace_is_what_was_given() -> None:
    """With REPLACE the copy should carry the given metadata and headers only."""
    r = req(metadata_directive="REPLACE", metadata={"a": "1"}, expires="2030-01-01")
    want = r.expected(dict(HEAD), {"content_type": "x/y"})
    assert want["Metadata"] == {"a": "1"}
    assert want["Expires"] == datetime(2030, 1, 1, tzinfo=UTC)
    assert want["ContentType"] == "x/y"
    for name in ("CacheControl", "ContentDisposition", "WebsiteRedirectLocation"):
        assert name not in want
    assert want["ETag"] == HEAD["ETag"]


def test_expected_with_an_override_changes_only_it() -> None:
    """An override is expected on the copy; everything else like the source."""
    want = req().expected(dict(HEAD), {"metadata": {"m": "2"}})
    assert want == {**HEAD, "Metadata": {"m": "2"}}


def test_expected_tags() -> None:
    """Verify expects the row's tags, else REPLACE's, else the source's."""
    source = [{"Key": "a", "Value": "1"}]
    assert req().expected_tags(source, {}) == {"a": "1"}
    replace = req(tagging_directive="REPLACE", tags={"b": "2"})
    assert replace.expected_tags(source, {}) == {"b": "2"}
    assert replace.expected_tags(source, {"tags": {"c": "3"}}) == {"c": "3"}
    assert req(tagging_directive="REPLACE").expected_tags(source, {}) == {}


# -- every argument is one the call takes ----------------------------------------------


@cache
def s3_client() -> Any:
    """A real botocore S3 client; a Stubber answers it, so nothing is sent."""
    return get_session().create_client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


ANSWERS: dict[str, dict[str, Any]] = {"get_object_tagging": {"TagSet": []}}


def assert_accepted(method: str, params: dict[str, Any]) -> None:
    """botocore's handlers and validation accept ``params`` for ``method``."""
    client = s3_client()
    with Stubber(client) as stubber:
        stubber.add_response(method, ANSWERS.get(method, {}))
        getattr(client, method)(**params)  # ParamValidationError if not


FULL_KMS = ObjectOptions(
    grant_read='id="r"',
    metadata_directive="REPLACE",
    metadata={"a": "1"},
    content_type="a/b",
    cache_control="c",
    content_disposition="d",
    content_encoding="e",
    content_language="f",
    expires="2030-01-01",
    website_redirect_location="/x",
    tagging_directive="REPLACE",
    tags={"t": "1"},
    storage_class="STANDARD_IA",
    sse="aws:kms",
    sse_kms_key_id="k",
    sse_kms_encryption_context={"c": "1"},
    bucket_key_enabled=True,
    source_sse_c_key="env:S",
    checksum_algorithm="CRC32C",
    object_lock_mode="GOVERNANCE",
    object_lock_retain_until_date="2031-01-01",
    object_lock_legal_hold="ON",
    if_match='"m"',
    if_none_match='"n"',
    if_modified_since="2020-01-01",
    if_unmodified_since="2030-01-01",
    expected_bucket_owner="111",
    expected_source_bucket_owner="222",
    request_payer=True,
)
FULL_SSE_C = ObjectOptions(
    acl="private", sse_c_key="env:D", source_sse_c_key="env:S", request_payer=True
)


@pytest.mark.parametrize(
    ("options", "keys"),
    [
        pytest.param(FULL_KMS, Keys(src=SRC_KEY), id="kms"),
        pytest.param(FULL_SSE_C, Keys(dst=DST_KEY, src=SRC_KEY), id="sse-c"),
        pytest.param(ObjectOptions(), Keys(), id="none"),
    ],
)
@pytest.mark.parametrize("in_place", [False, True])
def test_every_argument_is_a_valid_parameter_of_its_call(
    options: ObjectOptions, keys: Keys, in_place: bool
) -> None:
    """A real botocore client accepts each call's arguments, names and types."""
    r = Requests(options, keys)
    obj = {"Bucket": "dst", "Key": "k"}
    src = {"Bucket": "src", "Key": "k"}
    upload = {**obj, "UploadId": "u"}
    copy_from = {**obj, "CopySource": src}
    overrides = {"content_type": "x/y", "expires": "2030-01-01", "tags": {"a": "b"}}
    dst_read = {**r.destination(), **r.destination_sse_c()}
    parts = {"Parts": [{"PartNumber": 1, "ETag": '"e"'}]}
    assert_accepted("head_object", {**src, **r.head_source(), "PartNumber": 1})
    assert_accepted("get_object_tagging", {**src, **r.read_source()})
    assert_accepted("get_object_acl", {**src, **r.read_source()})
    assert_accepted("head_object", {**obj, **dst_read})
    assert_accepted("get_object_tagging", {**obj, **r.destination()})
    assert_accepted("list_parts", {**upload, **r.destination()})  # SSE-C: below
    assert_accepted(
        "complete_multipart_upload", {**upload, "MultipartUpload": parts, **dst_read}
    )
    assert_accepted("abort_multipart_upload", {**upload, **r.destination()})
    assert_accepted("put_object_acl", {**obj, **r.destination(), "GrantRead": 'id="x"'})
    assert_accepted(
        "copy_object",
        {
            **copy_from,
            **r.copy_source('"e"'),
            **r.copy_object(dict(HEAD), overrides, in_place=in_place),
        },
    )
    assert_accepted(
        "upload_part_copy",
        {
            **copy_from,
            "UploadId": "u",
            "PartNumber": 1,
            "CopySourceRange": "bytes=0-9",
            **r.copy_source('"e"'),
        },
    )
    upload_args = r.create_upload(dict(HEAD), SOURCE_TAGS, overrides, object_lock=True)
    assert_accepted("create_multipart_upload", {**obj, **upload_args})


def test_list_parts_on_resume_of_an_sse_c_copy_is_accepted() -> None:
    """Resuming an SSE-C multipart copy lists its parts with a call botocore
    accepts (ListParts takes no key: botocore would not encode one)."""
    import asyncio

    from engine.copy.upload import Upload, list_parts

    seen: dict[str, Any] = {}

    class Client:
        async def list_parts(self, **kwargs: Any) -> dict[str, Any]:
            seen.update(kwargs)
            return {"Parts": [], "IsTruncated": False}

    r = req(keys=Keys(dst=DST_KEY), sse_c_key="env:K", expected_bucket_owner="1")
    dst = {"Bucket": "dst", "Key": "k"}
    upload = Upload("u", '"e"', 5 * 1024 * 1024)
    asyncio.run(list_parts(Client(), dst, r.destination(), upload))
    assert seen["ExpectedBucketOwner"] == "1"
    assert_accepted("list_parts", seen)


# -- conditions as S3 evaluates them ---------------------------------------------------


FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class ConditionalS3:
    """One source object, and a CopyObject that evaluates CopySourceIf* as AWS
    documents it: when If-Match holds, If-Unmodified-Since is not evaluated (the
    copy goes ahead); when If-None-Match is given it decides over
    If-Modified-Since."""

    def __init__(self, etag: str, last_modified: datetime) -> None:
        self.etag = etag
        self.last_modified = last_modified
        self.copies: list[dict[str, Any]] = []

    async def head_object(self, **_: Any) -> dict[str, Any]:
        return {
            "ETag": self.etag,
            "LastModified": self.last_modified,
            "ContentLength": 10,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    def _holds(self, kw: dict[str, Any]) -> bool:
        if "CopySourceIfMatch" in kw:
            if kw["CopySourceIfMatch"] != self.etag:
                return False
        elif self.last_modified > kw.get("CopySourceIfUnmodifiedSince", FAR_FUTURE):
            return False
        if "CopySourceIfNoneMatch" in kw:
            if kw["CopySourceIfNoneMatch"] == self.etag:
                return False
        elif self.last_modified <= kw.get("CopySourceIfModifiedSince", FAR_PAST):
            return False
        return True

    async def copy_object(self, **kw: Any) -> dict[str, Any]:
        if not self._holds(kw):
            raise ClientError(
                {
                    "Error": {"Code": "PreconditionFailed", "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": 412},
                },
                "CopyObject",
            )
        self.copies.append(kw)
        return {
            "CopyObjectResult": {"ETag": self.etag},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }


def attempt_copy(
    s3: ConditionalS3, options: ObjectOptions, *, stat_source: bool = True
) -> None:
    """One CopyObject attempt of src/k to dst/k through the engine's copy path."""

    async def go() -> None:
        ctx = CopyContext(
            client=s3,
            dst_bucket="dst",
            options=CopyOptions(stat_source=stat_source),
            part_log=None,  # type: ignore[arg-type]  # single copies never use it
            part_slots=asyncio.Semaphore(1),
            stopping=asyncio.Event(),
            requests=Requests(options),
        )
        await copy_once(
            ctx, Task(id=1, job_id="j", src=ObjectRef("src", "k"), dst_key="k")
        )

    asyncio.run(go())


MODIFIED = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("stat_source", [True, False])
def test_if_match_refuses_a_source_with_another_etag(stat_source: bool) -> None:
    """--if-match with a different source ETag fails PreconditionFailed, no copy."""
    s3 = ConditionalS3('"current"', MODIFIED)
    with pytest.raises(S3Error) as info:
        attempt_copy(s3, ObjectOptions(if_match='"old"'), stat_source=stat_source)
    assert info.value.code == "PreconditionFailed"
    assert s3.copies == []


@pytest.mark.parametrize("stat_source", [True, False])
def test_if_none_match_refuses_a_source_with_that_etag(stat_source: bool) -> None:
    """--if-none-match with the source's own ETag leaves it uncopied."""
    s3 = ConditionalS3('"current"', MODIFIED)
    options = ObjectOptions(if_none_match='"current"')
    with pytest.raises(S3Error) as info:
        attempt_copy(s3, options, stat_source=stat_source)
    assert info.value.code == "PreconditionFailed"
    assert s3.copies == []


def test_if_unmodified_since_refuses_a_later_source_without_stat() -> None:
    """Without a HEAD, --if-unmodified-since reaches S3 and stops the copy."""
    s3 = ConditionalS3('"current"', MODIFIED)
    options = ObjectOptions(if_unmodified_since="2026-01-01")
    with pytest.raises(S3Error) as info:
        attempt_copy(s3, options, stat_source=False)
    assert info.value.code == "PreconditionFailed"
    assert s3.copies == []


def test_if_unmodified_since_refuses_a_later_source_with_stat() -> None:
    """With the default HEAD, --if-unmodified-since still stops a newer source."""
    s3 = ConditionalS3('"current"', MODIFIED)
    with pytest.raises(S3Error) as info:
        attempt_copy(s3, ObjectOptions(if_unmodified_since="2026-01-01"))
    assert info.value.code == "PreconditionFailed"
    assert s3.copies == []


def test_if_unmodified_since_lets_an_older_source_through() -> None:
    """A source not modified since the date is copied."""
    s3 = ConditionalS3('"current"', MODIFIED)
    attempt_copy(s3, ObjectOptions(if_unmodified_since="2026-06-01"))
    assert len(s3.copies) == 1
