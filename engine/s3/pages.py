"""Listing pages parsed as botocore parses them, twenty times faster.

botocore's XML parser walks its service model node by node, for every one of
the thousand objects of a ``ListObjectsV2`` page: about 30 µs an object, a
third of the CPU bulkcopy spends on an object it lists and copies (measured
with py-spy on ``bulkcopy copy --from`` at 20,000 objects).  Here the same
model is compiled once into a table per structure (XML element name → member,
converter), and a page is read with ElementTree's C parser in one pass.

Only the body of the listing answers is read this way (:data:`FAST_SHAPES`);
on botocore's path botocore still sends, signs and retries the request,
reads the headers, handles errors and URL-decodes the keys, as for every
other call (the lean path's ListObjectsV2 reads its pages with the same
table: :class:`engine.s3.lean.answer.ListParser`).  An error
inside a ``200 OK`` is found as botocore finds it (the body's root is
``Error``, or the body is cut short), by :func:`errors_in_200` standing in
for botocore's own check on these answers: the body is parsed once, not
twice (botocore's check parses every S3 answer's body into a tree of its own,
as long again as reading the page).  ``tests/unit/test_pages.py`` checks the
answers equal botocore's own, for generated pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from aiobotocore.parsers import AioResponseParserFactory, AioRestXMLParser
from botocore import handlers

# the output shapes read by :class:`FastPageParser` (the others: botocore)
FAST_SHAPES = frozenset({"ListObjectsV2Output", "ListObjectVersionsOutput"})

Convert = Callable[[ElementTree.Element], Any]
# xml name -> (member name, how to read it, a list flattened into its parent)
Table = dict[str, tuple[str, Convert, bool]]


# where errors_in_200 leaves the parsed body for FastPageParser
_ROOT = "bulkcopy_page_root"
# botocore's check, which errors_in_200 stands in for (None: renamed; both
# then run, which is only slower)
BOTOCORE_200_CHECK = getattr(handlers, "_handle_200_error", None)


ParseError = ElementTree.ParseError


def parse_xml(body: bytes) -> ElementTree.Element:
    """A body's root element (:data:`ParseError` if it is not XML)."""
    parser = ElementTree.XMLParser(encoding="utf-8")
    parser.feed(body)
    return parser.close()


def table(shape: Any, timestamp: Callable[[str], Any]) -> Table:
    """The compiled reader of ``shape``'s body members (for
    :func:`read_structure`); ``timestamp``: the client's parser."""
    return _Compiler(timestamp).table(shape)


def errors_in_200(
    operation_model: Any, response_dict: dict[str, Any], **kwargs: Any
) -> None:
    """botocore's ``before-parse`` check for an error inside a ``200 OK``
    (made a 500, so that it is retried): for the listings, the body parsed
    once and kept for :class:`FastPageParser`; for the rest, botocore's."""
    shape = operation_model.output_shape
    if shape is None or shape.name not in FAST_SHAPES:
        if BOTOCORE_200_CHECK is not None:
            BOTOCORE_200_CHECK(operation_model, response_dict, **kwargs)
        return
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not body:
        return
    try:
        root = parse_xml(body)
    except ElementTree.ParseError:  # cut short: botocore retries it
        response_dict["status_code"] = 500
        return
    if root.tag == "Error":
        response_dict["status_code"] = 500
        return
    response_dict.setdefault("context", {})[_ROOT] = (body, root)


def install(session: Any) -> None:
    """Listings read fast on every client of ``session`` (an AioSession):
    the parser factory, and :func:`errors_in_200` in botocore's check's
    place."""
    if BOTOCORE_200_CHECK is not None:
        session.unregister("before-parse.s3.*", BOTOCORE_200_CHECK)
    session.register("before-parse.s3.*", errors_in_200)


def _tag(element: ElementTree.Element) -> str:
    """The element's name without its namespace (as botocore reads it)."""
    tag = element.tag
    return tag[tag.index("}") + 1 :] if tag[:1] == "{" else tag


class _Compiler:
    """A shape's reader, built once from botocore's model."""

    def __init__(self, timestamp: Callable[[str], Any]) -> None:
        self.timestamp = timestamp
        self.tables: dict[str, Table] = {}

    def structure(self, shape: Any) -> Callable[[ElementTree.Element], dict[str, Any]]:
        table = self.table(shape)

        def read(node: ElementTree.Element) -> dict[str, Any]:
            return read_structure(node, table)

        return read

    def table(self, shape: Any) -> Table:
        found = self.tables.get(shape.name)
        if found is not None:
            return found
        table: Table = {}
        self.tables[shape.name] = table  # before the members: shapes may nest
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue  # a header: botocore reads those
            xml_name = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                inner = member.member
                # botocore's _member_key_name: the list member's name first
                xml_name = inner.serialization.get("name", xml_name)
                table[xml_name] = (name, self.reader(inner), True)
            else:
                table[xml_name] = (name, self.reader(member), False)
        return table

    def reader(self, shape: Any) -> Convert:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape)
        if kind == "list":  # a wrapped list: <Wrapper><member>…</member></Wrapper>
            item = self.reader(shape.member)
            return lambda node: [item(child) for child in node]
        if kind in ("integer", "long"):
            return lambda node: int(node.text or "")
        if kind == "boolean":
            return lambda node: node.text == "true"
        if kind == "timestamp":
            stamp = self.timestamp
            return lambda node: stamp(node.text or "")
        if kind == "string":
            return lambda node: node.text or ""
        raise NotImplementedError(kind)  # the listings have no other types


def read_structure(node: ElementTree.Element, table: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in node:
        found = table.get(child.tag)
        if found is None:
            found = table.get(_tag(child))
            if found is None:
                continue  # not in the model: botocore skips it too
            table[child.tag] = found  # the name with its namespace, from now on
        name, read, flattened = found
        if flattened:
            out.setdefault(name, []).append(read(child))
        else:
            out[name] = read(child)
    return out


class FastPageParser(AioRestXMLParser):  # type: ignore[misc]  # untyped library
    """botocore's REST-XML parser, with the listing bodies read by a table
    compiled from the same model (the other answers: botocore's own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiler = _Compiler(self._timestamp_parser)

    def _parse_payload(
        self,
        response: dict[str, Any],
        shape: Any,
        member_shapes: dict[str, Any],
        final_parsed: dict[str, Any],
    ) -> None:
        body = response.get("body")
        if shape is None or shape.name not in FAST_SHAPES or not body:
            super()._parse_payload(response, shape, member_shapes, final_parsed)
            return
        kept = (response.get("context") or {}).get(_ROOT)
        try:
            root = kept[1] if kept and kept[0] is body else parse_xml(body)
        except ElementTree.ParseError:
            # as botocore answers a body it cannot read
            super()._parse_payload(response, shape, member_shapes, final_parsed)
            return
        final_parsed.update(read_structure(root, self._compiler.table(shape)))


class FastParserFactory(AioResponseParserFactory):  # type: ignore[misc]
    """aiobotocore's parser factory, with :class:`FastPageParser` for S3."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return FastPageParser(**self._defaults)
        return super().create_parser(protocol_name)
