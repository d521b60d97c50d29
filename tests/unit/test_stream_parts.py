"""The pure pieces of streamed copies: which transfer a job gets, the byte
budget, the digests sent with each body and the checks made on them, the
source client's settings stored with the job."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum
from hypothesis import given
from hypothesis import strategies as st

from engine.cli import main
from engine.copy.budget import ByteBudget
from engine.copy.request import Requests
from engine.copy.stream import (
    check_answer,
    check_body,
    check_parts,
    checksum_args,
    checksums_unanswered,
    complete_args,
    learn_answer,
    resumed_algorithm,
    stream_algorithm,
    whole_crc,
    with_md5,
)
from engine.domain.digests import CRC_BYTES, checksum, combined, digest
from engine.domain.errors import JobCannotStart, S3Error, UsageError
from engine.domain.models import PartRecord
from engine.domain.options import ObjectOptions
from engine.domain.plan import MiB, stream_in_parts
from engine.domain.spec import ClientSettings, CopyOptions, JobSpec
from engine.domain.transfer import SERVER, STREAM, Side, choose, same_service
from engine.s3.quirks import Quirks
from engine.store import Repository

AWS = "https://s3.us-east-1.amazonaws.com"


# -- which transfer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "source", "want"),
    [
        ("auto", None, SERVER),  # no source client: today's copies
        ("stream", None, STREAM),  # asked for, on one service
        ("auto", Side(AWS, "AKIA1"), SERVER),  # same endpoint and key
        ("auto", Side(AWS + "/", "AKIA1"), SERVER),  # spelled otherwise
        ("auto", Side("https://S3.us-east-1.amazonaws.com:443", "AKIA1"), SERVER),
        ("auto", Side(AWS, "AKIA2"), STREAM),  # another identity
        ("auto", Side("http://ceph:7480", "AKIA1"), STREAM),  # another service
        ("auto", Side(AWS, None), STREAM),  # a key it cannot tell
        ("server", Side(AWS, "AKIA2"), SERVER),  # same service: cross-account
        ("stream", Side(AWS, "AKIA1"), STREAM),
    ],
)
def test_the_transfer_follows_the_two_clients(
    mode: str, source: Side | None, want: str
) -> None:
    """auto copies server-side only when the source's client is the
    destination's endpoint and key; the user's choice wins where it can work."""
    assert choose(mode, source, Side(AWS, "AKIA1")) == want


def test_server_transfer_across_services_cannot_start() -> None:
    """--transfer server with the sources on another endpoint is refused,
    saying what to use instead."""
    with pytest.raises(JobCannotStart, match="--transfer stream"):
        choose("server", Side("http://ceph:7480", "K"), Side(AWS, "K"))
    assert not same_service(Side("http://a:1", "K"), Side("http://a:2", "K"))


def test_the_transfer_mode_is_checked() -> None:
    with pytest.raises(UsageError, match="--transfer"):
        CopyOptions(transfer="teleport").validate()


def test_streams_go_part_by_part_above_one_part() -> None:
    """A streamed body is held whole while it is sent: anything over one part
    (16 MiB unless --part-size says) goes part by part, whatever the
    multipart threshold."""
    threshold = 5 * 1024 * MiB
    assert not stream_in_parts(16 * MiB, threshold, None)
    assert stream_in_parts(16 * MiB + 1, threshold, None)
    assert stream_in_parts(6 * MiB, threshold, 5 * MiB)
    assert stream_in_parts(9 * MiB, 8 * MiB, None)


# -- the byte budget -----------------------------------------------------------------


def test_the_budget_holds_bytes_first_come_first_served() -> None:
    """Bodies wait until they fit, in the order they asked; one larger than
    the whole budget gets in alone; the peak never passes the limit."""

    async def go() -> tuple[list[str], int]:
        budget = ByteBudget(10)
        order: list[str] = []
        release = asyncio.Event()

        async def hold(name: str, n: int) -> None:
            async with budget.take(n):
                order.append(name)
                await release.wait()

        first = asyncio.create_task(hold("a6", 6))
        await asyncio.sleep(0)
        waiting = [
            asyncio.create_task(hold("b6", 6)),
            asyncio.create_task(hold("c3", 3)),  # fits, but b6 asked first
        ]
        await asyncio.sleep(0.01)
        assert order == ["a6"]
        release.set()
        await asyncio.gather(first, *waiting)
        huge = ByteBudget(4)
        async with huge.take(9):
            order.append("alone")
        return order, budget.peak

    order, peak = asyncio.run(go())
    assert order == ["a6", "b6", "c3", "alone"]
    assert peak <= 10


def test_a_waiter_cancelled_gives_its_turn_away() -> None:
    """A copy cancelled while it waits for bytes does not block those after it."""

    async def go() -> int:
        budget = ByteBudget(4)
        async with budget.take(4):
            stuck = asyncio.create_task(_take(budget, 4))
            after = asyncio.create_task(_take(budget, 1))
            await asyncio.sleep(0.01)
            stuck.cancel()
        await after
        return budget.used

    assert asyncio.run(go()) == 0


async def _take(budget: ByteBudget, n: int) -> None:
    async with budget.take(n):
        await asyncio.sleep(0)


# -- digests and checks --------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_digests_are_what_botocore_would_send(body: bytes) -> None:
    """The MD5 and each checksum are S3's values (botocore's own
    implementations agree), so botocore sends them as they are."""
    md5 = hashlib.md5(body).digest()
    sums = digest(body, "CRC32")
    assert sums.send_args()["ContentMD5"] == base64.b64encode(md5).decode()
    assert sums.etag == f'"{md5.hex()}"'
    for alg, ours in (("CRC32", Crc32Checksum), ("SHA1", Sha1Checksum)):
        theirs = ours()
        theirs.update(body)
        assert digest(body, alg).checksum == theirs.b64digest()
    sha = Sha256Checksum()
    sha.update(body)
    assert digest(body, "SHA256").checksum == sha.b64digest()
    assert (
        sums.send_args()["ChecksumCRC32"]
        == base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    )


# S3's check values of "123456789", as botocore's CRT checksums give them
CHECK_VALUES = {
    "CRC32": 0xCBF43926,
    "CRC32C": 0xE3069283,
    "CRC64NVME": 0xAE8B14860A799888,
}


@pytest.mark.parametrize("alg", sorted(CHECK_VALUES))
def test_every_crc_s3_offers_is_computed(alg: str) -> None:
    """CRC32C and CRC64NVME too (without the AWS CRT): the catalogue's check
    value, sent as S3 writes it (base64 of the big-endian value)."""
    sums = digest(b"123456789", alg)
    want = CHECK_VALUES[alg].to_bytes(CRC_BYTES[alg], "big")
    assert sums.checksum == base64.b64encode(want).decode()
    assert sums.send_args()[f"Checksum{alg}"] == sums.checksum


@given(st.binary(max_size=4096), st.lists(st.integers(0, 4096), max_size=6))
def test_a_crc_of_parts_combines_to_the_whole(body: bytes, cuts: list[int]) -> None:
    """The CRC of a body made from its parts' CRCs and sizes, wherever it
    is cut (empty parts included), is the body's own."""
    edges = sorted({0, len(body), *(min(c, len(body)) for c in cuts)})
    pieces = [body[a:b] for a, b in itertools.pairwise(edges)]
    for alg in CRC_BYTES:
        parts = [(checksum(p, alg), len(p)) for p in pieces]
        assert combined(alg, parts) == checksum(body, alg)
    with pytest.raises(ValueError, match="SHA256"):
        combined("SHA256", [])


