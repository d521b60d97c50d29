"""Where each object goes: the destination key of a source object.

Pure: ``--to`` prefix, ``--strip-prefix`` and ``--key-template`` in, a key
out.  The template names parts of the source::

    {key}         the source key, after --strip-prefix        photos/2024/a.jpg
    {basename}    its last path segment                       a.jpg
    {dirname}     everything before the last '/' (or empty;   photos/2024
                  "{dirname}/" then disappears)
    {stem}        basename without its last extension         a
    {ext}         the last extension, with its dot (or empty) .jpg
    {bucket}      the source bucket                           src-bucket
    {version_id}  the source version id (or empty)            3HL4kqtJlcpXroDTDmJ

The result goes after the destination prefix.  The default template is
``{key}``: the key kept byte for byte, leading slashes and spaces included.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from engine.domain.errors import UsageError
from engine.domain.models import ObjectRef

FIELDS = ("key", "basename", "dirname", "stem", "ext", "bucket", "version_id")
MAX_KEY_BYTES = 1024


def normalize_prefix(prefix: str) -> str:
    """A destination prefix as a "folder": non-empty prefixes end with ``/``.

    ``s3://dst/backup`` and ``s3://dst/backup/`` both put ``a.txt`` at
    ``backup/a.txt``, as ``aws s3 cp --recursive`` and s5cmd do.
    """
    if prefix and not prefix.endswith("/"):
        return prefix + "/"
    return prefix


def default_destination(prefix: str, src_key: str) -> str:
    """The destination key of a task that stores none (``tasks.dst_key`` is
    NULL, most tasks: not storing it keeps rows small): the job's prefix
    followed by the source key, byte for byte.

    The one rule; the store's queries use its SQL form
    (``engine.store.rows.dst_key_sql``).
    """
    return prefix + src_key


def check_template(template: str) -> None:
    """Refuse a template with unknown fields or bad braces, naming the problem."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"--key-template {template!r}: {exc}") from None
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            raise UsageError(
                f"--key-template: unknown field {{{name}}}; "
                f"use {', '.join('{' + f + '}' for f in FIELDS)}"
            )
        if spec or conversion:
            raise UsageError(
                f"--key-template: {{{name}}} takes no format spec or conversion"
            )


@dataclass(frozen=True, slots=True)
class KeyMapping:
    """How source keys become destination keys; stored with the job."""

    prefix: str = ""
    strip_prefix: str = ""
    template: str = "{key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "strip_prefix": self.strip_prefix,
            "template": self.template,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyMapping:
        return cls(
            prefix=data.get("prefix", ""),
            strip_prefix=data.get("strip_prefix", ""),
            template=data.get("template", "{key}"),
        )

    @property
    def default(self) -> bool:
        """Whether every key goes to :func:`default_destination` (prefix +
        source key): such tasks store no ``dst_key``."""
        return not self.strip_prefix and self.template == "{key}"

    @property
    def injective(self) -> bool:
        """Whether distinct keys of one bucket always get distinct
        destinations (known only of the default mapping)."""
        return self.default

    def destination(self, src: ObjectRef) -> str:
        """The destination key of ``src``; ``ValueError`` says why there is none."""
        key = src.key
        if self.strip_prefix:
            if not key.startswith(self.strip_prefix):
                raise ValueError(
                    f"key does not start with --strip-prefix {self.strip_prefix!r}"
                )
            key = key[len(self.strip_prefix) :]
        if self.template == "{key}":
            name = key
        else:
            dirname, slash, basename = key.rpartition("/")
            stem, dot, ext = basename.rpartition(".")
            if not dot or not stem:  # no extension, or a dotfile like ".env"
                stem, ext = basename, ""
            else:
                ext = "." + ext
            template = self.template
            if not slash:  # "{dirname}/…" of a key without a directory
                template = template.replace("{dirname}/", "")
            name = template.format(
                key=key,
                basename=basename,
                dirname=dirname,
                stem=stem,
                ext=ext,
                bucket=src.bucket,
                version_id=src.version_id or "",
            )
        out = normalize_prefix(self.prefix) + name
        if not out:
            raise ValueError("maps to an empty destination key")
        if len(out.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise ValueError(
                f"destination key is over the {MAX_KEY_BYTES}-byte S3 limit"
            )
        return out
