"""The lean path's answers: what botocore answers to the same response.

One builder (:func:`answer`) for every operation the lean path makes: the
response dict botocore returns, or the ``ClientError`` it raises (an error
embedded in a ``200 OK`` included), so the one classification
(:func:`engine.s3.call.from_exception`) sees no difference between the paths.
What sets the operations apart is data (:class:`Operation`): where the output
members are read from, whether a ``200`` carries a result element, and which
errors name a wrong region.  Answers botocore follows itself (redirects, a
wrong region, clock skew) raise :class:`Fallback`.

Pure: a :class:`~engine.s3.wire.Response` in, a dict or an exception out.
"""

from __future__ import annotations

import http.client
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp

from engine.s3 import pages
from engine.s3.wire import Response

# answers botocore handles itself (it follows redirects, corrects the region
# and the clock): the lean path hands those calls over
FALLBACK_CODES = frozenset(
    {
        "PermanentRedirect",
        "TemporaryRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "RequestTimeTooSkewed",
    }
)
# (an expired token is the engine's to handle, on both paths: it refreshes the
# credentials and tries again, engine.copy.execute.EXPIRED_CREDENTIALS)


class Fallback(Exception):
    """This call is botocore's to make (an answer the lean path leaves to it)."""


# -- the XML elements the answers need ------------------------------------------

_TAG = re.compile(
    rb"<(Code|Message|ETag|LastModified|RequestId|HostId)>(.*?)</\1>", re.S
)
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|quot|apos|lt|gt|amp);")
_NAMED = {"quot": '"', "apos": "'", "lt": "<", "gt": ">", "amp": "&"}


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.startswith("#x"):
        return chr(int(name[2:], 16))
    if name.startswith("#"):
        return chr(int(name[1:]))
    return _NAMED[name]


def _text(raw: bytes) -> str:
    """An element's text as an XML parser reads it: the five named entities
    and character references (Go servers write ``"`` as ``&#34;``)."""
    return _ENTITY.sub(_entity, raw.decode("utf-8"))


def parse_fields(body: bytes) -> dict[str, str]:
    """The first value of each element the answers need (Code, Message, ETag,
    LastModified, RequestId, HostId)."""
    found: dict[str, str] = {}
    for name, value in _TAG.findall(body):
        key = name.decode()
        if key not in found:
            found[key] = _text(value)
    return found


