"""Object operations: head, get, put, delete, CopyObject, tagging, ACL.

Also the two mappings between headers and stored properties, which
CreateMultipartUpload shares.
"""

from __future__ import annotations

import functools

from bench.fake import checksums, render
from bench.fake.env import (
    Env,
    int_param,
    parse_copy_source,
    parse_tags,
    parse_xml,
    text,
    xml_response,
)
from bench.fake.errors import S3Error, precondition_failed
from bench.fake.http import Request, Response
from bench.fake.ranges import read_range
from bench.fake.router import Address
from bench.fake.store import (
    Obj,
    Properties,
    copied_props,
    etag_matches,
)

# headers stored with an object and returned by HEAD/GET as they were given
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)
META = "x-amz-meta-"


def props_from_headers(headers: dict[str, str]) -> Properties:
    """What a PutObject, CreateMultipartUpload or REPLACE copy sets."""
    stored = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if name == "content-encoding" and value:  # the SDK's framing, not the object's
            value = ",".join(
                e for e in (v.strip() for v in value.split(",")) if e != "aws-chunked"
            )
        if value and not (name == "x-amz-storage-class" and value == "STANDARD"):
            stored[name] = value
    metadata = {k[len(META) :]: v for k, v in headers.items() if k.startswith(META)}
    return Properties(
        headers.get("content-type") or "binary/octet-stream", metadata, stored
    )


@functools.lru_cache(maxsize=4096)
def _last_modified(ts: int) -> str:
    return render.http_date(ts)


def object_headers(obj: Obj) -> list[tuple[str, str]]:
    """The headers HEAD and GET answer with."""
    headers = [
        ("ETag", obj.etag),
        ("Last-Modified", _last_modified(int(obj.last_modified))),
        ("Content-Type", obj.props.content_type),
        ("Accept-Ranges", "bytes"),
    ]
    headers.extend(obj.props.headers.items())
    headers.extend((META + k, v) for k, v in obj.props.metadata.items())
    return headers


def _read(env: Env, req: Request, where: Address, head: bool) -> Response:
    obj = env.store.bucket(where.bucket).get(where.key)
    version = req.query.get("versionId")
    if version not in (None, "null"):
        raise S3Error("NoSuchVersion", "The specified version does not exist.", 404)
    if_match = req.headers.get("if-match")
    if if_match is not None and not etag_matches(if_match, obj.etag):
        raise precondition_failed()
    if_none = req.headers.get("if-none-match")
    if if_none is not None and etag_matches(if_none, obj.etag):
        return Response(304, [("ETag", obj.etag)], head=True)
    headers = object_headers(obj)
    if not head and obj.tags:
        headers.append(("x-amz-tagging-count", str(len(obj.tags))))
    span: tuple[int, int] | None = None
    if "partNumber" in req.query:
        offset, length = obj.part_range(int_param(req.query, "partNumber", 1))
        span = (offset, offset + length - 1)
        if obj.parts:
            headers.append(("x-amz-mp-parts-count", str(len(obj.parts))))
    elif "range" in req.headers:
        span = read_range(req.headers["range"], obj.size)
    if span is None and req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        headers.extend(checksums.answer(obj.checksum))  # of the whole object only
    status, size = 200, obj.size
    if span is not None and obj.size:
        first, last = span
        headers.append(("Content-Range", f"bytes {first}-{last}/{obj.size}"))
        status, size = 206, last - first + 1
    return Response(status, headers, length=size, zeros=0 if head else size, head=head)


def head_object(env: Env, req: Request, where: Address) -> Response:
    return _read(env, req, where, head=True)


def get_object(env: Env, req: Request, where: Address) -> Response:
    return _read(env, req, where, head=False)


def _body_size(req: Request) -> int:
    decoded = req.headers.get("x-amz-decoded-content-length")  # aws-chunked bodies
    return int(decoded) if decoded is not None else req.body_size


