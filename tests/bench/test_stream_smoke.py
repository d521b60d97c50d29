"""The streamed-copy benchmark keeps working: ``bench/stream.py`` copies a few
small objects and one multipart-sized object from one fakes3 to another with
bulkcopy (``--transfer stream``) and rclone, and every run passes its checks.
No timings are asserted.  Also: fakes3's ``--content-etags`` gives seeded
objects the ETag of the bytes GetObject serves, which both tools check."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.fakes3 import FakeS3
from engine.domain.digests import checksum, combined
from tests.bench.run import client_for, run_bench

REPO = Path(__file__).resolve().parents[2]
SMALL, LARGE = 30, 1
MIB = 1024**2
TOOLS = ["bulkcopy", "rclone"]


def test_stream_bench_runs_bulkcopy_and_rclone(tmp_path: Path) -> None:
    proc, result = run_bench(
        "stream.py",
        *("--small-objects", str(SMALL), "--small-size", "64KiB"),
        *("--large-objects", str(LARGE), "--large-size", "20MiB"),
        *("--part-size", "8MiB", "--multipart-threshold", "8MiB"),
        *("--rounds", "1", "--tools", ",".join(TOOLS), "--no-pin"),
        "--checksums",  # as on AWS: bulkcopy checks by CRC64NVME, without MD5
        out=tmp_path / "stream.json",
    )
    assert proc.stdout.startswith("command: python bench/stream.py --small-objects")
    assert result["settings"]["pinned"] is None
    assert result["settings"]["checksums"] is True
    assert list(result["workloads"]) == ["small", "large"]
    sizes = {"small": (SMALL, 64 * 1024), "large": (LARGE, 20 * MIB)}
    for workload, (count, size) in sizes.items():
        rows = result["workloads"][workload]
        assert list(rows) == TOOLS
        for tool, row in rows.items():
            assert row["checks_ok"], (workload, tool, row["problems"])
            (run,) = row["runs"]
            assert run["ok"]
            assert run["destination_objects"] == count  # every object, its size
            assert run["bytes_received"] >= count * size
            assert run["source_requests"]["GetObject"] >= count
            dst = run["destination_requests"]
            assert "CopyObject" not in dst
            assert "UploadPartCopy" not in dst
            if workload == "small":
                assert dst["PutObject"] == count
            else:  # 20 MiB in 8 MiB parts: 3 UploadPart
                assert dst["UploadPart"] == 3
                assert dst["CompleteMultipartUpload"] == 1
            assert row["mib_per_s_median"] > 0
            assert row["cpu_s_per_gib_median"] > 0
            assert row["peak_rss_mb_median"] > 0
            assert f"| {tool} " in proc.stdout
        assert rows["bulkcopy"]["compared_with"] == "rclone"
        assert rows["bulkcopy"]["rate_x_rclone"] > 0
        assert rows["rclone"]["rate_x_rclone"] is None
        command = rows["bulkcopy"]["runs"][0]["command"]
        assert command[1:4] == ["-m", "engine", "copy"]
        assert command[command.index("--transfer") + 1] == "stream"
    assert "| tool " in proc.stdout  # the tables


def test_content_etags_match_what_get_serves() -> None:
    """With content_etags, a seeded single-part object's ETag is the MD5 of
    its GetObject body, a seeded multipart one's ends in -N; a PutObject and
    an UploadPart answer the MD5 of the body received."""
    with FakeS3(content_etags=True) as s3:
        s3.seed_prefix("src", "p/", 2, 1000)
        s3.seed_object("src", "mp.bin", 12 * MIB, part_size=5 * MIB)
        s3.create_bucket("dst")
        client = client_for(s3.url)
        got = client.get_object(Bucket="src", Key="p/000001")
        body = got["Body"].read()
        assert body == bytes(1000)
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        head = client.head_object(Bucket="src", Key="mp.bin")
        assert head["ETag"].endswith('-3"')
        data = b"streamed bytes"
        put = client.put_object(Bucket="dst", Key="k", Body=data)
        assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        up = client.create_multipart_upload(Bucket="dst", Key="m")
        part = client.upload_part(
            Bucket="dst", Key="m", UploadId=up["UploadId"], PartNumber=1, Body=data
        )
        assert part["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    with FakeS3() as plain:  # the default: ETags derived, nothing hashed
        plain.seed_prefix("src", "p/", 1, 1000)
        etag = plain.store.bucket("src").get("p/000000").etag
        assert etag != f'"{hashlib.md5(bytes(1000)).hexdigest()}"'


def test_checksums_are_kept_as_s3_keeps_them() -> None:
    """With checksums, a seeded object has the FULL_OBJECT CRC64NVME of the
    zeros it serves (whole GETs and HEADs answer it when asked, ranges do
    not); a body's checksum is answered back and kept; an upload's is made
    from its parts': FULL_OBJECT CRC64NVME combined, COMPOSITE CRC32 -N."""
    size = 3 * MIB + 7
    with FakeS3(content_etags=True, checksums=True) as s3:
        s3.seed_object("src", "big.bin", size)
        s3.create_bucket("dst")
        client = client_for(s3.url)
        head = client.head_object(Bucket="src", Key="big.bin", ChecksumMode="ENABLED")
        assert head["ChecksumCRC64NVME"] == checksum(bytes(size), "CRC64NVME")
        assert head["ChecksumType"] == "FULL_OBJECT"
        assert "ChecksumCRC64NVME" not in client.head_object(
            Bucket="src", Key="big.bin"
        )
        ranged = client.get_object(
            Bucket="src", Key="big.bin", Range="bytes=0-9", ChecksumMode="ENABLED"
        )
        assert "ChecksumCRC64NVME" not in ranged
        data = b"streamed bytes"
        value = checksum(data, "CRC32C")
        put = client.put_object(
            Bucket="dst",
            Key="k",
            Body=data,
            ChecksumAlgorithm="CRC32C",
            ChecksumCRC32C=value,
        )
        assert put["ChecksumCRC32C"] == value
        head = client.head_object(Bucket="dst", Key="k", ChecksumMode="ENABLED")
        assert head["ChecksumCRC32C"] == value
        parts = [b"a" * (5 * MIB), b"tail"]
        for alg, kind in (("CRC64NVME", "FULL_OBJECT"), ("CRC32", "COMPOSITE")):
            up = client.create_multipart_upload(
                Bucket="dst", Key=alg, ChecksumAlgorithm=alg
            )
            listed = []
            for n, body in enumerate(parts, 1):
                sent = {f"Checksum{alg}": checksum(body, alg)}
                answer = client.upload_part(
                    Bucket="dst",
                    Key=alg,
                    UploadId=up["UploadId"],
                    PartNumber=n,
                    Body=body,
                    ChecksumAlgorithm=alg,
                    **sent,
                )
                assert answer[f"Checksum{alg}"] == sent[f"Checksum{alg}"]
                listed.append({"PartNumber": n, "ETag": answer["ETag"], **sent})
            client.complete_multipart_upload(
                Bucket="dst",
                Key=alg,
                UploadId=up["UploadId"],
                MultipartUpload={"Parts": listed},
            )
            head = client.head_object(Bucket="dst", Key=alg, ChecksumMode="ENABLED")
            assert head["ChecksumType"] == kind
            whole = combined(alg, [(checksum(p, alg), len(p)) for p in parts])
            if kind == "FULL_OBJECT":
                assert head[f"Checksum{alg}"] == whole == checksum(b"".join(parts), alg)
            else:
                assert head[f"Checksum{alg}"].endswith("-2")
