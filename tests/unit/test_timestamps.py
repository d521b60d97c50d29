"""The S3 client's timestamp parser gives what botocore's gives, faster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from botocore.utils import parse_timestamp
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.errors import UsageError
from engine.domain.spec import ClientSettings
from engine.s3.client import make_session
from engine.s3.lean.answer import http_date, timestamp

MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)
).map(lambda d: d.replace(tzinfo=UTC))


@given(MOMENTS)
def test_the_forms_s3_sends_parse_as_botocore_parses_them(moment: datetime) -> None:
    for text in (
        moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        moment.astimezone(UTC).isoformat(),
        (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    ):
        ours, theirs = timestamp(text), parse_timestamp(text)
        assert ours == theirs, text
        assert ours.utcoffset() == theirs.utcoffset(), text


def test_other_forms_go_to_botocore() -> None:
    for text in ("1700000000", "2026-12-07", "Monday, 07-Dec-26 07:09:15 GMT"):
        assert timestamp(text) == parse_timestamp(text)


def test_the_clients_parse_with_it() -> None:
    """Every client of the session answers with this parser (a listing's
    LastModified, a HEAD's Last-Modified)."""
    session = make_session(ClientSettings())
    factory = session._session.get_component("response_parser_factory")
    assert factory._defaults["timestamp_parser"] is timestamp


def test_sessions_share_one_model_loader() -> None:
    """A run opens two clients (the listing's, the copies'): S3's JSON model
    and endpoint rules are parsed once per process, not once per session."""
    first = make_session(ClientSettings())._session.get_component("data_loader")
    second = make_session(ClientSettings())._session.get_component("data_loader")
    assert first is second


def test_an_unknown_profile_is_a_usage_error() -> None:
    """`--profile nope` is refused when the session is made (exit 2), as
    before the loader was shared, not later as missing credentials."""
    with pytest.raises(UsageError, match=r"--profile: .*nope"):
        make_session(ClientSettings(profile="nope"))


@given(MOMENTS.map(lambda d: d.replace(microsecond=0)))
def test_http_dates_read_fast_are_read_as_email_utils_reads_them(
    when: datetime,
) -> None:
    """S3's HTTP dates (``Sun, 06 Nov 1994 08:49:37 GMT``) read by the fast
    path are the same instants, in UTC, as ``email.utils`` reads them; any
    other form is left to it."""
    text = format_datetime(when, usegmt=True)
    assert http_date(text) == parsedate_to_datetime(text)
    assert http_date(text).tzinfo is UTC  # type: ignore[union-attr]
    assert http_date(text.replace("GMT", "+0000")) is None
    assert http_date("Sun, 06 Nov 1994 08:49:37 XYZ") is None
    assert http_date("Sun, 06 Foo 1994 08:49:37 GMT") is None
