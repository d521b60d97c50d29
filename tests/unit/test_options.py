"""Copy options: invalid combinations refused by name, stored and read back intact."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.domain.errors import UsageError
from engine.domain.options import (
    ObjectOptions,
    parse_headers,
    parse_time,
    validate,
    validate_headers,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FUTURE = "2031-01-01T00:00:00Z"

# the content headers a user can only set with --metadata-directive REPLACE
CONTENT_HEADER_OPTIONS = [
    ("content_type", "text/plain", "--content-type"),
    ("cache_control", "no-cache", "--cache-control"),
    ("content_disposition", "attachment", "--content-disposition"),
    ("content_encoding", "gzip", "--content-encoding"),
    ("content_language", "en", "--content-language"),
    ("expires", "2030-01-01", "--expires"),
    ("website_redirect_location", "/elsewhere", "--website-redirect-location"),
]


def refused(options: dict[str, Any]) -> str:
    """The message of the UsageError ``validate`` raises for these options."""
    with pytest.raises(UsageError) as info:
        validate(ObjectOptions(**options), now=NOW)
    return str(info.value)


# -- validate: refused ---------------------------------------------------------

REFUSED = [
    pytest.param({"acl": "public"}, "--acl must be one of", id="acl-unknown"),
    pytest.param(
        {"metadata_directive": "MOVE"},
        "--metadata-directive must be one of COPY, REPLACE",
        id="metadata-directive-unknown",
    ),
    pytest.param(
        {"tagging_directive": "replace"},
        "--tagging-directive must be one of COPY, REPLACE",
        id="tagging-directive-lowercase",
    ),
    pytest.param({"sse": "aes256"}, "--sse must be one of", id="sse-unknown"),
    pytest.param(
        {"checksum_algorithm": "MD5"},
        "--checksum-algorithm must be one of",
        id="checksum-unknown",
    ),
    pytest.param(
        {"object_lock_mode": "STRICT", "object_lock_retain_until_date": FUTURE},
        "--object-lock-mode must be one of GOVERNANCE, COMPLIANCE",
        id="lock-mode-unknown",
    ),
    pytest.param(
        {"object_lock_legal_hold": "YES"},
        "--object-lock-legal-hold must be one of ON, OFF",
        id="legal-hold-unknown",
    ),
    pytest.param(
        {"retention_directive": "KEEP"},
        "--retention-directive must be one of COPY, REPLACE",
        id="retention-directive-unknown",
    ),
    pytest.param(
        {"acl": "private", "grant_read": 'id="abc"'},
        "--acl cannot be combined with --grant-*",
        id="acl-with-grant",
    ),
    pytest.param(
        {"acl": "private", "grant_full_control": 'id="abc"'},
        "--acl cannot be combined with --grant-*",
        id="acl-with-full-control",
    ),
    pytest.param(
        {"metadata": {"a": "1"}},
        "--metadata needs --metadata-directive REPLACE",
        id="metadata-without-directive",
    ),
    pytest.param(
        {"metadata_directive": "COPY", "metadata": {"a": "1"}},
        "--metadata needs --metadata-directive REPLACE",
        id="metadata-with-copy",
    ),
    pytest.param(
        {"metadata_directive": "REPLACE", "metadata": {"a": 1}},
        "--metadata must map names to strings",
        id="metadata-not-strings",
    ),
    pytest.param(
        {"metadata_directive": "REPLACE", "metadata": ["a", "1"]},
        "--metadata must map names to strings",
        id="metadata-not-a-map",
    ),
    pytest.param(
        {"metadata_directive": "REPLACE", "expires": "next week"},
        "--expires: 'next week' is not an ISO 8601 date",
        id="expires-not-a-date",
    ),
    pytest.param(
        {"metadata_directive": "REPLACE", "website_redirect_location": "elsewhere"},
        "--website-redirect-location must start with /, http:// or https://",
        id="redirect-relative",
    ),
    pytest.param(
        {"tags": {"a": "1"}},
        "--tag needs --tagging-directive REPLACE",
        id="tag-without-directive",
    ),
    pytest.param(
        {"tagging_directive": "COPY", "tags": {"a": "1"}},
        "--tag needs --tagging-directive REPLACE",
        id="tag-with-copy",
    ),
    pytest.param(
        {"tagging_directive": "REPLACE", "tags": {"a": 1}},
        "--tag must map names to strings",
        id="tag-not-strings",
    ),
    pytest.param(
        {"tagging_directive": "REPLACE", "tags": {f"k{i}": "v" for i in range(11)}},
        "--tag: S3 allows at most 10 tags per object",
        id="eleven-tags",
    ),
    pytest.param(
        {"storage_class": "standard-ia"},
        "--storage-class 'standard-ia' is not a storage class",
        id="storage-class-lowercase",
    ),
    pytest.param(
        {"storage_class": ""},
        "--storage-class '' is not a storage class",
        id="storage-class-empty",
    ),
    pytest.param(
        {"sse_kms_key_id": "alias/k"},
        "--sse-kms-key-id needs --sse aws:kms or aws:kms:dsse",
        id="kms-key-without-sse",
    ),
    pytest.param(
        {"sse": "AES256", "sse_kms_key_id": "alias/k"},
        "--sse-kms-key-id needs --sse aws:kms or aws:kms:dsse",
        id="kms-key-with-aes256",
    ),
    pytest.param(
        {"sse_kms_encryption_context": {"app": "x"}},
        "--sse-kms-encryption-context needs --sse aws:kms",
        id="kms-context-without-sse",
    ),
    pytest.param(
        {"bucket_key_enabled": True},
        "--bucket-key-enabled needs --sse aws:kms",
        id="bucket-key-without-sse",
    ),
    pytest.param(
        {"bucket_key_enabled": False, "sse": "AES256"},
        "--bucket-key-enabled needs --sse aws:kms",
        id="no-bucket-key-with-aes256",
    ),
    pytest.param(
        {"sse": "aws:kms", "sse_kms_encryption_context": {"app": 1}},
        "--sse-kms-encryption-context must map names to strings",
        id="kms-context-not-strings",
    ),
    pytest.param(
        {"sse": "AES256", "sse_c_key": "env:K"},
        "--sse and --sse-c-key are exclusive",
        id="sse-with-sse-c",
    ),
    pytest.param(
        {"object_lock_mode": "GOVERNANCE"},
        "--object-lock-mode and --object-lock-retain-until-date go together",
        id="lock-mode-without-date",
    ),
    pytest.param(
        {"object_lock_retain_until_date": FUTURE},
        "--object-lock-mode and --object-lock-retain-until-date go together",
        id="lock-date-without-mode",
    ),
    pytest.param(
        {
            "object_lock_mode": "COMPLIANCE",
            "object_lock_retain_until_date": "2020-01-01",
        },
        "--object-lock-retain-until-date is in the past",
        id="lock-date-past",
    ),
    pytest.param(
        {
            "object_lock_mode": "COMPLIANCE",
            "object_lock_retain_until_date": "2026-06-01T12:00:00Z",
        },
        "--object-lock-retain-until-date is in the past",
        id="lock-date-now",
    ),
    pytest.param(
        {"object_lock_mode": "COMPLIANCE", "object_lock_retain_until_date": "soon"},
        "--object-lock-retain-until-date: 'soon' is not an ISO 8601 date",
        id="lock-date-not-a-date",
    ),
    pytest.param(
        {"if_modified_since": "yesterday"},
        "--if-modified-since: 'yesterday' is not an ISO 8601 date",
        id="if-modified-since-not-a-date",
    ),
    pytest.param(
        {"if_unmodified_since": "2026-13-01"},
        "--if-unmodified-since: '2026-13-01' is not an ISO 8601 date",
        id="if-unmodified-since-bad-month",
    ),
    pytest.param(
        {"retention_period": 60, "retention_expiration_date": FUTURE},
        "--retention-period and --retention-expiration-date are exclusive",
        id="retention-period-and-date",
    ),
    pytest.param(
        {"retention_period": -1},
        "--retention-period must be a whole number of seconds",
        id="retention-period-negative",
    ),
    pytest.param(
        {"retention_period": "3600"},
        "--retention-period must be a whole number of seconds",
        id="retention-period-text",
    ),
    pytest.param(
        {"retention_expiration_date": "2031/01/01"},
        "--retention-expiration-date: '2031/01/01' is not an ISO 8601 date",
        id="retention-date-not-iso",
    ),
    pytest.param(
        {"retention_legal_hold_id": ""},
        "--retention-legal-hold-id must be 1 to 64 characters",
        id="legal-hold-id-empty",
    ),
    pytest.param(
        {"retention_legal_hold_id": "x" * 65},
        "--retention-legal-hold-id must be 1 to 64 characters",
        id="legal-hold-id-65",
    ),
]


@pytest.mark.parametrize(("options", "message"), REFUSED)
def test_invalid_options_are_refused_naming_the_option(
    options: dict[str, Any], message: str
) -> None:
    """Each invalid value or combination is a UsageError naming the flag at fault."""
    assert message in refused(options)


@pytest.mark.parametrize(("name", "value", "flag"), CONTENT_HEADER_OPTIONS)
@pytest.mark.parametrize("directive", [None, "COPY"])
def test_content_header_without_replace_is_refused(
    name: str, value: str, flag: str, directive: str | None
) -> None:
    """A content header without REPLACE is refused: S3 would silently ignore it."""
    message = refused({name: value, "metadata_directive": directive})
    assert message.startswith(f"{flag} needs --metadata-directive REPLACE")


@pytest.mark.parametrize(("name", "value", "flag"), CONTENT_HEADER_OPTIONS)
def test_content_header_with_replace_is_accepted(
    name: str, value: str, flag: str
) -> None:
    """Every content header is accepted once the metadata is replaced."""
    validate(ObjectOptions(metadata_directive="REPLACE", **{name: value}), now=NOW)


# -- validate: accepted --------------------------------------------------------

FULL_REPLACE = ObjectOptions(
    grant_read='id="abc"',
    grant_read_acp='uri="http://acs.amazonaws.com/groups/global/AllUsers"',
    grant_write_acp='emailAddress="a@example.com"',
    grant_full_control='id="def"',
    metadata_directive="REPLACE",
    metadata={"owner": "ana", "empty": ""},
    content_type="text/csv; charset=utf-8",
    cache_control="max-age=60",
    content_disposition='attachment; filename="a b.csv"',
    content_encoding="gzip",
    content_language="en-GB",
    expires="2030-01-31T12:00:00+02:00",
    website_redirect_location="https://example.com/x",
    tagging_directive="REPLACE",
    tags={f"k{i}": f"v{i}" for i in range(10)},
    storage_class="GLACIER_IR",
    sse="aws:kms",
    sse_kms_key_id="arn:aws:kms:us-east-1:111122223333:key/abc",
    sse_kms_encryption_context={"app": "archive"},
    bucket_key_enabled=True,
    source_sse_c_key="env:SRC_KEY",
    checksum_algorithm="CRC32C",
    object_lock_mode="GOVERNANCE",
    object_lock_retain_until_date="2031-01-01",
    object_lock_legal_hold="ON",
    if_match='"abc"',
    if_none_match='"def"',
    if_modified_since="2026-01-01",
    if_unmodified_since="2026-05-01T00:00:00Z",
    expected_bucket_owner="111122223333",
    expected_source_bucket_owner="444455556666",
    request_payer=True,
    retention_directive="REPLACE",
    retention_period=3600,
    retention_legal_hold_id="x" * 64,
)

ACCEPTED = [
    pytest.param(ObjectOptions(), id="nothing"),
    pytest.param(FULL_REPLACE, id="every-option"),
    pytest.param(
        ObjectOptions(acl="bucket-owner-full-control", sse="aws:kms:dsse"),
        id="acl-and-dsse",
    ),
    pytest.param(
        ObjectOptions(sse_c_key="env:DST", source_sse_c_key="file:/k"), id="sse-c"
    ),
    pytest.param(
        ObjectOptions(metadata_directive="REPLACE", metadata={}),
        id="replace-with-no-metadata",
    ),
    pytest.param(ObjectOptions(tagging_directive="REPLACE"), id="replace-no-tags"),
    pytest.param(ObjectOptions(metadata_directive="COPY"), id="explicit-copy"),
    pytest.param(
        ObjectOptions(sse="aws:kms", bucket_key_enabled=False), id="no-bucket-key"
    ),
    pytest.param(
        ObjectOptions(retention_expiration_date="2031-01-01T00:00:00Z"),
        id="retention-date",
    ),
    pytest.param(ObjectOptions(retention_period=0), id="retention-period-0"),
    pytest.param(
        ObjectOptions(
            metadata_directive="REPLACE", website_redirect_location="/local/page"
        ),
        id="redirect-absolute-path",
    ),
]


@pytest.mark.parametrize("options", ACCEPTED)
def test_valid_option_sets_are_accepted(options: ObjectOptions) -> None:
    """Valid combinations, up to every option at once, pass validation."""
    validate(options, now=NOW)


@pytest.mark.parametrize(
    ("until", "now"),
    [
        ("2030-01-01", datetime(2029, 12, 31, 23, 59, tzinfo=UTC)),
        ("2030-01-01T00:00:00", datetime(2029, 12, 31, 23, 30, tzinfo=UTC)),
        ("2030-01-01T10:00:00+02:00", datetime(2030, 1, 1, 7, 59, tzinfo=UTC)),
    ],
)
def test_retain_until_in_the_future_is_accepted(until: str, now: datetime) -> None:
    """A retain-until date after now (zones honoured, UTC by default) is accepted."""
    options = ObjectOptions(
        object_lock_mode="GOVERNANCE", object_lock_retain_until_date=until
    )
    validate(options, now=now)


def test_retain_until_compares_instants_across_zones() -> None:
    """10:00+02:00 is 08:00Z: already past at 08:30Z, though '10:00' reads later."""
    options = ObjectOptions(
        object_lock_mode="GOVERNANCE",
        object_lock_retain_until_date="2030-01-01T10:00:00+02:00",
    )
    with pytest.raises(UsageError, match="in the past"):
        validate(options, now=datetime(2030, 1, 1, 8, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2030-01-31", datetime(2030, 1, 31, tzinfo=UTC)),
        ("2030-01-31T12:00:00", datetime(2030, 1, 31, 12, tzinfo=UTC)),
        ("2030-01-31T12:00:00Z", datetime(2030, 1, 31, 12, tzinfo=UTC)),
        ("2030-01-31T12:00:00+02:00", datetime(2030, 1, 31, 10, tzinfo=UTC)),
    ],
)
def test_dates_are_read_as_instants_utc_by_default(
    text: str, instant: datetime
) -> None:
    """An ISO date without a zone is UTC; one with a zone keeps its instant."""
    when = parse_time(text, "expires")
    assert when == instant
    assert when.tzinfo is not None


# -- to_dict / from_dict -------------------------------------------------------


def test_unset_options_store_nothing() -> None:
    """Options left unset are not written into the job's stored spec."""
    assert ObjectOptions().to_dict() == {}
    assert ObjectOptions(storage_class="STANDARD_IA").to_dict() == {
        "storage_class": "STANDARD_IA"
    }