def _parts(body: bytes, alg: str, size: int) -> list[PartRecord]:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return [
        PartRecord(n, digest(p, None).etag, len(p), f"Checksum{alg}={checksum(p, alg)}")
        for n, p in enumerate(pieces, 1)
    ]


def test_parts_streamed_must_make_the_sources_whole_crc() -> None:
    """A multipart stream of a source with a FULL_OBJECT CRC: its parts'
    CRCs, combined, must be the source's, else the bytes read are not the
    source's (a part's own MD5 cannot tell: it is of the bytes read)."""
    body = bytes(range(256)) * 40
    whole = checksum(body, "CRC64NVME")
    head = {
        "ETag": '"abc-4"',
        "ContentLength": len(body),
        "ChecksumType": "FULL_OBJECT",
    }
    head["ChecksumCRC64NVME"] = whole
    parts = _parts(body, "CRC64NVME", 3000)
    assert check_parts(head, "CRC64NVME", parts) == "CRC64NVME"
    bad = bytearray(body)
    bad[5000] ^= 1
    with pytest.raises(S3Error, match="CRC64NVME") as err:
        check_parts(head, "CRC64NVME", _parts(bytes(bad), "CRC64NVME", 3000))
    assert err.value.code == "ChecksumMismatch"
    assert err.value.disposition.name == "RETRY"
    # what it cannot check, it says so (None) and lets pass
    composite = {**head, "ChecksumType": "COMPOSITE"}
    assert check_parts(composite, "CRC64NVME", parts) is None
    unknown = [*parts[:-1], PartRecord(parts[-1].number, "e", parts[-1].size)]
    assert check_parts(head, "CRC64NVME", unknown) is None  # recorded by an old run
    assert check_parts(head, "SHA256", parts) is None
    assert check_parts(head, None, parts) is None


