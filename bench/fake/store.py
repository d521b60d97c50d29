"""Buckets, virtual objects and multipart uploads, with the rules S3 enforces.

No bodies are stored: an object is its size, ETag, properties, tags and part
layout, so a 5 TiB object costs a few hundred bytes.  Every rule a copy tool
runs into is here (5 GiB CopyObject limit, part sizes and order, ranges inside
the source, ETag preconditions); the HTTP side only translates.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.fake.checksums import Checksum, completed, zeros_checksum
from bench.fake.errors import S3Error, no_such_bucket, no_such_key, precondition_failed
from bench.fake.ranges import copy_source_range

MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
MAX_COPY_SIZE = 5 * GIB  # CopyObject and one UploadPartCopy
MIN_PART_SIZE = 5 * MIB  # every part but the last
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TIB

TOO_LARGE_TO_COPY = (
    "The specified copy source is larger than the maximum allowable size "
    f"for a copy source: {MAX_COPY_SIZE}"
)


def md5_etag(*parts: object) -> str:
    """A quoted single-part ETag derived from ``parts`` (stands in for content)."""
    text = "\0".join(str(p) for p in parts)
    return '"' + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() + '"'


@functools.lru_cache(maxsize=64)
def zeros_etag(size: int) -> str:
    """The quoted MD5 of ``size`` zero bytes: the ETag of what GetObject
    serves (``content_etags``); computed once per size (1 GiB: about 2 s)."""
    digest = hashlib.md5(usedforsecurity=False)
    block = memoryview(bytes(min(size, 8 * MIB)))
    left = size
    while left:
        n = min(left, len(block))
        digest.update(block[:n])
        left -= n
    return f'"{digest.hexdigest()}"'


def multipart_etag(part_etags: Iterable[str]) -> str:
    """The ETag S3 gives a completed upload: md5 of the parts' md5s, ``-N``."""
    digest = hashlib.md5(usedforsecurity=False)
    count = 0
    for etag in part_etags:
        digest.update(bytes.fromhex(etag.strip('"')))
        count += 1
    return f'"{digest.hexdigest()}-{count}"'


def etag_matches(condition: str, etag: str) -> bool:
    """An ``If-Match`` value (possibly a list, possibly unquoted, or ``*``)."""
    want = etag.strip('"')
    return any(c.strip().strip('"') in (want, "*") for c in condition.split(","))


@dataclass(slots=True)
class Properties:
    """What CopyObject's metadata directive copies or replaces."""

    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    # other stored headers, by lower-case name: cache-control, content-encoding,
    # x-amz-storage-class, x-amz-server-side-encryption, ...
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Obj:
    """A virtual object."""

    size: int
    etag: str
    last_modified: float
    props: Properties
    tags: list[tuple[str, str]] = field(default_factory=list)
    parts: tuple[int, ...] = ()  # part sizes when made by a multipart upload
    checksum: Checksum | None = None  # with --checksums (bench.fake.checksums)

    def part_range(self, number: int) -> tuple[int, int]:
        """``(offset, length)`` of part ``number`` (1-based); a plain object is
        one part."""
        sizes = self.parts or (self.size,)
        if not 1 <= number <= len(sizes):
            raise S3Error(
                "InvalidPartNumber", "The requested partnumber is not satisfiable", 416
            )
        return sum(sizes[: number - 1]), sizes[number - 1]


@dataclass(slots=True)
class Part:
    number: int
    size: int
    etag: str
    last_modified: float
    checksum: tuple[str, str] | None = None  # (algorithm, value) sent with it


@dataclass(slots=True)
class Upload:
    upload_id: str
    key: str
    initiated: float
    props: Properties
    tags: list[tuple[str, str]]
    parts: dict[int, Part] = field(default_factory=dict)
    algorithm: str | None = None  # x-amz-checksum-algorithm, lower case
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE


@dataclass(slots=True)
class Page:
    """One page of a listing: objects and common prefixes in key order."""

    contents: list[tuple[str, Obj]]
    prefixes: list[str]
    truncated: bool
    last: str | None  # the last key or prefix on the page (the next marker)