def test_every_option_survives_a_json_round_trip() -> None:
    """The stored spec (JSON) reads back as the very options that were given."""
    stored = json.loads(json.dumps(FULL_REPLACE.to_dict()))
    assert ObjectOptions.from_dict(stored) == FULL_REPLACE


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(ObjectOptions(sse="aws:kms", bucket_key_enabled=False), id="bke"),
        pytest.param(ObjectOptions(retention_period=0), id="retention-0"),
    ],
)
def test_explicit_false_or_zero_survives_the_round_trip(options: ObjectOptions) -> None:
    """--no-bucket-key-enabled and --retention-period 0 are stored, not dropped."""
    assert ObjectOptions.from_dict(options.to_dict()) == options


def test_from_dict_refuses_an_unknown_option_by_its_flag() -> None:
    """A stored or spec-file option bulkcopy does not know is named as a flag."""
    with pytest.raises(UsageError, match=r"^unknown copy option --storage-klass$"):
        ObjectOptions.from_dict({"storage_klass": "STANDARD", "acl": "private"})


def test_given_headers_are_named_as_s3_parameters() -> None:
    """The content headers set become their S3 parameter names, unset ones absent."""
    options = ObjectOptions(
        metadata_directive="REPLACE",
        content_type="a/b",
        expires="2030-01-01",
        website_redirect_location="/x",
    )
    assert options.given_headers() == {
        "ContentType": "a/b",
        "Expires": "2030-01-01",
        "WebsiteRedirectLocation": "/x",
    }


