"""The lean path's one answer builder: the same rules for every operation,
their differences named as data (pure, no network)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from engine.domain.backoff import RetryPolicy
from engine.domain.classify import Disposition
from engine.domain.errors import S3Error
from engine.s3 import call
from engine.s3.call import invoke
from engine.s3.lean import client as lean_client
from engine.s3.lean.answer import (
    COPY_OBJECT,
    DELETE_OBJECT,
    Fallback,
    HeaderMembers,
    Operation,
    answer,
)
from engine.s3.lean.client import LeanClient
from engine.s3.lean.copier import LeanCopier
from engine.s3.wire import Response

HEAD_OBJECT = Operation("HeadObject", HeaderMembers({"etag": "ETag"}), region_hint=True)
OPERATIONS = [COPY_OBJECT, DELETE_OBJECT, HEAD_OBJECT]
IDS = ["copy", "delete", "head"]


def _response(status: int, body: bytes = b"", **headers: str) -> Response:
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return Response(status, "Whatever Reason", names, body)


def _error(op: Operation, response: Response) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        answer(op, response)
    assert caught.value.operation_name == op.name
    return caught.value.response


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_an_error_body_gives_its_code_and_message(op: Operation) -> None:
    """Every operation's error: the body's Code and Message, the status and
    the request ids (header first, else the body's)."""
    body = (
        b"<Error><Code>AccessDenied</Code><Message>no &amp; never</Message>"
        b"<RequestId>R</RequestId><HostId>H</HostId></Error>"
    )
    got = _error(op, _response(403, body))
    assert got["Error"] == {"Code": "AccessDenied", "Message": "no & never"}
    meta = got["ResponseMetadata"]
    assert (meta["RequestId"], meta["HostId"], meta["HTTPStatusCode"]) == (
        "R",
        "H",
        403,
    )
    assert meta["RetryAttempts"] == 0
    got = _error(op, _response(403, body, x_amz_request_id="HDR"))
    assert got["ResponseMetadata"]["RequestId"] == "HDR"


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_a_bodiless_error_is_named_by_its_status(op: Operation) -> None:
    """No body (a HEAD's errors never have one): the status is the code and
    its standard phrase the message, whatever reason the server gave; no
    request id when none was sent."""
    got = _error(op, _response(503))
    assert got["Error"] == {"Code": "503", "Message": "Service Unavailable"}
    assert "RequestId" not in got["ResponseMetadata"]


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
@pytest.mark.parametrize(
    "response",
    [
        _response(301),
        _response(307, location="http://elsewhere/"),
        _response(400, b"<Error><Code>AuthorizationHeaderMalformed</Code></Error>"),
        _response(403, b"<Error><Code>RequestTimeTooSkewed</Code></Error>"),
    ],
    ids=["301", "307", "wrong-region", "clock-skew"],
)
def test_what_botocore_follows_falls_back(op: Operation, response: Response) -> None:
    with pytest.raises(Fallback):
        answer(op, response)


def test_a_400_naming_the_region_falls_back_only_for_a_head() -> None:
    """A HEAD's 400 cannot say why; with the bucket's region it is a wrong
    region.  Other operations say so in their body."""
    response = _response(400, x_amz_bucket_region="eu-west-1")
    with pytest.raises(Fallback):
        answer(HEAD_OBJECT, response)
    assert _error(COPY_OBJECT, response)["Error"]["Code"] == "400"


@pytest.mark.parametrize(
    "body",
    [
        b"<Error><Code>InternalError</Code><Message>again</Message></Error>",
        b"<CopyObjectResult><ETag>&quot;e&quot;</ETag>",  # cut short
    ],
    ids=["embedded-error", "cut-short"],
)
def test_a_200_without_its_result_is_a_500(body: bytes) -> None:
    """CopyObject's 200 must hold a whole CopyObjectResult; anything else is a
    500 (retried), as botocore makes it."""
    got = _error(COPY_OBJECT, _response(200, body))
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert got["Error"]["Code"] in ("InternalError", "500")


def test_a_copy_answer_holds_its_result_and_header_members() -> None:
    body = (
        b"<CopyObjectResult><LastModified>2026-11-21T04:05:06.000Z</LastModified>"
        b"<ETag>&#34;9b2c&#x22;</ETag></CopyObjectResult>\n"
    )
    got = answer(
        COPY_OBJECT,
        _response(
            200,
            body,
            x_amz_version_id="v2",
            x_amz_copy_source_version_id="v1",
            x_amz_request_id="R",
        ),
    )
    meta = got.pop("ResponseMetadata")
    assert got == {
        "VersionId": "v2",
        "CopySourceVersionId": "v1",
        "CopyObjectResult": {
            "ETag": '"9b2c"',
            "LastModified": dt.datetime(2026, 11, 21, 4, 5, 6, tzinfo=dt.UTC),
        },
    }
    assert (meta["RequestId"], meta["HostId"], meta["HTTPStatusCode"]) == ("R", "", 200)


def test_an_empty_200_copy_has_an_empty_result() -> None:
    """No ETag to show for it: refused as a copy by the engine (EmptyResponse)."""
    assert answer(COPY_OBJECT, _response(200))["CopyObjectResult"] == {}


def test_a_delete_answer_reads_its_marker_as_a_boolean() -> None:
    got = answer(
        DELETE_OBJECT, _response(204, x_amz_delete_marker="True", x_amz_version_id="m")
    )
    got.pop("ResponseMetadata")
    assert got == {"DeleteMarker": True, "VersionId": "m"}


# -- the lean retries classify each failure once ----------------------------------


class _Failing:
    """A copier whose calls fail with ``errors`` in turn, then succeed."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0
        self.requests = mock.Mock()
        self.requests.handles.return_value = True

    async def copy_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ResponseMetadata": {"HTTPStatusCode": 200}, "CopyObjectResult": {}}


def _client_error(code: str, status: int) -> ClientError:
    meta = {"HTTPStatusCode": status, "RetryAttempts": 0}
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": meta}, "CopyObject"
    )


def _lean_client(copier: _Failing, attempts: int) -> LeanClient:
    client = LeanClient(mock.Mock(), cast(LeanCopier, copier))
    client._sdk = RetryPolicy(attempts, 0.0, 0.0, 0.0)  # no waiting here
    return client


@pytest.mark.parametrize(
    ("errors", "attempts", "code", "disposition", "sdk_retries"),
    [
        ([_client_error("SlowDown", 503)] * 2, 2, "SlowDown", Disposition.THROTTLE, 1),
        ([_client_error("NoSuchKey", 404)], 3, "NoSuchKey", Disposition.FATAL, 0),
        (
            [EndpointConnectionError(endpoint_url="http://x")] * 2,
            2,
            "ConnectionError",
            Disposition.RETRY,
            0,
        ),
    ],
    ids=["throttled", "fatal", "no-answer"],
)
def test_a_failed_lean_call_is_classified_once(
    errors: list[Exception],
    attempts: int,
    code: str,
    disposition: Disposition,
    sdk_retries: int,
) -> None:
    """One classification per failed request (the lean retry loop's), and
    ``invoke`` passes the resulting S3Error on as it is."""
    copier = _Failing(list(errors))
    client = _lean_client(copier, attempts)
    seen: list[str] = []
    convert = call.from_exception

    def counting(exc: BaseException, operation: str) -> S3Error:
        seen.append(type(exc).__name__)
        return convert(exc, operation)

    async def run() -> S3Error:
        with pytest.raises(S3Error) as caught:
            await invoke("CopyObject", client.copy_object, Bucket="b", Key="k")
        return caught.value

    with (
        mock.patch.object(call, "from_exception", counting),
        mock.patch.object(lean_client, "from_exception", counting),
    ):
        err = asyncio.run(run())
    assert (err.code, err.disposition, err.sdk_retries) == (
        code,
        disposition,
        sdk_retries,
    )
    assert copier.calls == len(errors)
    assert len(seen) == len(errors)  # once each: none classified again
