"""What a multipart copy sets on CreateMultipartUpload from the source's HEAD."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from engine.copy.properties import create_upload_args, tagging_value

CONTENT_HEADERS = {
    "ContentType": "text/csv; charset=utf-8",
    "CacheControl": "max-age=3600",
    "ContentDisposition": 'attachment; filename="a b.csv"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "en-GB",
    "Expires": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    "WebsiteRedirectLocation": "/elsewhere.html",
}
LOCK = {
    "ObjectLockMode": "GOVERNANCE",
    "ObjectLockRetainUntilDate": datetime(2031, 6, 7, tzinfo=UTC),
    "ObjectLockLegalHoldStatus": "ON",
}


def test_an_empty_head_gives_no_arguments() -> None:
    """A source with nothing to carry over yields no upload arguments."""
    assert create_upload_args({}, None) == {}


@pytest.mark.parametrize(("name", "value"), CONTENT_HEADERS.items())
def test_each_content_header_is_carried(name: str, value: Any) -> None:
    """A content header present on the source is set on the upload unchanged."""
    assert create_upload_args({name: value}, None) == {name: value}


def test_all_content_headers_are_carried_together() -> None:
    """Every content header present on the source is set on the upload at once."""
    assert create_upload_args(dict(CONTENT_HEADERS), None) == CONTENT_HEADERS


@pytest.mark.parametrize("name", CONTENT_HEADERS)
@pytest.mark.parametrize("value", [None, ""])
def test_an_absent_or_empty_content_header_is_omitted(name: str, value: Any) -> None:
    """A content header that is None or empty on the source is not sent."""
    assert name not in create_upload_args({name: value}, None)


def test_unrelated_head_fields_are_not_carried() -> None:
    """Fields that are not object properties (ETag, length, dates) are not sent."""
    head = {
        "ETag": '"abc"',
        "ContentLength": 10,
        "LastModified": datetime(2024, 1, 1, tzinfo=UTC),
        "VersionId": "v1",
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    assert create_upload_args(head, None) == {}


def test_metadata_is_copied_into_a_new_dict() -> None:
    """User metadata is carried as an equal dict that is not the source's own."""
    metadata = {"owner": "alice", "x-y": "ünï"}
    head = {"Metadata": metadata}
    args = create_upload_args(head, None)
    assert args["Metadata"] == {"owner": "alice", "x-y": "ünï"}
    assert args["Metadata"] is not metadata
    args["Metadata"]["owner"] = "mallory"
    assert metadata["owner"] == "alice"


def test_empty_metadata_is_omitted() -> None:
    """A source without user metadata sends no Metadata argument."""
    assert "Metadata" not in create_upload_args({"Metadata": {}}, None)


@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "GLACIER_IR", "STANDARD"])
def test_storage_class_is_carried(storage_class: str) -> None:
    """The source's storage class is set on the upload."""
    args = create_upload_args({"StorageClass": storage_class}, None)
    assert args == {"StorageClass": storage_class}


def test_sse_s3_is_carried() -> None:
    """SSE-S3 (AES256) on the source is set on the upload."""
    args = create_upload_args({"ServerSideEncryption": "AES256"}, None)
    assert args == {"ServerSideEncryption": "AES256"}


@pytest.mark.parametrize("algorithm", ["aws:kms", "aws:kms:dsse"])
def test_sse_kms_is_carried_with_its_key_and_bucket_key(algorithm: str) -> None:
    """SSE-KMS and DSSE-KMS keep their key id and the bucket-key setting."""
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    head = {
        "ServerSideEncryption": algorithm,
        "SSEKMSKeyId": key,
        "BucketKeyEnabled": True,
    }
    assert create_upload_args(head, None) == {
        "ServerSideEncryption": algorithm,
        "SSEKMSKeyId": key,
        "BucketKeyEnabled": True,
    }


def test_sse_kms_without_key_or_bucket_key_sends_only_the_algorithm() -> None:
    """SSE-KMS with no key id and the bucket key off sends just the algorithm."""
    head = {"ServerSideEncryption": "aws:kms", "BucketKeyEnabled": False}
    assert create_upload_args(head, None) == {"ServerSideEncryption": "aws:kms"}


def test_kms_key_is_not_sent_without_kms_encryption() -> None:
    """A stray key id is not sent when the source is not KMS-encrypted."""
    head = {"ServerSideEncryption": "AES256", "SSEKMSKeyId": "key"}
    assert create_upload_args(head, None) == {"ServerSideEncryption": "AES256"}


@pytest.mark.parametrize(
    "algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
)
def test_checksum_algorithm_comes_from_the_checksum_field(algorithm: str) -> None:
    """A ChecksumXXX value on the source selects XXX as the upload's algorithm."""
    args = create_upload_args({f"Checksum{algorithm}": "AAAAAA==-3"}, None)
    assert args == {"ChecksumAlgorithm": algorithm}


def test_an_empty_checksum_field_selects_no_algorithm() -> None:
    """A ChecksumXXX field that is empty does not select an algorithm."""
    assert create_upload_args({"ChecksumSHA256": ""}, None) == {}


