"""Copies between two different S3 services, each with its own credentials:
moto holds the sources, LocalStack the destination (issue 20); some tests
stream to Ceph RGW or `rclone serve s3` instead, or from LocalStack to moto.

Each store is reached through an AWS profile that carries its endpoint and
keys, as a user with two stores would set them up; every test runs the CLI
as it is typed.  No server-side copy can reach from one to the other, so
every object is streamed: read with GetObject, written with PutObject or a
multipart upload, each body checked against its MD5 and checksum.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from engine.domain.digests import checksum
from tests.acceptance.conftest import Cli
from tests.faultproxy import FaultProxy, Request, Rewrite
from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server

MiB = 1024 * 1024
SRC_KEYS = ("src-key-id", "src-secret")
DST_KEYS = ("dst-key-id", "dst-secret")


def _profiles(
    path: Path, src: str, dst: str, dst_keys: tuple[str, str] = DST_KEYS
) -> Path:
    path.write_text(
        f"""[profile src]
endpoint_url = {src}
aws_access_key_id = {SRC_KEYS[0]}
aws_secret_access_key = {SRC_KEYS[1]}
region = {REGION}
s3 =
    addressing_style = path

[profile dst]
endpoint_url = {dst}
aws_access_key_id = {dst_keys[0]}
aws_secret_access_key = {dst_keys[1]}
region = {REGION}
s3 =
    addressing_style = path
