"""Seed an S3 endpoint with the objects of a manifest, for trying bulkcopy locally.

    python manifests/seed.py manifests/example.csv \\
        --endpoint-url http://127.0.0.1:5000 \\
        --create-bucket bulkcopy-example-dst

Creates each source bucket the manifest names, writes a small object for each
row (its content names the key), and creates the destination bucket(s) given
with --create-bucket.  Uses the standard AWS credential chain.
"""

from __future__ import annotations

import argparse
import csv
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError


def ensure_bucket(s3: object, name: str) -> None:
    try:
        s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("manifest")
    p.add_argument("--endpoint-url")
    p.add_argument("--region", default="us-east-1")
    p.add_argument(
        "--create-bucket",
        action="append",
        default=[],
        help="also create this (destination) bucket; repeatable",
    )
    args = p.parse_args()
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    seen: set[str] = set()
    n = 0
    with open(args.manifest, newline="", encoding="utf-8-sig") as fh:
        for row in csv.reader(fh):
            if not row or row[:2] == ["bucket", "key"]:
                continue
            bucket, key = row[0], unquote_plus(row[1])
            if bucket not in seen:
                ensure_bucket(s3, bucket)
                seen.add(bucket)
            s3.put_object(
                Bucket=bucket, Key=key, Body=f"example object {key}\n".encode()
            )
            n += 1
    for b in args.create_bucket:
        ensure_bucket(s3, b)
    print(f"seeded {n} objects in {len(seen)} bucket(s); created {args.create_bucket}")


if __name__ == "__main__":
    main()