def _head(body: bytes, **more: Any) -> dict[str, Any]:
    return {
        "ETag": f'"{hashlib.md5(body).hexdigest()}"',
        "ContentLength": len(body),
        **more,
    }


def test_a_body_unlike_its_source_is_a_checksum_mismatch() -> None:
    """The body read must have the source's MD5 ETag, and its whole-object
    checksum; a mismatch is retried (ChecksumMismatch), never a success."""
    body = b"the source's bytes"
    crc = digest(body, "CRC32").checksum
    head = _head(body, ChecksumCRC32=crc)
    assert check_body(head, digest(body, "CRC32"), "GetObject") == "MD5 and CRC32"
    with pytest.raises(S3Error) as err:
        check_body(head, digest(b"the source's bytez", "CRC32"), "GetObject")
    assert err.value.code == "ChecksumMismatch"
    assert err.value.disposition.name == "RETRY"
    multipart = {"ETag": '"abc-3"', "ContentLength": len(body), "ChecksumCRC32": crc}
    with pytest.raises(S3Error, match="CRC32"):  # the ETag cannot tell; the CRC can
        check_body(
            {**multipart, "ChecksumType": "FULL_OBJECT"},
            digest(b"other", "CRC32"),
            "GetObject",
        )
    assert check_body({"ETag": '"abc-3"'}, digest(b"x", None), "GetObject") == "size"


def test_the_destination_must_answer_with_what_was_sent() -> None:
    """The destination's ETag is our MD5 (unless SSE-KMS/SSE-C makes it
    something else) and any checksum it answers is ours."""
    sums = digest(b"sent", "SHA256")
    check_answer({"ETag": sums.etag}, sums, "PutObject", etag_is_md5=True)
    check_answer({"ETag": '"kms-etag"'}, sums, "PutObject", etag_is_md5=False)
    with pytest.raises(S3Error, match="ETag"):
        check_answer({"ETag": '"00ff"'}, sums, "PutObject", etag_is_md5=True)
    with pytest.raises(S3Error, match="SHA256"):
        check_answer(
            {"ETag": sums.etag, "ChecksumSHA256": "AAAA"},
            sums,
            "UploadPart",
            etag_is_md5=True,
        )