def test_checksum_type_alone_selects_no_algorithm() -> None:
    """ChecksumType without any ChecksumXXX value does not select an algorithm."""
    assert "ChecksumAlgorithm" not in create_upload_args(
        {"ChecksumType": "COMPOSITE"}, None
    )


@pytest.mark.parametrize("tag_set", [None, []])
def test_no_tags_send_no_tagging(tag_set: list[dict[str, str]] | None) -> None:
    """Without tags no Tagging argument is sent."""
    assert "Tagging" not in create_upload_args({}, tag_set)


TRICKY_TAGS = [
    {"Key": "plain", "Value": "value"},
    {"Key": "with space", "Value": "a b  c"},
    {"Key": "plus+sign", "Value": "1+1=2"},
    {"Key": "amp&ersand", "Value": "x&y=z"},
    {"Key": "eq=uals", "Value": "=="},
    {"Key": "percent%", "Value": "100%25"},
    {"Key": "ünïcødé", "Value": "日本語 ✓"},
    {"Key": "slash/colon:", "Value": "s3://b/k?q#f"},
    {"Key": "empty", "Value": ""},
]


def test_tags_are_url_encoded_so_they_parse_back_exactly() -> None:
    """Tags with spaces, '+', '&', '=', '%' and unicode parse back key for key."""
    value = tagging_value(TRICKY_TAGS)
    assert parse_qsl(value, keep_blank_values=True, strict_parsing=True) == [
        (t["Key"], t["Value"]) for t in TRICKY_TAGS
    ]


def test_encoded_tags_are_ascii_with_separators_escaped() -> None:
    """The Tagging value is ASCII with no raw space and a literal '+' escaped."""
    value = tagging_value([{"Key": "a b", "Value": "c+d ü"}])
    assert value.isascii()
    assert " " not in value
    assert "%2B" in value
    assert parse_qsl(value) == [("a b", "c+d ü")]


@pytest.mark.parametrize("tags", [TRICKY_TAGS[:1], TRICKY_TAGS])
def test_tags_are_sent_as_the_tagging_argument(tags: list[dict[str, str]]) -> None:
    """Given tags, the upload's Tagging argument is their encoded value."""
    args = create_upload_args({}, tags)
    assert args == {"Tagging": tagging_value(tags)}
    assert parse_qsl(args["Tagging"], keep_blank_values=True) == [
        (t["Key"], t["Value"]) for t in tags
    ]


def test_object_lock_is_not_carried_by_default() -> None:
    """Object-lock settings on the source are left out unless asked for."""
    assert create_upload_args(dict(LOCK), None) == {}


def test_object_lock_is_carried_when_asked() -> None:
    """With object_lock=True the mode, retain-until date and legal hold are sent."""
    assert create_upload_args(dict(LOCK), None, object_lock=True) == LOCK


def test_absent_object_lock_fields_are_omitted_when_asked() -> None:
    """With object_lock=True only the lock fields the source has are sent."""
    head = {"ObjectLockLegalHoldStatus": "OFF", "ObjectLockMode": None}
    args = create_upload_args(head, None, object_lock=True)
    assert args == {"ObjectLockLegalHoldStatus": "OFF"}


def test_a_full_head_carries_everything_at_once() -> None:
    """A source with every property set gives all of them together."""
    head = {
        **CONTENT_HEADERS,
        **LOCK,
        "Metadata": {"k": "v"},
        "StorageClass": "INTELLIGENT_TIERING",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/data",
        "BucketKeyEnabled": True,
        "ChecksumCRC32C": "yZRlqg==",
        "ContentLength": 123,
    }
    tags = [{"Key": "team", "Value": "data eng"}]
    tagging = tagging_value(tags)
    assert create_upload_args(head, tags, object_lock=True) == {
        **CONTENT_HEADERS,
        **LOCK,
        "Metadata": {"k": "v"},
        "StorageClass": "INTELLIGENT_TIERING",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/data",
        "BucketKeyEnabled": True,
        "ChecksumAlgorithm": "CRC32C",
        "Tagging": tagging,
    }


def test_grants_become_put_object_acl_headers() -> None:
    """Each grant lands in its Grant* argument; WRITE and unknown grantees drop."""
    from engine.copy.properties import grant_args

    grants = [
        {
            "Grantee": {"ID": "owner-id", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        },
        {
            "Grantee": {
                "URI": "http://acs.amazonaws.com/groups/global/AllUsers",
                "Type": "Group",
            },
            "Permission": "READ",
        },
        {"Grantee": {"ID": "other", "Type": "CanonicalUser"}, "Permission": "READ"},
        {"Grantee": {"EmailAddress": "a@example.com"}, "Permission": "READ_ACP"},
        {"Grantee": {"ID": "x"}, "Permission": "WRITE"},
        {"Grantee": {}, "Permission": "WRITE_ACP"},
    ]
    assert grant_args(grants) == {
        "GrantFullControl": 'id="owner-id"',
        "GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers", '
        'id="other"',
        "GrantReadACP": 'emailAddress="a@example.com"',
    }
