"""What a job was submitted with, stored beside it so every run uses the same."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.domain.errors import UsageError
from engine.domain.keys import KeyMapping, check_template
from engine.domain.options import ObjectOptions, validate, validate_headers
from engine.domain.plan import MAX_COPY_OBJECT, MAX_PART_SIZE, MIN_PART_SIZE

SPEC_VERSION = 1

# ``--skip-existing``: when the destination already holds the object
# (engine.copy.skip decides; a move's only ``same-etag``)
SKIP_POLICIES = ("never", "same-etag", "same-size", "newer")

# ``--transfer``: how each object reaches the destination (engine.domain.transfer)
TRANSFER_MODES = ("auto", "server", "stream")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to reach S3.  Stored with the job (no secrets in here)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str | None = None  # "auto" | "path" | "virtual"
    signature_version: str | None = None  # "s3v4" (default) | "s3" (V2)
    content_md5: bool = False  # Content-MD5 on bodies (IBM COS protected buckets)
    max_pool_connections: int = 64
    sdk_max_attempts: int = 3
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    # CopyObject through the lean path (engine.s3.lean) where it can; False:
    # always botocore's (--no-lean-copy; BULKCOPY_LEAN_COPY=0/1 overrides)
    lean_copy: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientSettings:
        data = dict(data)
        if "fast_copy" in data:  # the switch's name in jobs of bulkcopy <= 0.1
            data.setdefault("lean_copy", data.pop("fast_copy"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def merged(self, **overrides: Any) -> ClientSettings:
        """These settings with every non-``None`` override applied."""
        data = self.to_dict()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return ClientSettings.from_dict(data)


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
    # server-side copy, or read from the source and write to the destination
    # (two services); "auto" picks (engine.domain.transfer.choose)
    transfer: str = "auto"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        """Raise :class:`UsageError` for options no copy can be made with."""
        if not MIN_PART_SIZE <= self.multipart_threshold <= MAX_COPY_OBJECT:
            raise UsageError("--multipart-threshold must be between 5MiB and 5GiB")
        part_size = self.part_size
        if part_size is not None and not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise UsageError("--part-size must be between 5MiB and 5GiB")
        if self.skip_existing not in SKIP_POLICIES:
            raise UsageError(
                f"skip_existing: {self.skip_existing!r} is not one of "
                f"{', '.join(SKIP_POLICIES)}"
            )
        if self.transfer not in TRANSFER_MODES:
            raise UsageError(
                f"--transfer must be one of {', '.join(TRANSFER_MODES)}, "
                f"got {self.transfer!r}"
            )
        if self.delete_source and self.skip_existing in ("same-size", "newer"):
            raise UsageError(
                f"--skip-existing {self.skip_existing} cannot vouch for a move: "
                "a source is deleted only when its copy is verified (use same-etag)"
            )


# the copy options a flag (or a --spec file key) of the same name sets;
# preserve_acl is set by ``--preserve acl``
COPY_FLAGS = tuple(f.name for f in fields(CopyOptions) if f.name != "preserve_acl")


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
    # how to reach the sources when they are on another service, or need
    # other credentials (--source-*); None: the destination's client
    source_client: ClientSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "client": self.client.to_dict(),
            "copy": asdict(self.copy),
            "object": self.object.to_dict(),
            "keys": self.keys.to_dict(),
            "headers": dict(self.headers),
            "source_buckets": list(self.source_buckets),
            "source_client": (
                None if self.source_client is None else self.source_client.to_dict()
            ),
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
            source_client=(
                None
                if data.get("source_client") is None
                else ClientSettings.from_dict(data["source_client"])
            ),
        )

    def validate(self) -> None:
        """Raise :class:`UsageError` when this spec cannot make a job: the
        same checks whether it came from the CLI, a ``--spec`` file or the
        Python API (:func:`engine.usecases.submit.submit_source` calls it)."""
        self.copy.validate()
        validate(self.object)
        check_template(self.keys.template)
        validate_headers(self.headers)
