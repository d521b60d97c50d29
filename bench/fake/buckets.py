"""Bucket operations: list, create, head, delete, location, and object listings."""

from __future__ import annotations

import base64
import binascii
import re

from bench.fake import render
from bench.fake.env import Env, int_param, parse_xml, text, xml_response
from bench.fake.errors import S3Error
from bench.fake.http import Request, Response
from bench.fake.router import Address

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEYS = 1000


def list_buckets(env: Env, req: Request, where: Address) -> Response:
    buckets = sorted((b.name, b.created) for b in env.store.buckets.values())
    return xml_response(render.list_buckets(buckets))


def create_bucket(env: Env, req: Request, where: Address) -> Response:
    if not BUCKET_NAME.match(where.bucket):
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", 400)
    env.store.create_bucket(where.bucket)
    return Response(200, [("Location", f"/{where.bucket}")])


def head_bucket(env: Env, req: Request, where: Address) -> Response:
    env.store.bucket(where.bucket)
    return Response(200, [("x-amz-bucket-region", env.region)], head=True)


def delete_bucket(env: Env, req: Request, where: Address) -> Response:
    env.store.delete_bucket(where.bucket)
    return Response(204)


def get_bucket_location(env: Env, req: Request, where: Address) -> Response:
    env.store.bucket(where.bucket)
    return xml_response(render.location(env.region))


def get_bucket_versioning(env: Env, req: Request, where: Address) -> Response:
    """fakes3 keeps no versions: versioning was never enabled."""
    env.store.bucket(where.bucket)
    return xml_response(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    )


def _max_keys(req: Request) -> int:
    return max(0, min(int_param(req.query, "max-keys", MAX_KEYS), MAX_KEYS))


def _url_encoded(req: Request) -> bool:
    encoding = req.query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified", 400)
    return encoding == "url"


def list_objects_v2(env: Env, req: Request, where: Address) -> Response:
    b = env.store.bucket(where.bucket)
    q = req.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    token = q.get("continuation-token")
    start_after = q.get("start-after")
    after = _decode_token(token) if token else (start_after or "")
    max_keys = _max_keys(req)
    page = b.list(prefix, delimiter, after, max_keys)
    next_token = (
        _encode_token(page.last) if page.truncated and page.last is not None else None
    )
    body = render.list_objects_v2(
        b.name,
        page,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=max_keys,
        start_after=start_after,
        token=token,
        next_token=next_token,
        url=_url_encoded(req),
        fetch_owner=q.get("fetch-owner") == "true",
    )
    return xml_response(body)


def list_objects(env: Env, req: Request, where: Address) -> Response:
    b = env.store.bucket(where.bucket)
    q = req.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    marker = q.get("marker", "")
    max_keys = _max_keys(req)
    page = b.list(prefix, delimiter, marker, max_keys)
    body = render.list_objects_v1(
        b.name,
        page,
        prefix=prefix,
        delimiter=delimiter,
        max_keys=max_keys,
        marker=marker,
        url=_url_encoded(req),
    )
    return xml_response(body)


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise S3Error(
            "InvalidArgument", "The continuation token provided is incorrect", 400
        ) from None


def delete_objects(env: Env, req: Request, where: Address) -> Response:
    b = env.store.bucket(where.bucket)
    root = parse_xml(req.body)
    keys = [text(o, "Key") for o in root.findall("Object")]
    if not keys or len(keys) > 1000:
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate "
            "against our published schema",
            400,
        )
    for key in keys:
        b.delete(key)
    quiet = text(root, "Quiet").lower() == "true"
    return xml_response(render.delete_result(keys, quiet))