"""
    )
    return path


def _client(endpoint: str, keys: tuple[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=Config(s3={"addressing_style": "path"}),
    )


class Stores:
    """The source store and the destination store, and a CLI that reaches
    them through the profiles ``src`` and ``dst``."""

    def __init__(
        self,
        cli: Cli,
        src: S3Server,
        dst: S3Server,
        tmp: Path,
        dst_keys: tuple[str, str] = DST_KEYS,
    ) -> None:
        self.src_server, self.dst_server = src, dst
        self.cli = cli
        self.dst_keys = dst_keys
        self.config = _profiles(
            tmp / "aws-config", src.endpoint, dst.endpoint, dst_keys
        )
        for name in (
            "AWS_ENDPOINT_URL_S3",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ):
            cli.env.pop(name, None)
        cli.env["AWS_CONFIG_FILE"] = str(self.config)
        self.src = _client(src.endpoint, SRC_KEYS)
        self.dst = _client(dst.endpoint, dst_keys)
        self.src_bucket = src.new_bucket()
        self.dst_bucket = dst.new_bucket()

    def point_source_at(self, endpoint: str) -> None:
        """The ``src`` profile reaches the source through ``endpoint`` (a
        fault proxy)."""
        _profiles(self.config, endpoint, self.dst_server.endpoint, self.dst_keys)

    def copy(self, *args: str, command: str = "copy") -> Any:
        return self.cli(
            command,
            *args,
            "--to",
            f"s3://{self.dst_bucket}/",
            "--profile",
            "dst",
            "--source-profile",
            "src",
            "--log-format",
            "json",
        )

    def report(self, job_id: str, tmp: Path) -> list[dict[str, Any]]:
        out = tmp / f"report-{job_id}"
        res = self.cli("report", job_id, "--out", str(out))
        assert res.returncode == 0, res.stderr
        text = next(out.rglob("results.jsonl")).read_text()
        return [json.loads(line) for line in text.splitlines()]

    def open_uploads(self) -> list[Any]:
        answer = self.dst.list_multipart_uploads(Bucket=self.dst_bucket)
        return list(answer.get("Uploads", []))


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]


def _job_id(stderr: str) -> str:
    return next(e["job_id"] for e in _events(stderr) if "job_id" in e)


def _manifest(path: Path, bucket: str, keys: list[str]) -> str:
    from urllib.parse import quote

    path.write_text("".join(f"{bucket},{quote(k, safe='/')}\n" for k in keys))
    return str(path)


@pytest.fixture
def stores(
    moto: S3Server,
    localstack: S3Server,
    cli_for: Callable[[S3Server], Cli],
    tmp_path: Path,
) -> Stores:
    return Stores(cli_for(moto), moto, localstack, tmp_path)


@pytest.fixture
def to_rgw(
    moto: S3Server,
    rgw: S3Server,
    cli_for: Callable[[S3Server], Cli],
    tmp_path: Path,
) -> Stores:
    """moto's objects streamed to Ceph RGW (its own user's keys), the store
    that ignores checksums, TaggingDirective and tags on multipart creates."""
    return Stores(cli_for(moto), moto, rgw, tmp_path, (ACCESS_KEY, SECRET_KEY))


@pytest.mark.parametrize("destination", ["stores", "to_rgw"])
def test_objects_stream_between_stores_with_their_properties(
    destination: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Small objects with awkward keys, metadata, content headers and tags,
    and a large one in parts, reach the other store byte for byte with what
    they carry; each is reported once, method stream, with its size and the
    source's ETag; no upload is left open.  On LocalStack, and on Ceph RGW,
    which keeps no checksums and drops tags sent with a multipart create."""
    s: Stores = request.getfixturevalue(destination)
    small = {
        "a.txt": b"alpha",
        "dir/with space+plus%.bin": b"\x00\xffbytes",
        "ünï/cödé.txt": b"unicode key",
        "empty": b"",
    }
    for key, body in small.items():
        s.src.put_object(
            Bucket=s.src_bucket,
            Key=key,
            Body=body,
            ContentType="text/x-test",
            CacheControl="max-age=60",
            Metadata={"owner": "ops"},
            Tagging="team=data&tier=gold",
        )
    large = bytes(range(256)) * (12 * MiB // 256) + b"tail"
    s.src.put_object(
        Bucket=s.src_bucket, Key="big/large.bin", Body=large, Tagging="size=large"
    )
    # the CRCs botocore computes only with the AWS CRT: bulkcopy computes them
    crcs = {"crc/c.txt": "CRC32C", "crc/n.txt": "CRC64NVME"}
    for key, alg in crcs.items():
        value = checksum(key.encode(), alg)
        s.src.put_object(
            Bucket=s.src_bucket,
            Key=key,
            Body=key.encode(),
            ChecksumAlgorithm=alg,
            **{f"Checksum{alg}": value},
        )
    keys = [*small, "big/large.bin", *crcs]
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, keys)

    res = s.copy(manifest, "--part-size", "5MiB")

    assert res.returncode == 0, res.stderr
    started = [e for e in _events(res.stderr) if e["event"] == "run_started"]
    assert started[0]["transfer"] == "stream"
    lines = {
        line["source"]["key"]: line for line in s.report(_job_id(res.stderr), tmp_path)
    }
    assert sorted(lines) == sorted(keys)
    bodies = {**small, "big/large.bin": large, **{k: k.encode() for k in crcs}}
    for key, body in bodies.items():
        line = lines[key]
        assert line["status"] == "succeeded", line
        assert line["method"] == "stream", line
        assert line["bytes"] == len(body)
        got = s.dst.get_object(Bucket=s.dst_bucket, Key=key)
        assert got["Body"].read() == body, key
        src_head = s.src.head_object(Bucket=s.src_bucket, Key=key)
        assert line["source_etag"].strip('"') == src_head["ETag"].strip('"')
    for key in small:
        head = s.dst.head_object(Bucket=s.dst_bucket, Key=key)
        assert head["ContentType"] == "text/x-test"
        assert head["CacheControl"] == "max-age=60"
        assert head["Metadata"] == {"owner": "ops"}
        tags = s.dst.get_object_tagging(Bucket=s.dst_bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {"team": "data", "tier": "gold"}
    assert lines["big/large.bin"]["part_count"] == 3
    # tags sent with the multipart create (which RGW drops) are set afterwards
    tags = s.dst.get_object_tagging(Bucket=s.dst_bucket, Key="big/large.bin")
    assert tags["TagSet"] == [{"Key": "size", "Value": "large"}]
    assert s.open_uploads() == []
    # moto's objects carry CRC32s; RGW keeps no checksums: the run says so,
    # and the copies count, checked by MD5 and size
    quirks = [e for e in _events(res.stderr) if e["event"] == "store_quirks"]
    kept_none = any("checksum" in " ".join(e["ignores"]) for e in quirks)
    assert kept_none == (destination == "to_rgw"), quirks
    # the large one went in parts, made FULL_OBJECT with the source's CRC32
    # (its single PUT's), which LocalStack checked at Complete and keeps
    big = {"Bucket": s.dst_bucket, "Key": "big/large.bin", "ChecksumMode": "ENABLED"}
    if not kept_none:
        copied = s.dst.head_object(**big)
        source = s.src.head_object(**{**big, "Bucket": s.src_bucket})
        assert copied.get("ChecksumType") == "FULL_OBJECT", copied
        assert (
            copied["ChecksumCRC32"]
            == source["ChecksumCRC32"]
            == checksum(large, "CRC32")
        )
    for key, alg in crcs.items():
        head = s.dst.head_object(Bucket=s.dst_bucket, Key=key, ChecksumMode="ENABLED")
        kept = head.get(f"Checksum{alg}")
        assert kept == (None if kept_none else checksum(key.encode(), alg)), head


def test_a_listing_of_the_source_store_is_streamed(
    stores: Stores, tmp_path: Path
) -> None:
    """`copy --from` lists the source's store (not the destination's) and
    streams what it lists, once each."""
    s = stores
    keys = [f"p/k{i}" for i in range(7)]
    for key in [*keys, "q/other"]:
        s.src.put_object(Bucket=s.src_bucket, Key=key, Body=key.encode())

    res = s.copy("--from", f"s3://{s.src_bucket}/p/")

    assert res.returncode == 0, res.stderr
    lines = s.report(_job_id(res.stderr), tmp_path)
    assert sorted(line["source"]["key"] for line in lines) == keys
    assert {line["method"] for line in lines} == {"stream"}
    listed = s.dst.list_objects_v2(Bucket=s.dst_bucket).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == keys
    # verify reads each source on its own store, with the job's profiles
    checked = s.cli("verify", _job_id(res.stderr))
    assert checked.returncode == 0, checked.stderr
    assert f"verified {len(keys)} copies: {len(keys)} match" in checked.stdout


@pytest.fixture
def from_localstack(
    moto: S3Server,
    localstack: S3Server,
    cli_for: Callable[[S3Server], Cli],
    tmp_path: Path,
) -> Stores:
    """LocalStack's objects streamed to moto: LocalStack gives a multipart
    upload made with CRC64NVME a FULL_OBJECT checksum, as AWS does (and gives
    every object uploaded without a checksum since 2025); moto's multipart
    checksums are not of the object."""
    return Stores(cli_for(localstack), localstack, moto, tmp_path)


def test_a_large_source_read_wrong_fails_by_its_whole_object_crc(
    from_localstack: Stores, tmp_path: Path
) -> None:
    """A byte flipped in one part's ranged GET passes that part's MD5 (made
    of the bytes read, and kept by the destination as sent), but not the
    source's FULL_OBJECT CRC64NVME, combined from the parts' CRCs: the task
    fails ChecksumMismatch, the upload is aborted, nothing is written.  Read
    right, the same object streams and keeps its algorithm."""
    s = from_localstack
    alg = "CRC64NVME"
    parts = [bytes([i + 1]) * (5 * MiB) for i in range(2)] + [b"tail" * 1000]
    up = s.src.create_multipart_upload(
        Bucket=s.src_bucket, Key="big.bin", ChecksumAlgorithm=alg
    )
    done = []
    for n, body in enumerate(parts, 1):
        value = checksum(body, alg)
        answer = s.src.upload_part(
            Bucket=s.src_bucket,
            Key="big.bin",
            UploadId=up["UploadId"],
            PartNumber=n,
            Body=body,
            ChecksumAlgorithm=alg,
            ChecksumCRC64NVME=value,
        )
        done.append({"PartNumber": n, "ETag": answer["ETag"], f"Checksum{alg}": value})
    s.src.complete_multipart_upload(
        Bucket=s.src_bucket,
        Key="big.bin",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": done},
    )
    head = s.src.head_object(Bucket=s.src_bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head[f"Checksum{alg}"] == checksum(b"".join(parts), alg)
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["big.bin"])
    sizes = ("--part-size", "5MiB", "--multipart-threshold", "5MiB")

    def flip(req: Request) -> Rewrite | None:
        ranged = (req.header("range") or "").startswith(f"bytes={5 * MiB}-")
        if req.method == "GET" and req.key == "big.bin" and ranged:
            return Rewrite(lambda body: body[:9] + bytes([body[9] ^ 1]) + body[10:])
        return None

    with FaultProxy(s.src_server, flip) as proxy:
        s.point_source_at(proxy.endpoint)
        res = s.copy(manifest, *sizes, "--max-attempts", "2")
        assert proxy.faults, "the part was not read through the proxy"

    assert res.returncode == 1, res.stderr
    (line,) = s.report(_job_id(res.stderr), tmp_path)
    assert line["status"] == "failed"
    assert line["error_code"] == "ChecksumMismatch", line
    assert alg in line["error_message"]
    assert s.dst.list_objects_v2(Bucket=s.dst_bucket).get("Contents", []) == []
    assert s.open_uploads() == []

    # read right: once the destination has answered a part's CRC (it checks
    # the CRCs it is sent), the later parts go without their MD5
    md5s: list[bool] = []

    def note(req: Request) -> None:
        if req.method == "PUT" and req.query.get("partNumber"):
            md5s.append(req.header("content-md5") is not None)

    with FaultProxy(s.dst_server, note) as proxy:
        _profiles(s.config, s.src_server.endpoint, proxy.endpoint)
        res = s.copy(manifest, *sizes, "--part-concurrency", "1")
    assert res.returncode == 0, res.stderr
    (line,) = s.report(_job_id(res.stderr), tmp_path)
    assert line["status"] == "succeeded", line
    assert md5s == [True, False, False]
    got = s.dst.get_object(Bucket=s.dst_bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)
    assert f"Checksum{alg}" in got


@pytest.fixture
def to_rclone(
    moto: S3Server,
    rclone: S3Server,
    cli_for: Callable[[S3Server], Cli],
    tmp_path: Path,
) -> Stores:
    """moto's objects streamed to `rclone serve s3` (its own keys), a store
    with no tagging that keeps no checksums."""
    return Stores(cli_for(moto), moto, rclone, tmp_path, (ACCESS_KEY, SECRET_KEY))


def test_objects_stream_to_rclone_serve_s3(to_rclone: Stores, tmp_path: Path) -> None:
    """A small object and a large one in parts (its source's whole CRC32
    carried to a FULL_OBJECT upload) reach `rclone serve s3` byte for byte;
    the run learns the store keeps no checksums and checks by MD5 and size;
    no upload is left open."""
    s = to_rclone
    large = bytes(range(256)) * (12 * MiB // 256) + b"tail"
    s.src.put_object(Bucket=s.src_bucket, Key="big.bin", Body=large)
    s.src.put_object(Bucket=s.src_bucket, Key="small.txt", Body=b"small")
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["big.bin", "small.txt"])

    res = s.copy(manifest, "--part-size", "5MiB", "--no-preserve-tags")

    assert res.returncode == 0, res.stderr
    lines = s.report(_job_id(res.stderr), tmp_path)
    assert {line["status"] for line in lines} == {"succeeded"}
    assert {line["method"] for line in lines} == {"stream"}
    for key, body in (("big.bin", large), ("small.txt", b"small")):
        assert s.dst.get_object(Bucket=s.dst_bucket, Key=key)["Body"].read() == body
    quirks = [e for e in _events(res.stderr) if e["event"] == "store_quirks"]
    assert any("checksum" in " ".join(e["ignores"]) for e in quirks), quirks
    assert s.open_uploads() == []


def test_a_byte_changed_on_the_way_fails_the_copy(
    stores: Stores, tmp_path: Path
) -> None:
    """A source body altered in transit (one byte flipped by a proxy) is
    caught by its MD5: the task fails ChecksumMismatch after its attempts,
    and nothing is written that could pass for the copy."""
    s = stores
    s.src.put_object(Bucket=s.src_bucket, Key="x.bin", Body=b"precious bytes")

    def flip(req: Request) -> Rewrite | None:
        if req.method == "GET" and req.key == "x.bin" and not req.query:
            return Rewrite(lambda body: body[:3] + bytes([body[3] ^ 1]) + body[4:])
        return None

    with FaultProxy(s.src_server, flip) as proxy:
        s.point_source_at(proxy.endpoint)
        manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["x.bin"])
        res = s.copy(manifest, "--max-attempts", "2")

    assert res.returncode == 1, res.stderr
    (line,) = s.report(_job_id(res.stderr), tmp_path)
    assert line["status"] == "failed"
    assert line["error_code"] == "ChecksumMismatch", line
    listed = s.dst.list_objects_v2(Bucket=s.dst_bucket).get("Contents", [])
    assert listed == []


