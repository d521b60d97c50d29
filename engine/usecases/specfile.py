"""A job spec file (``--spec job.toml``): every option of a job, in one place.

The file has top-level keys and three tables, each key named like its command
line option (``storage_class`` for ``--storage-class``); see
``manifests/job.toml`` for a commented example::

    to = "s3://dst-bucket/prefix/"        # --to
    key_template = "{key}"                # --key-template
    strip_prefix = ""                     # --strip-prefix
    headers = { "x-tenant" = "blue" }     # --header

    [client]   endpoint_url, region, profile, addressing_style,
               signature_version, content_md5
    [copy]     stat_source, skip_existing, multipart_threshold, part_size,
               match_source_parts, preserve_tags, preserve_object_lock,
               preserve (["acl"]), verify, delete_source
    [object]   acl, grant_*, metadata_directive, metadata (a table), content
               headers, tagging_directive, tags (a table), storage_class, sse,
               sse_kms_key_id, sse_kms_encryption_context (a table),
               bucket_key_enabled, sse_c_key, source_sse_c_key,
               checksum_algorithm, object_lock_*, if_*, expected_*_owner,
               request_payer, retention_* (IBM COS)

Options given on the command line win over the file.  Parsing is pure; the
values are checked where the command-line values are.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from datetime import date, datetime, time
from typing import Any

from engine.domain.errors import UsageError
from engine.domain.options import ObjectOptions
from engine.domain.spec import COPY_FLAGS

TOP_LEVEL = ("to", "key_template", "strip_prefix", "headers")
CLIENT = (
    "endpoint_url",
    "region",
    "profile",
    "addressing_style",
    "signature_version",
    "content_md5",
)
COPY = (*COPY_FLAGS, "preserve")
OBJECT = tuple(f.name for f in fields(ObjectOptions))
# [source_client]: the sources' service (--source-*)
SOURCE_CLIENT = ("endpoint_url", "region", "profile", "addressing_style")
TABLES = {
    "client": CLIENT,
    "source_client": SOURCE_CLIENT,
    "copy": COPY,
    "object": OBJECT,
}


def load_spec_file(path: str) -> dict[str, Any]:
    """The file's values: top-level keys, and the tables as dicts."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"--spec {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--spec {path}: not valid TOML: {exc}") from None
    return check_spec_data(data, path)


# the type each value must have; anything else is a string
BOOLS = {
    "content_md5",
    "stat_source",
    "match_source_parts",
    "preserve_tags",
    "preserve_object_lock",
    "verify",
    "delete_source",
    "bucket_key_enabled",
    "request_payer",
}
TABLES_OF_STRINGS = {"headers", "metadata", "tags", "sse_kms_encryption_context"}
SIZES = {"multipart_threshold", "part_size"}


def _value(name: str, value: Any, where: str) -> Any:
    """``value`` checked for option ``name``; TOML dates become ISO 8601 text."""
    if isinstance(value, datetime | date | time):
        value = value.isoformat()
    if name in BOOLS:
        ok = isinstance(value, bool)
        want = "true or false"
    elif name in TABLES_OF_STRINGS:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        want = "a table of strings"
    elif name in SIZES:
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        want = 'a size like "5GiB" or a number of bytes'
    elif name == "retention_period":
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "a whole number of seconds"
    elif name == "preserve":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        want = 'a list like ["acl"]'
    else:
        ok = isinstance(value, str)
        want = "a string"
    if not ok:
        raise UsageError(f"{where}: {name} must be {want}, got {value!r}")
    return value


def check_spec_data(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Refuse unknown keys and values of the wrong type, naming them.

    Returns the data with TOML dates turned into ISO 8601 strings.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise UsageError(f"--spec {path}: [{key}] must be a table")
            table = {}
            for name, item in value.items():
                if name not in TABLES[key]:
                    raise UsageError(
                        f"--spec {path}: unknown option {name!r} in [{key}]"
                    )
                table[name] = _value(name, item, f"--spec {path} [{key}]")
            out[key] = table
        elif key in TOP_LEVEL:
            out[key] = _value(key, value, f"--spec {path}")
        else:
            raise UsageError(f"--spec {path}: unknown option {key!r}")
    return out