def parse_time(value: str) -> datetime:
    """An S3 ISO 8601 timestamp (``2026-11-21T04:05:06.000Z``)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_MONTHS = {
    name: n
    for n, name in enumerate(
        [
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ],
        1,
    )
}


def http_date(value: str) -> datetime | None:
    """An HTTP date in its one preferred form (``Sun, 06 Nov 1994 08:49:37
    GMT``, what S3 sends), read in a few µs (``email.utils`` takes ~15);
    ``None`` for any other form."""
    if len(value) != 29 or value[3:5] != ", " or not value.endswith(" GMT"):
        return None
    try:
        return datetime(
            int(value[12:16]),
            _MONTHS[value[8:11]],
            int(value[5:7]),
            int(value[17:19]),
            int(value[20:22]),
            int(value[23:25]),
            tzinfo=UTC,
        )
    except (KeyError, ValueError):
        return None


def parse_header_time(value: str) -> datetime:
    """A timestamp header as botocore parses it (RFC 822 mostly; anything
    else through botocore's own parser)."""
    fast = http_date(value)
    if fast is not None:
        return fast
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed: datetime = parse_timestamp(value)
        return parsed


def timestamp(value: str) -> datetime:
    """botocore's timestamp parser, faster for the forms S3 sends: ISO 8601
    in XML (a listing's LastModified, ~1,000 a page) and the HTTP date of a
    header.  botocore's own (dateutil) takes ~33 µs for each, a third of a
    listing's CPU; the answer is the same timezone-aware datetime."""
    try:
        if value[-1:] == "Z" or value[-6:-5] in ("+", "-"):
            return datetime.fromisoformat(value)
        if value.endswith(" GMT"):
            return http_date(value) or parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        pass
    return parse_timestamp(value)  # type: ignore[no-any-return]


# -- output members read off the headers ----------------------------------------


class Members(Protocol):
    """Reads an operation's output members off a successful response."""

    def parse(self, response: Response) -> dict[str, Any]: ...


class HeaderMembers:
    """Output members from a fixed table: ``strings`` as sent, ``booleans``
    true when the header says ``true`` (any case)."""

    __slots__ = ("booleans", "strings")

    def __init__(
        self, strings: dict[str, str], booleans: dict[str, str] | None = None
    ) -> None:
        self.strings = strings  # header -> member
        self.booleans = booleans or {}

    def parse(self, response: Response) -> dict[str, Any]:
        headers = response.headers
        out: dict[str, Any] = {}
        for header, member in self.booleans.items():
            value = headers.get(header)
            if value is not None:
                out[member] = value.lower() == "true"
        for header, member in self.strings.items():
            if header in headers:
                out[member] = headers[header]
        return out


class HeadParser:
    """HeadObject's answer as botocore parses it, read off botocore's service
    model: each output member found in a header (``location: header``) with
    its type, and the user metadata (``location: headers``, by prefix).  Also
    botocore's S3 customization of ``Expires`` (kept as ``ExpiresString``;
    dropped when it is not a date)."""

    def __init__(self, output_shape: Any) -> None:
        self.members: list[tuple[str, str, str]] = []
        self.maps: list[tuple[str, str]] = []
        for name, shape in output_shape.members.items():
            where = shape.serialization.get("location")
            header = str(shape.serialization.get("name", "")).lower()
            if where == "header":
                self.members.append((header, name, shape.type_name))
            elif where == "headers":
                self.maps.append((name, header))
        self.expires = any(h == "expires" for h, _, _ in self.members)

    def parse(self, response: Response) -> dict[str, Any]:
        out: dict[str, Any] = {}
        headers = response.headers
        drop_expires = False
        if self.expires and "expires" in headers:
            out["ExpiresString"] = headers["expires"]
            try:
                parse_timestamp(headers["expires"])
            except (ValueError, RuntimeError):
                drop_expires = True
        for header, member, kind in self.members:
            value = headers.get(header)
            if value is None or (drop_expires and header == "expires"):
                continue
            if kind in ("integer", "long"):
                out[member] = int(value)
            elif kind == "boolean":
                out[member] = value == "true"
            elif kind == "timestamp":
                out[member] = parse_header_time(value)
            elif kind == "list":
                out[member] = [v.strip() for v in value.split(",")]
            else:
                out[member] = value
        for member, prefix in self.maps:
            out[member] = {
                name[len(prefix) :]: value
                for name, value in response.raw_headers
                if name.lower().startswith(prefix)
            }
        return out


class ListParser:
    """ListObjectsV2's answer as botocore parses it: the body read by the
    table the listings are read with on botocore's path
    (:mod:`engine.s3.pages`, from the same model), the header members as
    :class:`HeadParser` reads them, and the keys the store sent URL-encoded
    decoded as botocore decodes them (the request asked for them so)."""

    def __init__(self, output_shape: Any) -> None:
        self.headers = HeadParser(output_shape)
        self.table = pages.table(output_shape, timestamp)

    def parse(self, response: Response) -> dict[str, Any]:
        out = self.headers.parse(response)
        try:
            root = pages.parse_xml(response.body)
        except pages.ParseError:
            raise Fallback("ListObjectsV2") from None  # botocore's to read
        if root.tag.rpartition("}")[2] != "ListBucketResult":
            raise Fallback("ListObjectsV2")  # not a page: botocore's to read
        out.update(pages.read_structure(root, self.table))
        if out.get("EncodingType") == "url":
            for name in ("Delimiter", "Prefix", "StartAfter"):
                if name in out:
                    out[name] = unquote_plus(out[name])
            for name, member in (("Contents", "Key"), ("CommonPrefixes", "Prefix")):
                for item in out.get(name, ()):
                    item[member] = unquote_plus(item[member])
        return out


# -- one answer for every operation -----------------------------------------------


class Operation:
    """What sets one operation's answers apart.

    ``members`` reads the output members off the headers (or the body);
    ``result`` names the element a ``200``'s body holds (CopyObject's
    ``CopyObjectResult``: its ETag and LastModified; ``ends``: one the
    members read themselves), and a ``200`` whose body is anything else
    (an error, or an answer cut short) is a ``500``, as botocore makes it;
    ``region_hint``: a ``400`` naming the bucket's region is a request to the
    wrong region (HeadObject, whose errors have no body to say so)."""

    __slots__ = ("members", "name", "page", "region_hint", "result", "result_end")

    def __init__(
        self,
        name: str,
        members: Members,
        *,
        result: str | None = None,
        ends: str | None = None,
        region_hint: bool = False,
    ) -> None:
        self.name = name
        self.members = members
        self.result = result
        whole = result or ends
        self.result_end = f"</{whole}>".encode() if whole else b""
        self.page = ends is not None  # a 200's body is read by the members
        self.region_hint = region_hint


COPY_OBJECT = Operation(
    "CopyObject",
    HeaderMembers(
        {
            "x-amz-version-id": "VersionId",
            "x-amz-copy-source-version-id": "CopySourceVersionId",
            "x-amz-server-side-encryption": "ServerSideEncryption",
            "x-amz-server-side-encryption-aws-kms-key-id": "SSEKMSKeyId",
            "x-amz-request-charged": "RequestCharged",
            "x-amz-expiration": "Expiration",
        }
    ),
    result="CopyObjectResult",
)
DELETE_OBJECT = Operation(
    "DeleteObject",
    HeaderMembers(
        {"x-amz-version-id": "VersionId", "x-amz-request-charged": "RequestCharged"},
        {"x-amz-delete-marker": "DeleteMarker"},
    ),
)


def head_object(parser: HeadParser) -> Operation:
    """HeadObject, its members read as ``parser`` (botocore's model) says."""
    return Operation("HeadObject", parser, region_hint=True)


def list_objects_v2(parser: ListParser) -> Operation:
    """ListObjectsV2, its answer read as ``parser`` says."""
    return Operation("ListObjectsV2", parser, ends="ListBucketResult")


def get_object(parser: HeadParser) -> Operation:
    """GetObject's header members, read as ``parser`` says (its body is the
    caller's: :meth:`engine.s3.lean.LeanCopier.get_object_into`)."""
    return Operation("GetObject", parser)


def put_object(parser: HeadParser) -> Operation:
    """PutObject, its members read as ``parser`` says."""
    return Operation("PutObject", parser)


_TAG_PAIR = re.compile(
    rb"<Tag>\s*<Key>(.*?)</Key>\s*<Value>(.*?)</Value>\s*</Tag>", re.S
)
_EMPTY_VALUE = re.compile(rb"<Value\s*/>")


class TaggingMembers:
    """GetObjectTagging's answer: its ``TagSet`` (each ``Key`` and ``Value``)
    and the version it read."""

    __slots__ = ()

    def parse(self, response: Response) -> dict[str, Any]:
        body = _EMPTY_VALUE.sub(b"<Value></Value>", response.body)
        pairs = _TAG_PAIR.findall(body)
        if len(pairs) != body.count(b"<Tag>"):
            # a tag written some other way (attributes, another order): read
            # by botocore's parser rather than lose it
            raise Fallback("GetObjectTagging")
        out: dict[str, Any] = {
            "TagSet": [{"Key": _text(k), "Value": _text(v)} for k, v in pairs]
        }
        version = response.headers.get("x-amz-version-id")
        if version is not None:
            out["VersionId"] = version
        return out


GET_OBJECT_TAGGING = Operation("GetObjectTagging", TaggingMembers())


def answer(op: Operation, response: Response) -> dict[str, Any]:
    """botocore's answer to ``op`` for ``response``: the response dict, or
    the ``ClientError`` it raises (:class:`Fallback` for what botocore
    follows itself)."""
    headers = response.headers
    body = response.body
    status = response.status
    if status == 200 and op.result_end:
        whole = body.strip()
        # a listing's 200 with no page at all is no empty last page: a
        # page whose end says nothing more is to come must say it
        if (whole or op.page) and not whole.endswith(op.result_end):
            # an error inside a 200, or an answer cut short: botocore makes
            # both a 500 (and so do we: retried, never taken for a success)
            status = 500
    # a listing's 200 is read whole by its members (a page's thousand ETags
    # are not for this scan)
    fields = parse_fields(body) if body and not (status == 200 and op.page) else {}
    meta: dict[str, Any] = {}
    request_id = headers.get("x-amz-request-id")
    if request_id is not None or "RequestId" in fields:
        meta["RequestId"] = fields["RequestId"] if request_id is None else request_id
        meta["HostId"] = headers.get("x-amz-id-2", fields.get("HostId", ""))
    meta["HTTPStatusCode"] = status
    meta["HTTPHeaders"] = headers
    meta["RetryAttempts"] = 0
    if status >= 300:
        code = fields.get("Code") or str(status)
        if (
            status < 400
            or code in FALLBACK_CODES
            or (op.region_hint and status == 400 and "x-amz-bucket-region" in headers)
        ):
            raise Fallback(code)
        # no message in the body (none at all: a HEAD): the status's own
        message = fields.get("Message", http.client.responses.get(status, ""))
        error = {"Code": code, "Message": message}
        raise ClientError({"Error": error, "ResponseMetadata": meta}, op.name)
    out = op.members.parse(response)
    out["ResponseMetadata"] = meta
    if op.result is not None:
        result: dict[str, Any] = {}  # empty for an empty 200 (refused as a copy)
        if "ETag" in fields:
            result["ETag"] = fields["ETag"]
        if "LastModified" in fields:
            result["LastModified"] = parse_time(fields["LastModified"])
        out[op.result] = result
    return out