def test_a_killed_large_stream_resumes_with_the_parts_missing(
    stores: Stores, tmp_path: Path
) -> None:
    """kill -9 in the middle of a large streamed object; `resume` sends only
    the parts not recorded, completes the one upload, and leaves none open."""
    s = stores
    body = b"".join(bytes([i]) * MiB for i in range(40))  # 8 parts of 5 MiB
    s.src.put_object(Bucket=s.src_bucket, Key="huge.bin", Body=body)
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["huge.bin"])
    slow_after = 3

    def slow(req: Request) -> Any:
        from tests.faultproxy import Delay

        part = int(req.query.get("partNumber", "0") or 0)
        if req.method == "PUT" and part > slow_after:
            return Delay(60)
        return None

    with FaultProxy(s.dst_server, slow) as proxy:
        _profiles(s.config, s.src_server.endpoint, proxy.endpoint)
        proc = s.cli.popen(
            "copy",
            manifest,
            "--to",
            f"s3://{s.dst_bucket}/",
            "--profile",
            "dst",
            "--source-profile",
            "src",
            "--part-size",
            "5MiB",
            "--part-concurrency",
            "2",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and s.cli.db_count("running") == 0:
            time.sleep(0.2)
        while time.monotonic() < deadline and s.cli.parts_recorded() < slow_after:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        sent_before = proxy.requests["UploadPart"]
    recorded = s.cli.parts_recorded()
    assert recorded >= slow_after

    _profiles(s.config, s.src_server.endpoint, s.dst_server.endpoint)
    with FaultProxy(s.dst_server) as counting:
        _profiles(s.config, s.src_server.endpoint, counting.endpoint)
        job_id = s.cli.only_job()
        res = s.cli("resume", job_id, "--log-format", "json")
        resent = counting.requests["UploadPart"]

    assert res.returncode == 0, res.stderr
    assert sent_before >= slow_after
    assert resent == 8 - recorded
    got = s.dst.get_object(Bucket=s.dst_bucket, Key="huge.bin")["Body"].read()
    assert got == body
    assert s.open_uploads() == []
    (line,) = s.report(job_id, tmp_path)
    assert line["status"] == "succeeded"
    assert line["method"] == "stream"


def test_a_stream_killed_before_its_complete_resumes_on_a_store_without_checksums(
    to_rgw: Stores, tmp_path: Path
) -> None:
    """kill -9 once every part is sent, before the upload is completed, to a
    store that keeps no checksums (Ceph RGW).  The resumed run sends no part,
    so the parts as ListParts gives them show the store keeps no checksum:
    the copy counts, checked by its ETag and size, at the first attempt (it
    used to fail VerificationFailed for the CRC32 it carried)."""
    s = to_rgw
    body = b"".join(bytes([i]) * MiB for i in range(15))  # 3 parts of 5 MiB
    s.src.put_object(Bucket=s.src_bucket, Key="parts.bin", Body=body)
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["parts.bin"])

    def hold_complete(req: Request) -> Any:
        from tests.faultproxy import Delay

        if req.method == "POST" and "uploadId" in req.query:
            return Delay(60)
        return None

    with FaultProxy(s.dst_server, hold_complete) as proxy:
        _profiles(s.config, s.src_server.endpoint, proxy.endpoint, s.dst_keys)
        proc = s.cli.popen(
            *("copy", manifest, "--to", f"s3://{s.dst_bucket}/"),
            *("--profile", "dst", "--source-profile", "src"),
            *("--part-size", "5MiB", "--part-concurrency", "2"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and s.cli.parts_recorded() < 3:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert s.cli.parts_recorded() == 3

    with FaultProxy(s.dst_server) as counting:
        _profiles(s.config, s.src_server.endpoint, counting.endpoint, s.dst_keys)
        job_id = s.cli.only_job()
        res = s.cli("resume", job_id, "--log-format", "json")
        resent = counting.requests["UploadPart"]

    assert res.returncode == 0, res.stderr
    assert resent == 0
    got = s.dst.get_object(Bucket=s.dst_bucket, Key="parts.bin")["Body"].read()
    assert got == body
    assert s.open_uploads() == []
    (line,) = s.report(job_id, tmp_path)
    assert line["status"] == "succeeded", line
    assert line["attempts"] == 1, line


def test_a_move_between_stores_deletes_each_source_once_copied(
    stores: Stores, tmp_path: Path
) -> None:
    """`move` across stores: every object reaches the destination, and only
    then is its source (on the other store) deleted."""
    s = stores
    keys = ["m/a", "m/b", "m/c"]
    for key in keys:
        s.src.put_object(Bucket=s.src_bucket, Key=key, Body=key.encode() * 100)
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, keys)

    res = s.copy(manifest, command="move")

    assert res.returncode == 0, res.stderr
    for key in keys:
        got = s.dst.get_object(Bucket=s.dst_bucket, Key=key)["Body"].read()
        assert got == key.encode() * 100
    assert s.src.list_objects_v2(Bucket=s.src_bucket).get("KeyCount", 0) == 0
    lines = s.report(_job_id(res.stderr), tmp_path)
    assert {line["method"] for line in lines} == {"stream"}


def test_server_transfer_across_stores_is_refused_before_any_copy(
    stores: Stores, tmp_path: Path
) -> None:
    """`--transfer server` with the sources on another service cannot work:
    the run refuses to start, saying why, and copies nothing."""
    s = stores
    s.src.put_object(Bucket=s.src_bucket, Key="k", Body=b"v")
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["k"])

    res = s.copy(manifest, "--transfer", "server")

    assert res.returncode == 3, res.stderr
    assert "--transfer server" in res.stderr
    assert "Traceback" not in res.stderr
    assert s.dst.list_objects_v2(Bucket=s.dst_bucket).get("KeyCount", 0) == 0