def put_object(env: Env, req: Request, where: Address) -> Response:
    if req.headers.get("if-none-match") == "*":
        b = env.store.bucket(where.bucket)
        if where.key in b.objects:
            raise precondition_failed()
    obj = env.store.put_object(
        where.bucket,
        where.key,
        _body_size(req),
        f'"{req.body_md5}"',
        props_from_headers(req.headers),
        parse_tags(req.headers.get("x-amz-tagging", "")),
        checksums.sent(req.headers),
    )
    return Response(200, [("ETag", obj.etag), *checksums.answer(obj.checksum)])


def delete_object(env: Env, req: Request, where: Address) -> Response:
    env.store.bucket(where.bucket).delete(where.key)
    return Response(204)


def _directive(req: Request, name: str) -> str:
    value = req.headers.get(name, "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", f"Unknown {name} value: {value}", 400)
    return value


def copy_source(env: Env, req: Request) -> tuple[Obj, str, str]:
    """The object ``x-amz-copy-source`` names, checked against its conditions,
    with its bucket and key."""
    bucket, key, version = parse_copy_source(req.headers["x-amz-copy-source"])
    src = env.store.source(
        bucket, key, version, req.headers.get("x-amz-copy-source-if-match")
    )
    if_none = req.headers.get("x-amz-copy-source-if-none-match")
    if if_none is not None and etag_matches(if_none, src.etag):
        raise precondition_failed()
    return src, bucket, key


def copy_object(env: Env, req: Request, where: Address) -> Response:
    src, src_bucket, src_key = copy_source(env, req)
    metadata = _directive(req, "x-amz-metadata-directive")
    tagging = _directive(req, "x-amz-tagging-directive")
    props = copied_props(src) if metadata == "COPY" else props_from_headers(req.headers)
    changes = metadata == "REPLACE" or any(
        h in req.headers
        for h in ("x-amz-storage-class", "x-amz-server-side-encryption")
    )
    if (src_bucket, src_key) == (where.bucket, where.key) and not changes:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to "
            "itself without changing the object's metadata, storage class, website "
            "redirect location or encryption attributes.",
            400,
        )
    if metadata == "COPY":
        for name in ("x-amz-storage-class", "x-amz-server-side-encryption"):
            if name in req.headers:
                props.headers[name] = req.headers[name]
    tags = (
        list(src.tags)
        if tagging == "COPY"
        else parse_tags(req.headers.get("x-amz-tagging", ""))
    )
    obj = env.store.copy_object(src, where.bucket, where.key, props, tags)
    env.stats.bytes_copied += obj.size
    env.stats.copied(where.bucket, where.key)
    resp = xml_response(render.copy_object_result(obj.etag, obj.last_modified))
    resp.delay = env.copy_time(obj.size)
    return resp


def get_tagging(env: Env, req: Request, where: Address) -> Response:
    obj = env.store.bucket(where.bucket).get(where.key)
    return xml_response(render.tagging(obj.tags))


def put_tagging(env: Env, req: Request, where: Address) -> Response:
    obj = env.store.bucket(where.bucket).get(where.key)
    root = parse_xml(req.body)
    tag_set = root.find("TagSet")
    tags = [
        (text(t, "Key"), text(t, "Value"))
        for t in (tag_set.findall("Tag") if tag_set is not None else [])
    ]
    if len(tags) > 10:
        raise S3Error("BadRequest", "Object tags cannot be greater than 10", 400)
    obj.tags = tags
    return Response(200)


def delete_tagging(env: Env, req: Request, where: Address) -> Response:
    env.store.bucket(where.bucket).get(where.key).tags = []
    return Response(204)


def get_acl(env: Env, req: Request, where: Address) -> Response:
    env.store.bucket(where.bucket).get(where.key)
    return xml_response(render.acl())


def put_acl(env: Env, req: Request, where: Address) -> Response:
    """Accepted and forgotten: every object has the one owner's FULL_CONTROL."""
    env.store.bucket(where.bucket).get(where.key)
    return Response(200)
