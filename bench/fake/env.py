"""What every operation handler shares, and the helpers they have in common."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from bench.fake.errors import S3Error
from bench.fake.http import Request, Response
from bench.fake.router import Address
from bench.fake.stats import Stats
from bench.fake.store import Store

XML = ("Content-Type", "application/xml")


@dataclass(slots=True)
class Env:
    """The store, the counters, and how slow copies are."""

    store: Store
    stats: Stats
    region: str = "us-east-1"
    copy_bandwidth: float | None = None  # bytes/s per copy request; None: instant

    def copy_time(self, size: int) -> float:
        """Seconds a server-side copy of ``size`` bytes takes."""
        return size / self.copy_bandwidth if self.copy_bandwidth else 0.0


Handler = Callable[[Env, Request, Address], Response]


def xml_response(body: bytes, status: int = 200) -> Response:
    return Response(status, [XML], body)


def int_param(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise S3Error(
            "InvalidArgument", f"{name} must be an integer, got {value!r}", 400
        ) from None


def parse_tags(value: str) -> list[tuple[str, str]]:
    """The ``x-amz-tagging`` header (URL-encoded ``k=v&k2=v2``)."""
    return parse_qsl(value, keep_blank_values=True)


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """``x-amz-copy-source`` as ``(bucket, key, version id)``.

    Decoded like a query value (``+`` is a space), as S3-compatible servers do:
    s5cmd sends spaces as ``+``; the AWS SDKs send ``+`` as ``%2B``.
    """
    raw, _, qs = value.strip().partition("?")
    version = dict(parse_qsl(qs)).get("versionId") if qs else None
    bucket, sep, key = unquote_plus(raw).lstrip("/").partition("/")
    if not bucket or not sep or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: "
            "sourcebucket/sourcekey",
            400,
        )
    return bucket, key, version


def parse_xml(body: bytes) -> ET.Element:
    """A request body as an element tree, with namespaces stripped from tags."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate "
            "against our published schema",
            400,
        ) from None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def text(el: ET.Element, name: str) -> str:
    child = el.find(name)
    return (child.text or "") if child is not None else ""
