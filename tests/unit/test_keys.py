"""Destination keys: --to prefix, --strip-prefix and --key-template, key by key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.errors import UsageError
from engine.domain.keys import KeyMapping, check_template, normalize_prefix
from engine.domain.models import ObjectRef

# No example database, so failing examples are not saved under .hypothesis/.
PROPERTY = settings(database=None, deadline=None, max_examples=100)

PHOTO = ObjectRef("src", "photos/2024/a.jpg")


def dst(template: str, key: str, prefix: str = "", version: str | None = None) -> str:
    mapping = KeyMapping(prefix=prefix, template=template)
    return mapping.destination(ObjectRef("src", key, version))


# -- templates ---------------------------------------------------------------------

TEMPLATES = [
    # template, source key, destination key
    ("{key}", "photos/2024/a.jpg", "photos/2024/a.jpg"),
    ("{basename}", "photos/2024/a.jpg", "a.jpg"),
    ("{dirname}", "photos/2024/a.jpg", "photos/2024"),
    ("{stem}", "photos/2024/a.jpg", "a"),
    ("{ext}", "photos/2024/a.jpg", ".jpg"),
    ("{bucket}/{key}", "photos/2024/a.jpg", "src/photos/2024/a.jpg"),
    ("{dirname}/{stem}-v1{ext}", "photos/2024/a.jpg", "photos/2024/a-v1.jpg"),
    ("{stem}|{ext}", "archive.tar.gz", "archive.tar|.gz"),
    ("{stem}|{ext}", ".env", ".env|"),
    ("{dirname}|{stem}|{ext}", "conf/.env", "conf|.env|"),
    ("{stem}|{ext}", "README", "README|"),
    ("{stem}|{ext}", "v1.2/README", "README|"),
    ("{stem}|{ext}", "trailing.", "trailing|."),
    ("{dirname}|{basename}", "a.jpg", "|a.jpg"),
    ("{dirname}|{basename}", "dir/", "dir|"),
    ("{dirname}|{basename}", "/a.jpg", "|a.jpg"),
    ("{dirname}|{basename}", "a//b", "a/|b"),
    ("{key}", "/leading/slash", "/leading/slash"),
    ("{key}", " spaced ", " spaced "),
    ("{stem}-{ext}", "日本/写真.JPG", "写真-.JPG"),
    ("{{{key}}}", "k", "{k}"),
    ("fixed-name", "anything", "fixed-name"),
]


@pytest.mark.parametrize(("template", "key", "expected"), TEMPLATES)
def test_template_fields(template: str, key: str, expected: str) -> None:
    """Each field names its documented part of the source key."""
    assert dst(template, key) == expected


def test_version_id_field_is_the_version_or_empty() -> None:
    """{version_id} is the source version, or empty for an unversioned row."""
    assert dst("{key}@{version_id}", "k", version="3HL4kqtJ") == "k@3HL4kqtJ"
    assert dst("{key}@{version_id}", "k") == "k@"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", "photos/2024/a.jpg"),
        ("backup", "backup/photos/2024/a.jpg"),
        ("backup/", "backup/photos/2024/a.jpg"),
        ("a/b", "a/b/photos/2024/a.jpg"),
    ],
)
def test_prefix_is_a_folder_with_or_without_slash(prefix: str, expected: str) -> None:
    """The destination prefix goes first, as a folder whether or not it ends in '/'."""
    assert KeyMapping(prefix=prefix).destination(PHOTO) == expected


def test_template_output_goes_under_the_prefix() -> None:
    """A templated name is placed under the prefix too."""
    assert dst("{basename}", "photos/2024/a.jpg", prefix="flat") == "flat/a.jpg"


def test_leading_slashes_of_a_key_are_kept_under_the_prefix() -> None:
    """A key starting with '/' keeps it: the result has a double slash, as in S3."""
    assert dst("{key}", "/abs/a", prefix="p") == "p//abs/a"
    assert dst("{key}", "//x", prefix="") == "//x"


# -- strip prefix ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strip", "template", "prefix", "expected"),
    [
        ("photos/", "{key}", "", "2024/a.jpg"),
        ("photos/", "{key}", "dst", "dst/2024/a.jpg"),
        ("photos/2024/", "{key}", "", "a.jpg"),
        ("photos/", "{dirname}/{basename}", "", "2024/a.jpg"),
        ("pho", "{key}", "", "tos/2024/a.jpg"),
    ],
)
def test_strip_prefix_is_removed_before_mapping(
    strip: str, template: str, prefix: str, expected: str
) -> None:
    """--strip-prefix is cut off the key before the template and prefix apply."""
    mapping = KeyMapping(prefix=prefix, strip_prefix=strip, template=template)
    assert mapping.destination(PHOTO) == expected


@pytest.mark.parametrize("strip", ["Photos/", "videos/", "photos/2024/a.jpg/"])
def test_key_without_the_strip_prefix_has_no_destination(strip: str) -> None:
    """A key that does not start with the strip prefix (case-sensitive) is an error."""
    with pytest.raises(ValueError, match="does not start with --strip-prefix") as info:
        KeyMapping(strip_prefix=strip).destination(PHOTO)
    assert repr(strip) in str(info.value)


def test_key_mapping_to_nothing_is_an_error() -> None:
    """A template that yields an empty key with no prefix is refused for that row."""
    with pytest.raises(ValueError, match="empty destination key"):
        dst("{dirname}", "a.jpg")
    with pytest.raises(ValueError, match="empty destination key"):
        KeyMapping(strip_prefix="a.jpg").destination(ObjectRef("b", "a.jpg"))


# -- the 1024-byte limit --------------------------------------------------------------


def test_key_of_exactly_1024_bytes_is_allowed() -> None:
    """S3's limit is 1024 bytes of UTF-8, prefix included; exactly that is fine."""
    assert dst("{key}", "é" * 510, prefix="ppp") == "ppp/" + "é" * 510  # 4 + 1020


