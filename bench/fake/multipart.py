"""Multipart operations: create, UploadPart, UploadPartCopy, complete, abort, list."""

from __future__ import annotations

from bench.fake import checksums, render
from bench.fake.env import (
    Env,
    int_param,
    parse_tags,
    parse_xml,
    text,
    xml_response,
)
from bench.fake.errors import S3Error
from bench.fake.http import Request, Response
from bench.fake.objects import copy_source, props_from_headers
from bench.fake.router import Address


def _upload_id(req: Request) -> str:
    upload_id = req.query.get("uploadId", "")
    if not upload_id:
        raise S3Error("InvalidArgument", "This operation needs an uploadId", 400)
    return upload_id


def _part_number(req: Request) -> int:
    if "partNumber" not in req.query:
        raise S3Error("InvalidArgument", "This operation needs a partNumber", 400)
    return int_param(req.query, "partNumber", 0)


def create_upload(env: Env, req: Request, where: Address) -> Response:
    up = env.store.create_upload(
        where.bucket,
        where.key,
        props_from_headers(req.headers),
        parse_tags(req.headers.get("x-amz-tagging", "")),
        checksums.upload_type(req.headers),
    )
    return xml_response(render.initiate_upload(where.bucket, where.key, up.upload_id))


def upload_part(env: Env, req: Request, where: Address) -> Response:
    decoded = req.headers.get("x-amz-decoded-content-length")  # aws-chunked bodies
    part = env.store.upload_part(
        where.bucket,
        where.key,
        _upload_id(req),
        _part_number(req),
        int(decoded) if decoded is not None else req.body_size,
        f'"{req.body_md5}"',
        checksums.sent(req.headers),
    )
    sent = part.checksum if env.store.checksums else None
    return Response(200, [("ETag", part.etag), *checksums.answer(sent)])


def upload_part_copy(env: Env, req: Request, where: Address) -> Response:
    upload_id, number = _upload_id(req), _part_number(req)
    env.store.bucket(where.bucket).upload(upload_id, where.key)  # NoSuchUpload first
    src, _, _ = copy_source(env, req)
    part = env.store.upload_part_copy(
        where.bucket,
        where.key,
        upload_id,
        number,
        src,
        req.headers.get("x-amz-copy-source-range"),
    )
    env.stats.bytes_copied += part.size
    resp = xml_response(render.copy_part_result(part))
    resp.delay = env.copy_time(part.size)
    return resp


def complete_upload(env: Env, req: Request, where: Address) -> Response:
    upload_id = _upload_id(req)
    env.store.bucket(where.bucket).upload(upload_id, where.key)  # NoSuchUpload first
    root = parse_xml(req.body)
    listed = []
    for part in root.findall("Part"):
        try:
            listed.append((int(text(part, "PartNumber")), text(part, "ETag")))
        except ValueError:
            raise S3Error(
                "MalformedXML", "PartNumber must be an integer", 400
            ) from None
    obj = env.store.complete_upload(where.bucket, where.key, upload_id, listed)
    env.stats.copied(where.bucket, where.key)
    host = req.headers.get("host", "localhost")
    body = render.complete_upload(
        f"http://{host}/{where.bucket}/{where.key}", where.bucket, where.key, obj.etag
    )
    return xml_response(body)


def abort_upload(env: Env, req: Request, where: Address) -> Response:
    env.store.abort_upload(where.bucket, where.key, _upload_id(req))
    return Response(204)


def list_parts(env: Env, req: Request, where: Address) -> Response:
    up = env.store.bucket(where.bucket).upload(_upload_id(req), where.key)
    marker = int_param(req.query, "part-number-marker", 0)
    max_parts = max(1, min(int_param(req.query, "max-parts", 1000), 1000))
    after = sorted(n for n in up.parts if n > marker)
    page = [up.parts[n] for n in after[:max_parts]]
    body = render.list_parts(
        where.bucket,
        where.key,
        up,
        page,
        marker=marker,
        max_parts=max_parts,
        truncated=len(after) > max_parts,
    )
    return xml_response(body)


def list_uploads(env: Env, req: Request, where: Address) -> Response:
    b = env.store.bucket(where.bucket)
    q = req.query
    prefix = q.get("prefix", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = max(1, min(int_param(q, "max-uploads", 1000), 1000))
    found = sorted(
        (u for u in b.uploads.values() if u.key.startswith(prefix)),
        key=lambda u: (u.key, u.upload_id),
    )
    if key_marker:
        found = [
            u
            for u in found
            if u.key > key_marker
            or (id_marker and u.key == key_marker and u.upload_id > id_marker)
        ]
    body = render.list_uploads(
        b.name,
        found[:max_uploads],
        prefix=prefix,
        key_marker=key_marker,
        upload_id_marker=id_marker,
        max_uploads=max_uploads,
        truncated=len(found) > max_uploads,
    )
    return xml_response(body)
