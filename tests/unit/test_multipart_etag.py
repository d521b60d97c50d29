"""The ETag S3 gives a completed multipart object, computed from its part ETags."""

from __future__ import annotations

import hashlib

import pytest

from engine.copy.parts import expected_etag


def md5(data: bytes) -> hashlib._Hash:
    return hashlib.md5(data, usedforsecurity=False)


def s3_multipart_etag(parts: list[bytes]) -> str:
    """The multipart ETag as S3 documents it, computed here without the engine."""
    binary_md5s = b"".join(md5(p).digest() for p in parts)
    return '"' + md5(binary_md5s).hexdigest() + f"-{len(parts)}" + '"'


PARTS = {
    1: [b"only part"],
    2: [b"a" * 5 * 1024 * 1024, b"tail"],
    3: [b"first", b"second", b"\x00\xff third"],
}


@pytest.mark.parametrize("count", sorted(PARTS))
def test_expected_etag_matches_s3s_formula(count: int) -> None:
    """The ETag is the quoted MD5 of the parts' binary MD5s followed by -N."""
    parts = PARTS[count]
    etags = [f'"{md5(p).hexdigest()}"' for p in parts]
    assert expected_etag(etags) == s3_multipart_etag(parts)
    assert expected_etag(etags).endswith(f'-{count}"')


def test_expected_etag_of_a_known_pair() -> None:
    """Two known part ETags give the ETag computed from their bytes by hand."""
    etags = [
        '"5d41402abc4b2a76b9719d911017c592"',  # md5(b"hello")
        '"7d793037a0760186574b0282f2f435e7"',  # md5(b"world")
    ]
    assert expected_etag(etags) == s3_multipart_etag([b"hello", b"world"])


def test_quoted_and_unquoted_part_etags_agree() -> None:
    """Part ETags with or without their surrounding quotes give the same result."""
    hexes = [md5(p).hexdigest() for p in PARTS[3]]
    assert expected_etag(hexes) == expected_etag([f'"{h}"' for h in hexes])


def test_part_order_matters() -> None:
    """The same parts in another order give a different ETag."""
    etags = [f'"{md5(p).hexdigest()}"' for p in PARTS[2]]
    assert expected_etag(etags) != expected_etag(etags[::-1])


def test_a_single_part_is_not_the_plain_md5() -> None:
    """A one-part multipart ETag is the MD5 of the MD5, with -1, not the part's own."""
    etag = f'"{md5(b"only part").hexdigest()}"'
    assert expected_etag([etag]) != etag
    assert expected_etag([etag]) == s3_multipart_etag([b"only part"])