def test_the_version_named_is_the_version_streamed(
    stores: Stores, tmp_path: Path
) -> None:
    """A manifest row naming an older version of a key streams that
    version's bytes, and the report names it."""
    s = stores
    bucket = s.src_server.new_bucket(versioned=True)
    old = s.src.put_object(Bucket=bucket, Key="v.txt", Body=b"old bytes")
    s.src.put_object(Bucket=bucket, Key="v.txt", Body=b"new bytes, longer")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{bucket},v.txt,{old['VersionId']}\n")

    res = s.copy(str(manifest))

    assert res.returncode == 0, res.stderr
    got = s.dst.get_object(Bucket=s.dst_bucket, Key="v.txt")["Body"].read()
    assert got == b"old bytes"
    (line,) = s.report(_job_id(res.stderr), tmp_path)
    assert line["source"]["version_id"] == old["VersionId"], line


def _multipart_source(s: Stores, key: str, parts: list[bytes]) -> str:
    up = s.src.create_multipart_upload(Bucket=s.src_bucket, Key=key)
    done = []
    for n, body in enumerate(parts, 1):
        answer = s.src.upload_part(
            Bucket=s.src_bucket,
            Key=key,
            UploadId=up["UploadId"],
            PartNumber=n,
            Body=body,
        )
        done.append({"PartNumber": n, "ETag": answer["ETag"]})
    s.src.complete_multipart_upload(
        Bucket=s.src_bucket,
        Key=key,
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": done},
    )
    return str(s.src.head_object(Bucket=s.src_bucket, Key=key)["ETag"])