@pytest.mark.parametrize(
    ("key", "prefix"),
    [("k" * 1025, ""), ("é" * 513, ""), ("k" * 1022, "pp"), ("日" * 342, "")],
)
def test_key_over_1024_bytes_has_no_destination(key: str, prefix: str) -> None:
    """A destination key over 1024 bytes (counted in UTF-8) is refused."""
    with pytest.raises(ValueError, match="over the 1024-byte S3 limit"):
        dst("{key}", key, prefix=prefix)


def test_a_template_can_push_a_key_over_the_limit() -> None:
    """The limit applies to the templated key, not to the source key."""
    with pytest.raises(ValueError, match="1024-byte"):
        dst("{key}/{key}", "k" * 600)


# -- properties of the mapping -------------------------------------------------------

KEYS = st.text(min_size=1, max_size=200)
PREFIXES = st.text(max_size=20)


@PROPERTY
@given(key=KEYS, prefix=PREFIXES, bucket=st.sampled_from(["b", "other-bucket"]))
def test_default_mapping_is_prefix_plus_key(key: str, prefix: str, bucket: str) -> None:
    """Without template or strip prefix, every key lands at folder-prefix + key."""
    mapping = KeyMapping(prefix=prefix)
    assert mapping.destination(ObjectRef(bucket, key)) == normalize_prefix(prefix) + key


@PROPERTY
@given(key=KEYS)
def test_name_fields_reassemble_the_key(key: str) -> None:
    """{stem}{ext} is always {basename}; {dirname}/{basename} is a key with a '/'."""
    assert dst("{stem}{ext}|", key) == dst("{basename}|", key)
    if "/" in key:
        assert dst("{dirname}/{basename}", key) == key


@PROPERTY
@given(strip=st.text(max_size=20), rest=KEYS)
def test_strip_prefix_removes_exactly_the_prefix(strip: str, rest: str) -> None:
    """A key starting with the strip prefix maps to what follows it."""
    mapping = KeyMapping(strip_prefix=strip)
    assert mapping.destination(ObjectRef("b", strip + rest)) == rest


def test_injective_only_for_the_plain_key_mapping() -> None:
    """Only {key} without a strip prefix is known to keep distinct keys apart."""
    assert KeyMapping().injective
    assert KeyMapping(prefix="anything/").injective
    assert not KeyMapping(strip_prefix="p/").injective
    assert not KeyMapping(template="{basename}").injective
    assert not KeyMapping(template="{bucket}/{key}").injective


def test_mapping_round_trips_through_its_dict() -> None:
    """The mapping stored with a job reads back the same; missing keys are defaults."""
    mapping = KeyMapping(prefix="p/", strip_prefix="s/", template="{stem}{ext}")
    assert KeyMapping.from_dict(mapping.to_dict()) == mapping
    assert KeyMapping.from_dict({}) == KeyMapping()


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", ""), ("a", "a/"), ("a/", "a/"), ("a//", "a//"), ("/", "/"), (" ", " /")],
)
def test_normalize_prefix(prefix: str, expected: str) -> None:
    """A non-empty prefix gains one trailing '/' unless it has one; nothing else."""
    assert normalize_prefix(prefix) == expected


# -- check_template ----------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{key}",
        "{bucket}/{dirname}/{stem}{ext}@{version_id}",
        "{basename}",
        "{{literal}}/{key}",
        "no-fields-at-all",
    ],
)
def test_valid_templates_pass(template: str) -> None:
    """Templates made of the documented fields and literal text are accepted."""
    check_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{name}", "--key-template: unknown field {name}; use {key}, {basename}"),
        ("{}", "--key-template: unknown field {}"),
        ("{0}", "--key-template: unknown field {0}"),
        ("{key.upper}", "--key-template: unknown field {key.upper}"),
        ("{key[0]}", "--key-template: unknown field {key[0]}"),
        ("{KEY}", "--key-template: unknown field {KEY}"),
        ("{key!r}", "--key-template: {key} takes no format spec or conversion"),
        ("{key:>10}", "--key-template: {key} takes no format spec or conversion"),
        ("{ext:{stem}}", "--key-template: {ext} takes no format spec or conversion"),
        ("{key", "--key-template '{key': "),
        ("key}", "--key-template 'key}': "),
    ],
)
def test_bad_templates_are_refused_naming_the_problem(
    template: str, message: str
) -> None:
    """Unknown fields, format specs and unbalanced braces are usage errors."""
    with pytest.raises(UsageError) as info:
        check_template(template)
    assert str(info.value).startswith(message)


def test_unknown_field_message_lists_every_field() -> None:
    """The message for an unknown field lists all the fields one may use."""
    with pytest.raises(UsageError) as info:
        check_template("{path}")
    for name in ("key", "basename", "dirname", "stem", "ext", "bucket", "version_id"):
        assert "{" + name + "}" in str(info.value)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("a.jpg", "out/a-copy.jpg"), ("d/e/a.jpg", "out/d/e/a-copy.jpg")],
)
def test_dirname_slash_disappears_for_keys_without_a_directory(
    key: str, expected: str
) -> None:
    """'{dirname}/…' gives no leading slash when the key has no directory."""
    mapping = KeyMapping("out", template="{dirname}/{stem}-copy{ext}")
    assert mapping.destination(ObjectRef("b", key)) == expected
