"""The XML bodies S3 answers with, and the date formats in them.

Plain string building: it is the hot path of every listing and copy answer.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable
from urllib.parse import quote
from xml.sax.saxutils import escape

from bench.fake.store import Obj, Page, Part, Upload

XMLNS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
OWNER_NAME = "fakes3"
OWNER = f"<ID>{OWNER_ID}</ID><DisplayName>{OWNER_NAME}</DisplayName>"


def document(root: str, inner: str, attrs: str = XMLNS) -> bytes:
    return f"{DECLARATION}<{root}{attrs}>{inner}</{root}>".encode()


def iso8601(ts: float) -> str:
    """``2024-05-01T12:00:00.000Z``, as in XML answers."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"


def http_date(ts: float) -> str:
    """``Wed, 01 May 2024 12:00:00 GMT``, as in ``Last-Modified``."""
    return email.utils.formatdate(ts, usegmt=True)


def error(code: str, message: str, resource: str, request_id: str) -> bytes:
    return document(
        "Error",
        f"<Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId>",
        attrs="",
    )


def _text(name: str, value: str | int | None) -> str:
    if value is None:
        return ""
    return f"<{name}>{escape(str(value))}</{name}>"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def list_buckets(buckets: Iterable[tuple[str, float]]) -> bytes:
    items = "".join(
        f"<Bucket><Name>{escape(name)}</Name>"
        f"<CreationDate>{iso8601(created)}</CreationDate></Bucket>"
        for name, created in buckets
    )
    return document(
        "ListAllMyBucketsResult", f"<Owner>{OWNER}</Owner><Buckets>{items}</Buckets>"
    )


def location(region: str) -> bytes:
    constraint = "" if region == "us-east-1" else escape(region)
    return document("LocationConstraint", constraint)


def _key(value: str, url: bool) -> str:
    return escape(quote(value, safe="/") if url else value)


def _contents(page: Page, url: bool, owner: bool = True) -> str:
    out = []
    owned = f"<Owner>{OWNER}</Owner>" if owner else ""
    for key, obj in page.contents:
        out.append(
            f"<Contents><Key>{_key(key, url)}</Key>"
            f"<LastModified>{iso8601(obj.last_modified)}</LastModified>"
            f"<ETag>{escape(obj.etag)}</ETag><Size>{obj.size}</Size>{owned}"
            f"<StorageClass>{_storage_class(obj)}</StorageClass></Contents>"
        )
    for prefix in page.prefixes:
        out.append(
            f"<CommonPrefixes><Prefix>{_key(prefix, url)}</Prefix></CommonPrefixes>"
        )
    return "".join(out)


def _storage_class(obj: Obj) -> str:
    return escape(obj.props.headers.get("x-amz-storage-class", "STANDARD"))


def list_objects_v2(
    bucket: str,
    page: Page,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    start_after: str | None,
    token: str | None,
    next_token: str | None,
    url: bool,
    fetch_owner: bool = False,
) -> bytes:
    # as S3: a V2 listing names each object's owner only when asked to
    inner = (
        f"<Name>{escape(bucket)}</Name><Prefix>{_key(prefix, url)}</Prefix>"
        f"<KeyCount>{len(page.contents) + len(page.prefixes)}</KeyCount>"
        f"<MaxKeys>{max_keys}</MaxKeys>"
        + (f"<Delimiter>{_key(delimiter, url)}</Delimiter>" if delimiter else "")
        + f"<IsTruncated>{_flag(page.truncated)}</IsTruncated>"
        + _text("ContinuationToken", token)
        + _text("NextContinuationToken", next_token)
        + (f"<StartAfter>{_key(start_after, url)}</StartAfter>" if start_after else "")
        + ("<EncodingType>url</EncodingType>" if url else "")
        + _contents(page, url, owner=fetch_owner)
    )
    return document("ListBucketResult", inner)