def test_a_multipart_source_streamed_in_its_layout_keeps_its_etag(
    stores: Stores, tmp_path: Path
) -> None:
    """--match-source-parts streams a multipart source part for part: the
    copy's ETag is the source's, and a byte changed in a ranged read (so the
    parts no longer make that ETag) fails the copy instead."""
    s = stores
    parts = [bytes([n]) * (5 * MiB) for n in (1, 2)] + [b"last part"]
    src_etag = _multipart_source(s, "mp.bin", parts)
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["mp.bin"])

    res = s.copy(manifest, "--match-source-parts", "--part-size", "5MiB")

    assert res.returncode == 0, res.stderr
    head = s.dst.head_object(Bucket=s.dst_bucket, Key="mp.bin")
    assert head["ETag"] == src_etag
    assert s.dst.get_object(Bucket=s.dst_bucket, Key="mp.bin")["Body"].read() == (
        b"".join(parts)
    )

    def flip(req: Request) -> Rewrite | None:
        ranged = req.header("range") is not None
        if req.method == "GET" and req.key == "mp.bin" and ranged:
            return Rewrite(lambda body: bytes([body[0] ^ 1]) + body[1:])
        return None

    s.dst.delete_object(Bucket=s.dst_bucket, Key="mp.bin")
    with FaultProxy(s.src_server, flip) as proxy:
        s.point_source_at(proxy.endpoint)
        again = s.copy(
            manifest,
            "--match-source-parts",
            "--part-size",
            "5MiB",
            "--max-attempts",
            "2",
        )

    assert again.returncode == 1, again.stderr
    (line,) = s.report(_job_id(again.stderr), tmp_path)
    assert line["error_code"] == "ChecksumMismatch", line
    assert s.dst.list_objects_v2(Bucket=s.dst_bucket).get("KeyCount", 0) == 0
    assert s.open_uploads() == []


