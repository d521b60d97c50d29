"""What a job was submitted with, stored beside it so every run uses the same."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.copy.keys import KeyMapping
from engine.options import ObjectOptions
from engine.s3.client import ClientSettings

SPEC_VERSION = 1


@dataclass(frozen=True, slots=True)
class CopyOptions:
    """Options that change what each copy does."""

    # HEAD each source first: records its size and pins the copy to its ETag.
    stat_source: bool = True
    # objects over this many bytes are copied part by part (at most 5 GiB)
    multipart_threshold: int = 5 * 1024**3
    part_size: int | None = None  # None: the planner's choice
    match_source_parts: bool = False
    # what a multipart copy reads from the source and carries over
    preserve_tags: bool = True
    preserve_object_lock: bool = False
    # copy the source's ACL onto the destination (GetObjectAcl/PutObjectAcl)
    preserve_acl: bool = False
    # check each copy after it is made (size, ETag or checksum, metadata, tags)
    verify: bool = False
    # HEAD the destination first and skip the copy when it is already there
    # (engine.copy.skip: never, same-etag, same-size, newer)
    skip_existing: str = "never"
    # a move: delete each source (that version) once its copy is recorded and
    # verified (engine.copy.move)
    delete_source: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a job needs besides its tasks; no secrets, ever."""

    client: ClientSettings = field(default_factory=ClientSettings)
    copy: CopyOptions = field(default_factory=CopyOptions)
    object: ObjectOptions = field(default_factory=ObjectOptions)
    keys: KeyMapping = field(default_factory=KeyMapping)
    # extra request headers (--header), signed like the rest
    headers: dict[str, str] = field(default_factory=dict)
    source_buckets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "client": self.client.to_dict(),
            "copy": asdict(self.copy),
            "object": self.object.to_dict(),
            "keys": self.keys.to_dict(),
            "headers": dict(self.headers),
            "source_buckets": list(self.source_buckets),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            client=ClientSettings.from_dict(data.get("client", {})),
            copy=CopyOptions.from_dict(data.get("copy", {})),
            object=ObjectOptions.from_dict(data.get("object", {})),
            keys=KeyMapping.from_dict(data.get("keys", {})),
            headers=dict(data.get("headers", {})),
            source_buckets=tuple(data.get("source_buckets", ())),
        )
