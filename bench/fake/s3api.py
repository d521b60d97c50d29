"""The S3 API: a request in, its operation's answer out, errors as S3 XML.

Counts every request by operation (in flight from the moment it is read until
its answer is written, latency and copy time included) and adds the injected
latency to every answer.  Signatures are not checked.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from functools import partial
from typing import Any, TextIO

from bench.fake import admin, buckets, multipart, objects, render
from bench.fake.env import XML, Env, Handler
from bench.fake.errors import S3Error
from bench.fake.http import Request, Response
from bench.fake.router import Address, address, operation

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "GetBucketVersioning": buckets.get_bucket_versioning,
    "ListObjectsV2": buckets.list_objects_v2,
    "ListObjects": buckets.list_objects,
    "DeleteObjects": buckets.delete_objects,
    "HeadObject": objects.head_object,
    "GetObject": objects.get_object,
    "PutObject": objects.put_object,
    "DeleteObject": objects.delete_object,
    "CopyObject": objects.copy_object,
    "GetObjectTagging": objects.get_tagging,
    "PutObjectTagging": objects.put_tagging,
    "DeleteObjectTagging": objects.delete_tagging,
    "GetObjectAcl": objects.get_acl,
    "PutObjectAcl": objects.put_acl,
    "CreateMultipartUpload": multipart.create_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_upload,
    "AbortMultipartUpload": multipart.abort_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
}


class S3Api:
    """The application behind every connection."""

    def __init__(
        self,
        env: Env,
        *,
        latency: float = 0.0,
        domain: str = "localhost",
        log: TextIO = sys.stderr,
    ) -> None:
        self.env = env
        self.latency = latency
        self.domain = domain
        self.log = log
        self._ids = itertools.count(1)

    def settings(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency * 1000,
            "copy_bandwidth": self.env.copy_bandwidth,
            "region": self.env.region,
            "domain": self.domain,
            "content_etags": self.env.store.content_etags,
        }

    def handle(self, req: Request) -> Response:
        if req.path in admin.PATHS:
            return admin.handle(self.env, req, self.settings())
        where = address(req.path, req.headers.get("host", ""), self.domain)
        op = operation(req.method, where, req.query, "x-amz-copy-source" in req.headers)
        stats = self.env.stats
        stats.begin(op)
        request_id = f"{next(self._ids):016X}"
        try:
            handler = HANDLERS.get(op)
            if handler is None:
                print(
                    f"fakes3: 501 NotImplemented: {req.method} {req.target}",
                    file=self.log,
                    flush=True,
                )
                raise S3Error(
                    "NotImplemented",
                    "A header or query you provided implies functionality that is "
                    f"not implemented by fakes3 ({req.method} {req.target})",
                    501,
                )
            resp = handler(self.env, req, where)
        except S3Error as err:
            resp = self._error(err, req, where, request_id)
        except Exception:  # a bug here: answer 500 and say what it was
            traceback.print_exc(file=self.log)
            failed = S3Error("InternalError", "fakes3 failed (see its stderr)", 500)
            resp = self._error(failed, req, where, request_id)
        resp.head = resp.head or req.method == "HEAD"
        resp.headers.append(("x-amz-request-id", request_id))
        resp.delay += self.latency
        resp.done = partial(stats.end, op)
        return resp

    def _error(
        self, err: S3Error, req: Request, where: Address, request_id: str
    ) -> Response:
        self.env.stats.error(err.code)
        resource = f"/{where.bucket}/{where.key}" if where.key else f"/{where.bucket}"
        body = render.error(err.code, err.message, resource, request_id)
        return Response(err.status, [XML], body)
