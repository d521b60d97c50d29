"""Run inside ``bench/.venv-peers``: boto3's managed copy, and what the peers are.

    bench/.venv-peers/bin/python bench/peer_tools.py copy \\
        --endpoint-url URL SRC KEY DST DST_KEY
    bench/.venv-peers/bin/python bench/peer_tools.py describe

``copy`` is ``client.copy()`` with the default ``TransferConfig``, as a user
would call it.  ``describe`` prints, as JSON, the versions of aws-cli and boto3
(with the botocore and s3transfer each uses) and their default transfer settings.
Imports only what that venv has (no ``bench`` package).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any


def copy(endpoint_url: str, src: str, key: str, dst: str, dst_key: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint_url)
    client.copy({"Bucket": src, "Key": key}, dst, dst_key)


def describe() -> dict[str, Any]:
    """Versions and default transfer settings of boto3 and aws-cli.

    boto3 first: awscli vendors its own botocore and s3transfer
    (``awscli.botocore``, ``awscli.s3transfer``) and, once imported, aliases
    the top-level names to them.
    """
    import boto3
    import botocore
    import s3transfer  # type: ignore[import-untyped,unused-ignore]
    from boto3.s3.transfer import TransferConfig

    boto3_config = TransferConfig()
    found: dict[str, Any] = {
        "boto3": {
            "version": f"boto3/{boto3.__version__} botocore/{botocore.__version__} "
            f"s3transfer/{s3transfer.__version__}",
            "part_size": boto3_config.multipart_chunksize,
            "part_concurrency": boto3_config.max_request_concurrency,
            "multipart_threshold": boto3_config.multipart_threshold,
        }
    }
    import awscli  # type: ignore[import-untyped,unused-ignore]
    from awscli.customizations.s3.transferconfig import (  # type: ignore[import-untyped,unused-ignore]
        DEFAULTS,
    )

    vendored = {
        name: getattr(importlib.import_module(f"awscli.{name}"), "__version__", "?")
        for name in ("botocore", "s3transfer")
    }
    found["aws"] = {
        "version": f"aws-cli/{awscli.__version__} (vendored botocore/"
        f"{vendored['botocore']} s3transfer/{vendored['s3transfer']})",
        "part_size": DEFAULTS["multipart_chunksize"],
        "part_concurrency": DEFAULTS["max_concurrent_requests"],
        "multipart_threshold": DEFAULTS["multipart_threshold"],
    }
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("copy", help="client.copy() with the default TransferConfig")
    c.add_argument("--endpoint-url", required=True)
    for name in ("src", "key", "dst", "dst_key"):
        c.add_argument(name)
    sub.add_parser("describe", help="versions and default transfer settings")
    args = p.parse_args()
    if args.command == "copy":
        copy(args.endpoint_url, args.src, args.key, args.dst, args.dst_key)
    else:
        json.dump(describe(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