def test_objects_already_on_the_other_store_are_skipped(
    stores: Stores, tmp_path: Path
) -> None:
    """--skip-existing same-etag across stores: a second copy of the same
    objects streams nothing and reports them skipped (DestinationExists)."""
    s = stores
    for key in ("s/a", "s/b"):
        s.src.put_object(Bucket=s.src_bucket, Key=key, Body=key.encode())
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, ["s/a", "s/b"])
    assert s.copy(manifest).returncode == 0

    again = s.copy(manifest, "--skip-existing", "same-etag", "--restart")

    assert again.returncode == 0, again.stderr
    lines = s.report(_job_id(again.stderr), tmp_path)
    assert {line["error_code"] for line in lines} == {"DestinationExists"}


def test_listed_objects_are_read_once_and_one_changed_since_is_read_as_it_is(
    stores: Stores, tmp_path: Path
) -> None:
    """A listing gives each object's size and ETag: a small listed object is
    read with one GET pinned to that ETag and no HEAD.  One overwritten
    after the listing (another size, another ETag) fails its pin, is HEADed
    and streamed as it is now, and its result records what was copied."""
    s = stores
    for key in ("l/a", "l/b", "l/c"):
        s.src.put_object(Bucket=s.src_bucket, Key=key, Body=key.encode())
    submitted = s.copy("--from", f"s3://{s.src_bucket}/l/", command="submit")
    assert submitted.returncode == 0, submitted.stderr
    job = _job_id(submitted.stderr)
    now = b"overwritten after the listing, and longer"
    s.src.put_object(Bucket=s.src_bucket, Key="l/b", Body=now)

    with FaultProxy(s.src_server) as proxy:
        s.point_source_at(proxy.endpoint)
        res = s.cli("run", job, "--log-format", "json")

    assert res.returncode == 0, res.stderr
    # (the run's preflight HEADs the first source, l/a, once: not its copy)
    assert [proxy.seen[("HeadObject", k)] for k in ("l/b", "l/c")] == [1, 0]
    assert [proxy.seen[("GetObject", k)] for k in ("l/a", "l/b", "l/c")] == [1, 2, 1]
    body = s.dst.get_object(Bucket=s.dst_bucket, Key="l/b")["Body"].read()
    assert body == now
    lines = {line["source"]["key"]: line for line in s.report(job, tmp_path)}
    assert lines["l/b"]["bytes"] == len(now)
    assert lines["l/a"]["bytes"] == len(b"l/a")
    assert {line["status"] for line in lines.values()} == {"succeeded"}


