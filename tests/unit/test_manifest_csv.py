"""The CSV manifest reader: decoding keys, skipping noise, pinning bad rows to lines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.domain.models import ManifestEntry, ObjectRef
from engine.manifest.csv import decode_key, parse_row, read_csv_manifest

WriteManifest = Callable[..., str]


def read(write_manifest: WriteManifest, content: bytes | str) -> list[ManifestEntry]:
    return list(read_csv_manifest(write_manifest(content)))


def lines_and_errors(entries: list[ManifestEntry]) -> list[tuple[int, bool]]:
    return [(e.line, e.error is not None) for e in entries]


# -- decode_key ---------------------------------------------------------------

AWKWARD_KEYS = [
    ("a%2Bb+c", "a+b c"),
    ("100%25", "100%"),
    ("100%2525", "100%25"),
    ("caf%C3%A9", "café"),
    ("%E6%97%A5%E6%9C%AC/%F0%9F%93%81", "日本/📁"),
    ("what?", "what?"),
    ("what%3F", "what?"),
    ("a#b", "a#b"),
    ("a%23b", "a#b"),
    ("a//b", "a//b"),
    ("/leading/slash", "/leading/slash"),
    ("+lead", " lead"),
    ("trail+", "trail "),
    ("%20both%20", " both "),
    ("++", "  "),
    ("plain/key.txt", "plain/key.txt"),
]


@pytest.mark.parametrize(("raw", "key"), AWKWARD_KEYS)
def test_decode_key_decodes_like_s3_batch_operations(raw: str, key: str) -> None:
    """A manifest key is decoded with unquote_plus: '+' is a space, %XX a byte."""
    assert decode_key(raw) == key


def test_decode_key_rejects_bytes_that_are_not_utf8() -> None:
    """A percent-encoding that decodes to invalid UTF-8 raises instead of guessing."""
    with pytest.raises(ValueError, match="utf-8"):
        decode_key("k%FF")


# -- parse_row ----------------------------------------------------------------


def test_parse_row_returns_decoded_reference_for_a_good_row() -> None:
    """A good two-column row becomes a reference with the decoded key and no error."""
    assert parse_row(["b", "a%2Bb+c"], None) == (ObjectRef("b", "a+b c"), None)


def test_parse_row_keeps_version_id_of_a_good_three_column_row() -> None:
    """A good three-column row carries its version id."""
    assert parse_row(["b", "k", "v1"], 3) == (ObjectRef("b", "k", "v1"), None)


def test_parse_row_rejects_a_width_different_from_earlier_rows() -> None:
    """A row whose column count differs from the settled width is an error."""
    _, error = parse_row(["b", "k", "v1"], 2)
    assert error is not None
    assert "earlier rows have 2" in error


def test_parse_row_rejects_a_bucket_with_a_slash() -> None:
    """A bucket name containing '/' is reported, not split into bucket and key."""
    _, error = parse_row(["b/x", "k"], None)
    assert error is not None
    assert "invalid bucket name" in error


# -- read_csv_manifest: good input ----------------------------------------------


@pytest.mark.parametrize(("raw", "key"), AWKWARD_KEYS)
def test_reader_yields_keys_decoded_exactly(
    write_manifest: WriteManifest, raw: str, key: str
) -> None:
    """Every awkward key comes out of a manifest file decoded, byte for byte."""
    entries = read(write_manifest, f"bucket-1,{raw}\n")
    assert entries == [ManifestEntry(1, ObjectRef("bucket-1", key))]


@pytest.mark.parametrize(
    "header", ["bucket,key", "bucket,key,version_id", "Bucket,Key,VersionId"]
)
def test_reader_skips_a_header_row(write_manifest: WriteManifest, header: str) -> None:
    """A first row naming the columns is a header, not an object."""
    width = header.count(",") + 1
    row = "b,k" if width == 2 else "b,k,v1"
    entries = read(write_manifest, f"{header}\n{row}\n")
    assert [(e.line, e.src.bucket, e.error) for e in entries] == [(2, "b", None)]


def test_reader_treats_a_header_like_row_after_the_first_as_data(
    write_manifest: WriteManifest,
) -> None:
    """Only the first row can be a header; a later 'bucket,key' row is an object."""
    entries = read(write_manifest, "b,k\nbucket,key\n")
    assert [e.src for e in entries] == [ObjectRef("b", "k"), ObjectRef("bucket", "key")]


def test_reader_accepts_a_utf8_bom(write_manifest: WriteManifest) -> None:
    """A UTF-8 byte order mark is not part of the first bucket name."""
    entries = read(write_manifest, b"\xef\xbb\xbfb,k1\nb,k2\n")
    assert entries == [
        ManifestEntry(1, ObjectRef("b", "k1")),
        ManifestEntry(2, ObjectRef("b", "k2")),
    ]


def test_reader_accepts_a_utf8_bom_before_a_header(
    write_manifest: WriteManifest,
) -> None:
    """A header preceded by a byte order mark is still recognised and skipped."""
    entries = read(write_manifest, b"\xef\xbb\xbfbucket,key\nb,k1\n")
    assert entries == [ManifestEntry(2, ObjectRef("b", "k1"))]


def test_reader_skips_blank_lines_and_keeps_counting(
    write_manifest: WriteManifest,
) -> None:
    """Blank lines yield nothing, and the rows after them keep their file line."""
    entries = read(write_manifest, "b,k1\n\n\r\nb,k2\n\n")
    assert entries == [
        ManifestEntry(1, ObjectRef("b", "k1")),
        ManifestEntry(4, ObjectRef("b", "k2")),
    ]


def test_reader_accepts_crlf_line_endings(write_manifest: WriteManifest) -> None:
    """Windows line endings do not leak into keys or version ids."""
    entries = read(write_manifest, "b,k1,v1\r\nb,k2,v2\r\n")
    assert [e.src for e in entries] == [
        ObjectRef("b", "k1", "v1"),
        ObjectRef("b", "k2", "v2"),
    ]


def test_reader_yields_version_ids_of_versioned_rows(
    write_manifest: WriteManifest,
) -> None:
    """Each row of a three-column manifest pins its object version."""
    entries = read(write_manifest, "b,k,v1\nb,k,v2\nb,other%2Bkey,null\n")
    assert entries == [
        ManifestEntry(1, ObjectRef("b", "k", "v1")),
        ManifestEntry(2, ObjectRef("b", "k", "v2")),
        ManifestEntry(3, ObjectRef("b", "other+key", "null")),
    ]


# -- read_csv_manifest: malformed rows --------------------------------------------

MALFORMED_MIDDLE_ROW = [
    pytest.param(b"b,k1\nb,k2,v,x\nb,k3\n", "got 4", id="four-columns"),
    pytest.param(b"b,k1\nb\nb,k3\n", "got 1", id="one-column"),
    pytest.param(b"b,k1\nb,k2,v\nb,k3\n", "earlier rows have 2", id="2-then-3"),
    pytest.param(b"b,k1,v1\nb,k2\nb,k3,v3\n", "earlier rows have 3", id="3-then-2"),
    pytest.param(b"b,k1\nb,k\x002\nb,k3\n", "NUL byte", id="nul-byte"),
    pytest.param(b"b,k1\nb,\nb,k3\n", "empty key", id="empty-key"),
    pytest.param(b"b,k1\n,k2\nb,k3\n", "empty bucket", id="empty-bucket"),
    pytest.param(b"b,k1\nb/x,k2\nb,k3\n", "invalid bucket", id="slash-in-bucket"),
    pytest.param(b"b,k1\nb,k\xff2\nb,k3\n", "not valid UTF-8", id="invalid-utf8"),
    pytest.param(
        b"b,k1\nb,k%FF\nb,k3\n", "does not URL-decode to UTF-8", id="percent-ff"
    ),
    pytest.param(b"b,k1,v1\nb,k2,\nb,k3,v3\n", "empty version id", id="empty-ver"),
    pytest.param(b'b,k1\nb,"k2"x\nb,k3\n', "malformed CSV", id="junk-after-quote"),
]


@pytest.mark.parametrize(("content", "reason"), MALFORMED_MIDDLE_ROW)
def test_reader_reports_a_malformed_row_on_its_line_and_carries_on(
    write_manifest: WriteManifest, content: bytes, reason: str
) -> None:
    """A bad row comes out with an error on its own line; its neighbours are good."""
    entries = read(write_manifest, content)
    assert lines_and_errors(entries) == [(1, False), (2, True), (3, False)]
    assert reason in (entries[1].error or "")
    assert entries[2].src.key == "k3"


def test_reader_reports_an_unterminated_quote_at_end_of_file(
    write_manifest: WriteManifest,
) -> None:
    """A quote left open at the end of the file is an error on the line it opened."""
    entries = read(write_manifest, 'b,k1\nb,k2\nb,"k3\nmore\n')
    assert lines_and_errors(entries) == [(1, False), (2, False), (3, True)]
    assert "unterminated quoted field" in (entries[2].error or "")


def test_reader_keeps_line_numbers_after_a_multiline_quoted_field(
    write_manifest: WriteManifest,
) -> None:
    """A quoted key spanning lines does not shift the line numbers of later rows."""
    entries = read(write_manifest, 'b,"two\nlines"\nb,k2\nb,\nb,k4\n')
    assert lines_and_errors(entries) == [(1, False), (3, False), (4, True), (5, False)]
    assert entries[0].src.key == "two\nlines"
    assert entries[2].error == "empty key"


def test_reader_reports_every_bad_row_among_good_ones(
    write_manifest: WriteManifest,
) -> None:
    """Several bad rows each get their own entry and no good row is lost."""
    content = b"b,k1\n,k2\nb,k3\nb,k\x004\nb,k5\nb,%FF\nb,k7\n"
    entries = read(write_manifest, content)
    assert lines_and_errors(entries) == [
        (1, False),
        (2, True),
        (3, False),
        (4, True),
        (5, False),
        (6, True),
        (7, False),
    ]
    assert [e.src.key for e in entries if e.error is None] == ["k1", "k3", "k5", "k7"]


def test_reader_keeps_partial_reference_of_a_bad_row(
    write_manifest: WriteManifest,
) -> None:
    """A bad row still carries what could be read of it, for the failed-task record."""
    entries = read(write_manifest, b"b,k1\nb,\n")
    assert entries[1].src == ObjectRef("b", "")
