"""Sorting S3 outcomes into retry, throttle or fatal; naming bare status codes."""

from __future__ import annotations

import pytest

from engine.domain.classify import Disposition, classify, name_status_code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SlowDown", 503),
        ("SlowDown", None),
        ("SlowDown", 200),
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        (None, 503),
        (None, 429),
        ("503", None),
        ("429", None),
        ("SomethingNew", 503),
        ("SomethingNew", 429),
    ],
)
def test_throttling_backs_off_harder(code: str | None, status: int | None) -> None:
    """SlowDown-style codes, 503 and 429 mean the service asks us to slow down."""
    assert classify(code, status) is Disposition.THROTTLE


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("InternalError", 500, id="InternalError"),
        pytest.param("InternalError", 200, id="InternalError-in-200-OK"),
        pytest.param("RequestTimeout", 400, id="RequestTimeout"),
        pytest.param("500", None, id="botocore-invented-500"),
        pytest.param("502", None, id="botocore-invented-502"),
        pytest.param(None, 200, id="error-embedded-in-200"),
        pytest.param("SomethingNew", 200, id="unknown-code-in-200"),
        pytest.param("ConnectionError", None, id="ConnectionError"),
        pytest.param("ReadTimeout", None, id="ReadTimeout"),
        pytest.param("EmptyResponse", 200, id="EmptyResponse"),
        pytest.param("MissingETag", 200, id="MissingETag"),
        pytest.param("ExpiredToken", 400, id="ExpiredToken"),
        pytest.param(None, None, id="no-answer-at-all"),
        pytest.param(None, 500, id="500"),
        pytest.param(None, 502, id="502"),
        pytest.param(None, 504, id="504"),
        pytest.param(None, 599, id="599"),
        pytest.param("SomethingNew", 500, id="unknown-code-5xx"),
        pytest.param(None, 408, id="408"),
        pytest.param(None, 409, id="409"),
    ],
)
def test_transient_failures_are_retried(code: str | None, status: int | None) -> None:
    """Server errors, errors inside a 200 OK, and dropped connections are retried."""
    assert classify(code, status) is Disposition.RETRY


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("NoSuchKey", 404),
        ("NoSuchBucket", 404),
        ("NoSuchVersion", 404),
        ("AccessDenied", 403),
        ("InvalidObjectState", 403),
        ("PreconditionFailed", 412),
        ("InvalidRequest", 400),
        ("NoSuchKey", 500),
        ("AccessDenied", None),
        ("404", None),
        ("SomethingNew", 400),
        ("SomethingNew", 404),
        (None, 400),
        (None, 403),
        (None, 404),
        (None, 412),
        (None, 418),
    ],
)
def test_permanent_failures_are_fatal(code: str | None, status: int | None) -> None:
    """Missing objects, denied access, failed preconditions and unknown 4xx give up."""
    assert classify(code, status) is Disposition.FATAL


def test_a_known_code_wins_over_the_status() -> None:
    """The error code decides before the HTTP status does."""
    assert classify("SlowDown", 500) is Disposition.THROTTLE
    assert classify("NoSuchKey", 503) is Disposition.FATAL
    assert classify("InternalError", 404) is Disposition.RETRY


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        ("404", 404, "NoSuchKey"),
        ("403", 403, "AccessDenied"),
        ("412", 412, "PreconditionFailed"),
        ("400", 400, "BadRequest"),
        ("405", 405, "MethodNotAllowed"),
        ("500", 500, "500"),
        ("404", None, "404"),
        ("NoSuchKey", 404, "NoSuchKey"),
        ("SlowDown", 503, "SlowDown"),
    ],
)
def test_name_status_code_names_bare_head_codes(
    code: str, status: int | None, name: str
) -> None:
    """A bare numeric code from a body-less HEAD gets its S3 name; others stay."""
    assert name_status_code(code, status) == name


def test_an_input_that_cannot_be_read_for_a_missing_bucket_cannot_start() -> None:
    """A listing or S3 manifest refused for a missing bucket or access is
    "the job cannot start" (exit 3); a throttled or malformed answer is not."""
    from engine.domain.classify import cannot_start

    assert cannot_start("NoSuchBucket", 404)
    assert cannot_start("AccessDenied", 403)
    assert cannot_start("Unknown", 403)
    assert not cannot_start("SlowDown", 503)
    assert not cannot_start("InternalError", 500)