def _after(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Bucket:
    """Objects by key, with the keys kept sorted for listings."""

    def __init__(self, name: str, created: float) -> None:
        self.name = name
        self.created = created
        self.objects: dict[str, Obj] = {}
        self.keys: list[str] = []
        self.uploads: dict[str, Upload] = {}

    def get(self, key: str) -> Obj:
        obj = self.objects.get(key)
        if obj is None:
            raise no_such_key(key)
        return obj

    def put(self, key: str, obj: Obj) -> None:
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = obj

    def delete(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def upload(self, upload_id: str, key: str) -> Upload:
        up = self.uploads.get(upload_id)
        if up is None or up.key != key:
            raise S3Error(
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, "
                "or the upload may have been aborted or completed.",
                404,
            )
        return up

    def list(self, prefix: str, delimiter: str, after: str, max_keys: int) -> Page:
        """Keys under ``prefix`` strictly after ``after``, rolled up at
        ``delimiter``; at most ``max_keys`` keys and prefixes together."""
        keys = self.keys
        start = max(prefix, after) if after else prefix
        i = bisect.bisect_left(keys, start)
        contents: list[tuple[str, Obj]] = []
        prefixes: list[str] = []
        last: str | None = None
        while i < len(keys):
            key = keys[i]
            if not key.startswith(prefix):
                break
            if after and key <= after:
                i += 1
                continue
            rolled = key.find(delimiter, len(prefix)) if delimiter else -1
            if rolled >= 0:
                common = key[: rolled + len(delimiter)]
                if common <= after:  # this prefix was on an earlier page
                    i = bisect.bisect_left(keys, _after(common))
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                return Page(contents, prefixes, True, last)
            if rolled >= 0:
                prefixes.append(common)
                last = common
                i = bisect.bisect_left(keys, _after(common))
            else:
                contents.append((key, self.objects[key]))
                last = key
                i += 1
        return Page(contents, prefixes, False, last)


class Store:
    """Every bucket, object and upload the fake endpoint knows.

    ``content_etags``: the ETags of seeded objects and of copies are those of
    the zeros GetObject serves (the MD5 of the body for a single-part object,
    of its parts' MD5s for a multipart one), as a client that checks the
    bytes it reads against the ETag expects; otherwise (the default, nothing
    to hash) they are derived from the bucket, key and size.

    ``checksums``: objects have checksums, as on S3 since 2025
    (:mod:`bench.fake.checksums`)."""

    def __init__(self, content_etags: bool = False, checksums: bool = False) -> None:
        self.buckets: dict[str, Bucket] = {}
        self._ids = itertools.count(1)
        self.content_etags = content_etags
        self.checksums = checksums

    def _etag(self, size: int, *derived_from: object) -> str:
        """A single-part ETag: of the zeros served, or derived."""
        return zeros_etag(size) if self.content_etags else md5_etag(*derived_from)

    # buckets -------------------------------------------------------------

    def bucket(self, name: str) -> Bucket:
        found = self.buckets.get(name)
        if found is None:
            raise no_such_bucket(name)
        return found

    def create_bucket(self, name: str) -> Bucket:
        """Create ``name``, or return it if it exists (S3 in us-east-1: 200)."""
        if name not in self.buckets:
            self.buckets[name] = Bucket(name, time.time())
        return self.buckets[name]

    def delete_bucket(self, name: str) -> None:
        b = self.bucket(name)
        if b.objects or b.uploads:
            raise S3Error(
                "BucketNotEmpty", "The bucket you tried to delete is not empty", 409
            )
        del self.buckets[name]

    # seeding (no requests) -----------------------------------------------

    def seed_object(
        self,
        bucket: str,
        key: str,
        size: int,
        *,
        props: Properties | None = None,
        tags: list[tuple[str, str]] | None = None,
        part_size: int | None = None,
    ) -> Obj:
        """Create an object as if it had been uploaded (with ``part_size`` parts)."""
        if not 0 <= size <= MAX_OBJECT_SIZE:
            raise ValueError(f"size {size} is outside 0..5TiB")
        b = self.create_bucket(bucket)
        parts: tuple[int, ...] = ()
        etag = md5_etag(bucket, key, size)
        if part_size:
            count = max(1, -(-size // part_size))
            if count > MAX_PARTS:
                raise ValueError(f"{count} parts of {part_size} exceed 10,000")
            parts = (part_size,) * (count - 1) + (size - part_size * (count - 1),)
            etag = multipart_etag(
                self._etag(length, etag, n) for n, length in enumerate(parts, 1)
            )
        elif self.content_etags:
            etag = zeros_etag(size)
        obj = Obj(size, etag, time.time(), props or Properties(), tags or [], parts)
        if self.checksums:
            obj.checksum = zeros_checksum(size)
        b.put(key, obj)
        return obj

    def seed_prefix(self, bucket: str, prefix: str, count: int, size: int) -> None:
        """``count`` objects of ``size`` bytes named ``PREFIX000000``, ..."""
        b = self.create_bucket(bucket)
        now = time.time()
        checksum = zeros_checksum(size) if self.checksums else None
        for n in range(count):
            key = f"{prefix}{n:06d}"
            etag = self._etag(size, bucket, key, size)
            b.put(key, Obj(size, etag, now, Properties(), checksum=checksum))

    # objects -------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        size: int,
        etag: str,
        props: Properties,
        tags: list[tuple[str, str]],
        checksum: tuple[str, str] | None = None,
    ) -> Obj:
        b = self.bucket(bucket)
        obj = Obj(size, etag, time.time(), props, tags)
        if self.checksums and checksum is not None:
            obj.checksum = (*checksum, "FULL_OBJECT")
        b.put(key, obj)
        return obj

    def copy_object(
        self,
        src: Obj,
        bucket: str,
        key: str,
        props: Properties,
        tags: list[tuple[str, str]],
    ) -> Obj:
        """CopyObject of a source already found and checked (``source``)."""
        b = self.bucket(bucket)
        if src.size > MAX_COPY_SIZE:
            raise S3Error("InvalidRequest", TOO_LARGE_TO_COPY, 400)
        # the same bytes: a single-part MD5 stays; a multipart ETag becomes a new
        # single-part one (as on S3, where CopyObject writes one part)
        etag = src.etag if "-" not in src.etag else self._etag(src.size, src.etag)
        obj = Obj(src.size, etag, time.time(), props, tags, checksum=src.checksum)
        b.put(key, obj)
        return obj

    def source(
        self, bucket: str, key: str, version_id: str | None, if_match: str | None
    ) -> Obj:
        """The object a copy reads, checked against its version and ETag."""
        obj = self.bucket(bucket).get(key)
        if version_id not in (None, "", "null"):
            raise S3Error("NoSuchVersion", "The specified version does not exist.", 404)
        if if_match is not None and not etag_matches(if_match, obj.etag):
            raise precondition_failed()
        return obj

    # multipart -----------------------------------------------------------

    def create_upload(
        self,
        bucket: str,
        key: str,
        props: Properties,
        tags: list[tuple[str, str]],
        checksum: tuple[str | None, str | None] = (None, None),
    ) -> Upload:
        b = self.bucket(bucket)
        upload_id = f"{next(self._ids):012d}{secrets.token_hex(8)}"
        up = Upload(upload_id, key, time.time(), props, tags)
        if self.checksums:
            up.algorithm, up.checksum_type = checksum
        b.uploads[upload_id] = up
        return up

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        size: int,
        etag: str,
        checksum: tuple[str, str] | None = None,
    ) -> Part:
        up = self.bucket(bucket).upload(upload_id, key)
        _check_part_number(number)
        if size > MAX_COPY_SIZE:
            raise S3Error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                400,
            )
        part = Part(number, size, etag, time.time(), checksum)
        up.parts[number] = part
        return part

    def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        src: Obj,
        byte_range: str | None,
    ) -> Part:
        """Copy ``byte_range`` (``bytes=a-b``) of ``src`` into a part."""
        up = self.bucket(bucket).upload(upload_id, key)
        _check_part_number(number)
        if byte_range is None:
            if src.size > MAX_COPY_SIZE:
                raise S3Error("InvalidRequest", TOO_LARGE_TO_COPY, 400)
            first, last = 0, src.size - 1
        else:
            first, last = copy_source_range(byte_range, src.size)
        size = last - first + 1
        if size > MAX_COPY_SIZE:
            raise S3Error(
                "InvalidRequest",
                "The specified copy range is larger than the maximum allowable "
                f"size for a part: {MAX_COPY_SIZE}",
                400,
            )
        etag = self._etag(size, src.etag, first, last)
        part = Part(number, size, etag, time.time())
        up.parts[number] = part
        return part

    def complete_upload(
        self, bucket: str, key: str, upload_id: str, listed: list[tuple[int, str]]
    ) -> Obj:
        """Assemble the parts the client lists (number, ETag) into the object."""
        b = self.bucket(bucket)
        up = b.upload(upload_id, key)
        if not listed:
            raise S3Error(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate "
                "against our published schema",
                400,
            )
        parts: list[Part] = []
        for i, (number, etag) in enumerate(listed):
            if i and number <= listed[i - 1][0]:
                raise S3Error(
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order. The parts list "
                    "must be specified in order by part number.",
                    400,
                )
            part = up.parts.get(number)
            if part is None or part.etag.strip('"') != etag.strip('"'):
                raise S3Error(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The part "
                    "may not have been uploaded, or the specified entity tag may not "
                    f"match the part's entity tag. (part {number})",
                    400,
                )
            parts.append(part)
        for part in parts[:-1]:
            if part.size < MIN_PART_SIZE:
                raise S3Error(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size "
                    f"(part {part.number}: {part.size} bytes)",
                    400,
                )
        obj = Obj(
            sum(p.size for p in parts),
            multipart_etag(p.etag for p in parts),
            time.time(),
            up.props,
            up.tags,
            tuple(p.size for p in parts),
        )
        if self.checksums:
            alg = up.algorithm
            sums = [
                (p.checksum[1] if p.checksum and p.checksum[0] == alg else None, p.size)
                for p in parts
            ]
            obj.checksum = completed(alg, up.checksum_type, sums)
        b.put(key, obj)
        del b.uploads[upload_id]
        return obj

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        b = self.bucket(bucket)
        b.upload(upload_id, key)
        del b.uploads[upload_id]


def _check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            400,
        )


def copied_props(src: Obj) -> Properties:
    """The properties a ``COPY`` directive carries (a fresh, unshared copy)."""
    p = src.props
    return Properties(p.content_type, dict(p.metadata), dict(p.headers))