# -- parse_headers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["x-tenant:blue"], {"x-tenant": "blue"}),
        (["X-Tenant :  blue sky "], {"X-Tenant": "blue sky"}),
        (["x-url:http://a:8080/b"], {"x-url": "http://a:8080/b"}),
        (["x-empty:"], {"x-empty": ""}),
        (["x-a:1", "x-b:2"], {"x-a": "1", "x-b": "2"}),
        (["x-a:1", "x-a:2"], {"x-a": "2"}),
        ([], {}),
    ],
)
def test_headers_parse_as_name_value(
    values: list[str], expected: dict[str, str]
) -> None:
    """NAME:VALUE splits at the first colon, trimmed; a repeated name keeps the last."""
    assert parse_headers(values) == expected


@pytest.mark.parametrize("raw", ["x-tenant", ":blue", "bad name:v", "x(y):v", ""])
def test_malformed_header_is_refused(raw: str) -> None:
    """A header without a colon or with an invalid name is refused, quoted."""
    with pytest.raises(UsageError) as info:
        parse_headers([raw])
    assert str(info.value) == f"--header {raw!r}: expected NAME:VALUE"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "host",
        "Content-Length",
        "transfer-encoding",
        "X-Amz-Date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "X-AMZ-COPY-SOURCE",
        "x-amz-copy-source-range",
    ],
)
def test_reserved_header_is_refused_in_any_case(name: str) -> None:
    """Headers the signature or transport owns cannot be set, whatever their case."""
    with pytest.raises(UsageError, match=f"^--header {name} is set by bulkcopy"):
        parse_headers([f"{name}:x"])


def test_validate_headers_refuses_a_reserved_name_from_a_spec_file() -> None:
    """Headers given as a table (spec file) are held to the same rules."""
    validate_headers({"x-tenant": "blue"})
    with pytest.raises(UsageError, match="--header Host is set by bulkcopy"):
        validate_headers({"x-tenant": "blue", "Host": "evil.example"})