def test_an_inventory_on_the_source_store_is_streamed_with_the_jobs_options(
    stores: Stores, tmp_path: Path
) -> None:
    """An S3 Inventory report kept on the source's store is read there; its
    objects are streamed under a key template, with the destination's own
    encryption, storage class and replaced metadata, and --metrics-textfile
    counts the bytes streamed."""
    import gzip
    import hashlib

    s = stores
    bodies = {f"inv/{n}.txt": f"inventory object {n}".encode() for n in range(3)}
    for key, body in bodies.items():
        s.src.put_object(Bucket=s.src_bucket, Key=key, Body=body)
    data_key = "inventory/data/part-0.csv.gz"
    rows = "".join(f'"{s.src_bucket}","{k}"\n' for k in bodies).encode()
    data = gzip.compress(rows)
    s.src.put_object(Bucket=s.src_bucket, Key=data_key, Body=data)
    report = {
        "sourceBucket": s.src_bucket,
        "destinationBucket": f"arn:aws:s3:::{s.src_bucket}",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key",
        "files": [
            {
                "key": data_key,
                "size": len(data),
                "MD5checksum": hashlib.md5(data).hexdigest(),
            }
        ],
    }
    manifest_key = "inventory/2026-12-07T01-00Z/manifest.json"
    s.src.put_object(
        Bucket=s.src_bucket, Key=manifest_key, Body=json.dumps(report).encode()
    )
    metrics = tmp_path / "bulkcopy.prom"

    res = s.copy(
        f"s3://{s.src_bucket}/{manifest_key}",
        "--key-template",
        "moved/{basename}",
        "--sse",
        "AES256",
        "--storage-class",
        "STANDARD_IA",
        "--metadata-directive",
        "REPLACE",
        "--metadata",
        "origin=inventory",
        "--content-type",
        "text/plain",
        "--metrics-textfile",
        str(metrics),
    )

    assert res.returncode == 0, res.stderr
    for key, body in bodies.items():
        dst_key = "moved/" + key.rsplit("/", 1)[1]
        got = s.dst.get_object(Bucket=s.dst_bucket, Key=dst_key)
        assert got["Body"].read() == body
        assert got["ServerSideEncryption"] == "AES256"
        assert got["StorageClass"] == "STANDARD_IA"
        assert got["Metadata"] == {"origin": "inventory"}
        assert got["ContentType"] == "text/plain"
    job = _job_id(res.stderr)
    assert {line["method"] for line in s.report(job, tmp_path)} == {"stream"}
    streamed = sum(len(b) for b in bodies.values())
    text = metrics.read_text()
    assert f'bulkcopy_bytes_copied_total{{job="{job}"}} {float(streamed)}' in text


def test_a_stream_of_missing_sources_stops_at_the_failure_threshold(
    stores: Stores, tmp_path: Path
) -> None:
    """Sources missing on the other store fail their tasks, and a burst of
    them gives up on the job (--fail-burst) with the rest left for a
    resume."""
    s = stores
    keys = [f"gone/{n}" for n in range(12)]
    manifest = _manifest(tmp_path / "m.csv", s.src_bucket, keys)

    res = s.copy(manifest, "--fail-burst", "3", "--concurrency", "1")

    assert res.returncode == 1, res.stderr
    events = _events(res.stderr)
    assert any(e["event"] == "job_failing" for e in events), events
    failed = s.cli.db_count("failed")
    assert 3 <= failed < len(keys)
    assert s.cli.db_count("pending") == len(keys) - failed