def test_an_upload_carries_the_sources_whole_crc() -> None:
    """A multipart stream of a source with a FULL_OBJECT CRC is created
    FULL_OBJECT and completed with that value (the store checks it, and the
    copy's checksum is the source's); any other is created as before."""
    full = {"ChecksumCRC32": "AAAAAA==", "ChecksumType": "FULL_OBJECT"}
    whole = whole_crc(full, "CRC32")
    assert whole == "AAAAAA=="
    create = checksum_args({"ChecksumAlgorithm": "SHA1"}, "CRC32", whole)
    assert create == {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    assert complete_args("CRC32", whole) == {
        "ChecksumType": "FULL_OBJECT",
        "ChecksumCRC32": "AAAAAA==",
    }
    composite = {**full, "ChecksumType": "COMPOSITE"}
    assert whole_crc(composite, "CRC32") is None
    assert (
        whole_crc({"ChecksumSHA256": "x", "ChecksumType": "FULL_OBJECT"}, "SHA256")
        is None
    )
    assert checksum_args({}, "CRC32") == {"ChecksumAlgorithm": "CRC32"}
    assert complete_args("CRC32", None) == {}


def test_a_resumed_upload_keeps_the_algorithm_its_parts_went_with() -> None:
    """An upload begun by an earlier run (an older bulkcopy that sent no
    CRC64NVME, or another --checksum-algorithm) takes its parts' algorithm,
    which the store holds it to; with no part recorded, the copy's own."""
    crc = [PartRecord(1, '"e"', 5, "ChecksumCRC32=AAAAAA==")]
    assert resumed_algorithm("CRC64NVME", crc) == "CRC32"
    assert resumed_algorithm("CRC64NVME", [PartRecord(1, '"e"', 5)]) is None
    assert resumed_algorithm("CRC64NVME", []) == "CRC64NVME"


def test_a_crc_stands_in_for_the_md5_only_where_both_ends_check_it() -> None:
    """The MD5 (~0.6 GB/s) is left out only when the source has a
    whole-object CRC in the algorithm sent (the body read is checked by it)
    and the store has answered a checksum this run (it checks what it is
    sent), and --content-md5 does not ask for it."""
    full = {"ChecksumCRC64NVME": "x", "ChecksumType": "FULL_OBJECT", "ETag": '"a-2"'}
    assert not with_md5(full, "CRC64NVME", answers_checksums=True, content_md5=False)
    assert with_md5(full, "CRC64NVME", answers_checksums=None, content_md5=False)
    assert with_md5(full, "CRC64NVME", answers_checksums=False, content_md5=False)
    assert with_md5(full, "CRC64NVME", answers_checksums=True, content_md5=True)
    assert with_md5(full, "SHA256", answers_checksums=True, content_md5=False)
    composite = {**full, "ChecksumType": "COMPOSITE"}
    assert with_md5(composite, "CRC64NVME", answers_checksums=True, content_md5=False)
    assert with_md5({}, "CRC32", answers_checksums=True, content_md5=False)


def test_a_body_sent_without_its_md5_is_still_checked_at_the_destination() -> None:
    """Sent with its CRC alone, a body counts when the store answers that
    CRC; a store that answers none is checked by its ETag, the MD5 made then
    from the body at hand; where the ETag cannot tell (SSE-KMS), the copy is
    not counted and the store is learned not to answer checksums, so the
    retry goes with its MD5."""
    body = bytearray(b"streamed bytes")
    sums = digest(body, "CRC64NVME", md5=False)
    assert sums.md5_hex is None
    assert set(sums.send_args()) == {"ChecksumAlgorithm", "ChecksumCRC64NVME"}
    answered = {"ETag": '"anything"', "ChecksumCRC64NVME": sums.checksum}
    check_answer(answered, sums, "PutObject", etag_is_md5=True, body=body)
    md5 = hashlib.md5(body).hexdigest()
    check_answer({"ETag": f'"{md5}"'}, sums, "PutObject", etag_is_md5=True, body=body)
    with pytest.raises(S3Error, match="ETag"):
        check_answer({"ETag": '"00"'}, sums, "PutObject", etag_is_md5=True, body=body)
    with pytest.raises(S3Error, match="neither") as err:
        check_answer({"ETag": '"kms"'}, sums, "PutObject", etag_is_md5=False, body=body)
    assert err.value.code == "ChecksumMismatch"
    with pytest.raises(S3Error, match="neither"):  # no ETag either
        check_answer({}, sums, "PutObject", etag_is_md5=True, body=body)
    quirks = Quirks()
    learn_answer(quirks, answered, sums)
    assert quirks.answers_checksums is True
    learn_answer(quirks, {"ETag": '"kms"'}, sums)
    assert quirks.answers_checksums is False
    learn_answer(quirks, answered, sums)  # one answer without it settles it
    assert quirks.answers_checksums is False


def test_a_stream_carries_the_sources_algorithm() -> None:
    """The job's --checksum-algorithm, else the source's own (bulkcopy
    computes every one S3 offers), else none."""
    plain = Requests()
    assert stream_algorithm(plain, {"ChecksumSHA1": "x"}) == "SHA1"
    assert stream_algorithm(plain, {"ChecksumCRC64NVME": "x"}) == "CRC64NVME"
    assert stream_algorithm(plain, {}) is None
    asked = Requests(ObjectOptions(checksum_algorithm="SHA256"))
    assert stream_algorithm(asked, {"ChecksumCRC32": "x"}) == "SHA256"


# -- the source client, stored with the job ------------------------------------


def test_the_source_client_round_trips_with_the_spec() -> None:
    """A job's source client settings are stored and read back; older jobs
    (none stored) have none."""
    spec = JobSpec(
        source_client=ClientSettings(endpoint_url="http://ceph:7480", profile="onprem"),
        copy=CopyOptions(transfer="stream"),
    )
    again = JobSpec.from_dict(spec.to_dict())
    assert again == spec
    older = spec.to_dict()
    del older["source_client"]
    assert JobSpec.from_dict(older).source_client is None


def test_submit_stores_the_source_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`submit --source-*` keeps the sources' client with the job (no
    secrets), and `--transfer`; without them the job has none."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("src,a\n")
    db = str(tmp_path / "j.db")
    run: Callable[..., int] = lambda *a: _exit(main, list(a))  # noqa: E731
    assert (
        run(
            "submit",
            str(manifest),
            "--to",
            "s3://dst/",
            "--db",
            db,
            "--source-endpoint-url",
            "http://ceph:7480",
            "--source-profile",
            "onprem",
            "--source-addressing-style",
            "path",
            "--transfer",
            "stream",
        )
        == 0
    )
    assert run("submit", str(manifest), "--to", "s3://dst/other/", "--db", db) == 0
    repo = Repository(db)
    try:
        first, second = sorted(repo.list_jobs(), key=lambda j: j.created_at)
    finally:
        repo.close()
    assert first.spec.source_client == ClientSettings(
        endpoint_url="http://ceph:7480", profile="onprem", addressing_style="path"
    )
    assert first.spec.copy.transfer == "stream"
    assert second.spec.source_client is None
    assert second.spec.copy.transfer == "auto"


def _exit(main: Callable[[list[str]], Any], argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_checksums_unanswered_by_the_parts_sent_or_else_as_listed() -> None:
    """Parts sent this run tell by their answers; with none sent (all sent
    by an earlier run), ListParts tells: Ceph RGW lists no checksum, and the
    store is learned to keep none.  LocalStack lists an SSE-C upload's part
    checksums (and then drops them from the object): not the store's gap,
    so its copy still fails.  A new upload with no part sent tells nothing."""
    rgw = [{"PartNumber": 1, "ETag": '"a"', "Size": 5}]
    listed_sums = [{**rgw[0], "ChecksumCRC32": "AAAAAA=="}]
    assert checksums_unanswered("CRC32", 2, 0, None)
    assert not checksums_unanswered("CRC32", 2, 1, None)
    assert checksums_unanswered("CRC32", 0, 0, rgw)
    assert not checksums_unanswered("CRC32", 0, 0, listed_sums)
    assert not checksums_unanswered("CRC32", 0, 0, None)
    assert not checksums_unanswered(None, 2, 0, rgw)
    assert not checksums_unanswered("CRC32", 1, 1, rgw)  # this run's answers lead