def list_objects_v1(
    bucket: str,
    page: Page,
    *,
    prefix: str,
    delimiter: str,
    max_keys: int,
    marker: str,
    url: bool,
) -> bytes:
    next_marker = page.last if page.truncated and page.last is not None else None
    inner = (
        f"<Name>{escape(bucket)}</Name><Prefix>{_key(prefix, url)}</Prefix>"
        f"<Marker>{_key(marker, url)}</Marker><MaxKeys>{max_keys}</MaxKeys>"
        + (f"<Delimiter>{_key(delimiter, url)}</Delimiter>" if delimiter else "")
        + f"<IsTruncated>{_flag(page.truncated)}</IsTruncated>"
        + (f"<NextMarker>{_key(next_marker, url)}</NextMarker>" if next_marker else "")
        + ("<EncodingType>url</EncodingType>" if url else "")
        + _contents(page, url)
    )
    return document("ListBucketResult", inner)


def copy_object_result(etag: str, last_modified: float) -> bytes:
    return document(
        "CopyObjectResult",
        f"<LastModified>{iso8601(last_modified)}</LastModified>"
        f"<ETag>{escape(etag)}</ETag>",
    )


def copy_part_result(part: Part) -> bytes:
    return document(
        "CopyPartResult",
        f"<LastModified>{iso8601(part.last_modified)}</LastModified>"
        f"<ETag>{escape(part.etag)}</ETag>",
    )


def initiate_upload(bucket: str, key: str, upload_id: str) -> bytes:
    return document(
        "InitiateMultipartUploadResult",
        f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
        f"<UploadId>{upload_id}</UploadId>",
    )


def complete_upload(location_url: str, bucket: str, key: str, etag: str) -> bytes:
    return document(
        "CompleteMultipartUploadResult",
        f"<Location>{escape(location_url)}</Location><Bucket>{escape(bucket)}</Bucket>"
        f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag>",
    )


def list_parts(
    bucket: str,
    key: str,
    upload: Upload,
    parts: list[Part],
    *,
    marker: int,
    max_parts: int,
    truncated: bool,
) -> bytes:
    items = "".join(
        f"<Part><PartNumber>{p.number}</PartNumber>"
        f"<LastModified>{iso8601(p.last_modified)}</LastModified>"
        f"<ETag>{escape(p.etag)}</ETag><Size>{p.size}</Size></Part>"
        for p in parts
    )
    next_marker = parts[-1].number if parts else marker
    return document(
        "ListPartsResult",
        f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
        f"<UploadId>{upload.upload_id}</UploadId>"
        f"<Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        f"<StorageClass>STANDARD</StorageClass>"
        f"<PartNumberMarker>{marker}</PartNumberMarker>"
        f"<NextPartNumberMarker>{next_marker}</NextPartNumberMarker>"
        f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{_flag(truncated)}</IsTruncated>"
        + items,
    )


def list_uploads(
    bucket: str,
    uploads: list[Upload],
    *,
    prefix: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
    truncated: bool,
) -> bytes:
    items = "".join(
        f"<Upload><Key>{escape(u.key)}</Key><UploadId>{u.upload_id}</UploadId>"
        f"<Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        f"<StorageClass>STANDARD</StorageClass>"
        f"<Initiated>{iso8601(u.initiated)}</Initiated></Upload>"
        for u in uploads
    )
    last = uploads[-1] if truncated and uploads else None
    return document(
        "ListMultipartUploadsResult",
        f"<Bucket>{escape(bucket)}</Bucket><KeyMarker>{escape(key_marker)}</KeyMarker>"
        f"<UploadIdMarker>{escape(upload_id_marker)}</UploadIdMarker>"
        + (
            f"<NextKeyMarker>{escape(last.key)}</NextKeyMarker>"
            f"<NextUploadIdMarker>{last.upload_id}</NextUploadIdMarker>"
            if last
            else ""
        )
        + f"<Prefix>{escape(prefix)}</Prefix><MaxUploads>{max_uploads}</MaxUploads>"
        f"<IsTruncated>{_flag(truncated)}</IsTruncated>" + items,
    )


def tagging(tags: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>" for k, v in tags
    )
    return document("Tagging", f"<TagSet>{items}</TagSet>")


def acl() -> bytes:
    grantee = (
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="CanonicalUser">{OWNER}</Grantee>'
    )
    return document(
        "AccessControlPolicy",
        f"<Owner>{OWNER}</Owner><AccessControlList><Grant>{grantee}"
        "<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>",
    )


def delete_result(deleted: list[str], quiet: bool) -> bytes:
    items = (
        ""
        if quiet
        else "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in deleted)
    )
    return document("DeleteResult", items)
