"""The pure pieces of a multipart copy (engine.copy.parts)."""

from __future__ import annotations

from engine.copy.parts import first_failure, part_entry
from engine.copy.upload import Interrupted
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.domain.models import PartRecord


def test_a_part_entry_repeats_its_checksum_under_its_name() -> None:
    """Complete's list carries a part's checksum as UploadPartCopy named it."""
    plain = PartRecord(1, '"a"', 5, None)
    summed = PartRecord(2, '"b"', 5, "ChecksumCRC32=AAAAAA==")
    assert part_entry(plain) == {"PartNumber": 1, "ETag": '"a"'}
    assert part_entry(summed) == {
        "PartNumber": 2,
        "ETag": '"b"',
        "ChecksumCRC32": "AAAAAA==",
    }


def _err(code: str, disposition: Disposition) -> S3Error:
    return S3Error(code, code, None, disposition, "UploadPartCopy")


def test_the_failure_acted_on_stopping_first_then_fatal_then_the_first() -> None:
    """Of a failed group of part copies: the run stopping wins, then a fatal
    error (it decides the abort), then whatever there is."""
    retry, fatal = (
        _err("SlowDown", Disposition.THROTTLE),
        _err("NoSuchKey", Disposition.FATAL),
    )
    stop = Interrupted()
    nested = BaseExceptionGroup("parts", [retry, ExceptionGroup("more", [fatal])])
    assert first_failure(nested) is fatal
    assert first_failure(BaseExceptionGroup("parts", [retry, fatal, stop])) is stop
    assert first_failure(BaseExceptionGroup("parts", [retry])) is retry
