"""Job spec files (--spec job.toml) and how `bulkcopy submit` merges them with flags."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from engine.cli import main
from engine.domain.errors import UsageError
from engine.domain.records import JobRecord
from engine.store import Repository
from engine.store.tables import jobs
from engine.usecases.specfile import load_spec_file

WriteManifest = Callable[..., str]
REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(7, 39))  # a 32-byte SSE-C key
KEY_ENV = "BULKCOPY_TEST_SSE_C_KEY"


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty job database per module, to copy from."""
    path = tmp_path_factory.mktemp("migrated") / "db.sqlite"
    Repository(str(path)).close()
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_db: Path) -> str:
    """A fresh job database for each test: a copy of the migrated one (fast)."""
    path = tmp_path / "db.sqlite"
    shutil.copyfile(migrated_db, path)
    return str(path)


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    """The CLI configures structlog globally; put it back for the next test."""
    yield
    structlog.reset_defaults()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def bulkcopy(capsys: pytest.CaptureFixture[str], db_path: str) -> Callable[..., Run]:
    """Run the `bulkcopy` entry point in-process on the test's job database."""

    def run(*args: str) -> Run:
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--db", db_path, "--log-format", "json"])
        out, err = capsys.readouterr()
        return Run(int(exit_info.value.code or 0), out, err)

    return run


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], str]:
    def write(text: str) -> str:
        path = tmp_path / "job.toml"
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def manifest(write_manifest: WriteManifest) -> str:
    return write_manifest("src,photos/a.jpg\n")


def submitted(repo: Repository, run: Run) -> JobRecord:
    """The job a successful submit printed the id of."""
    assert run.code == 0, run.err
    return repo.get_job(run.out.strip())


def assert_usage_error(run: Run, message: str, repo: Repository) -> None:
    """Exit 2, one clear line naming the problem, no traceback, no job."""
    assert run.code == 2
    assert message in run.err
    assert "Traceback" not in run.err
    assert run.out == ""
    assert repo.list_jobs() == []


def key_spellings() -> list[str]:
    return [base64.b64encode(KEY).decode(), KEY.hex(), repr(KEY), KEY.decode("latin-1")]


# -- load_spec_file --------------------------------------------------------------------

FULL_SPEC = """
to = "s3://dst/prefix/"
key_template = "{bucket}/{key}"
strip_prefix = "photos/"
headers = { "x-tenant" = "blue" }

[client]
endpoint_url = "http://localhost:9000"
region = "eu-west-1"
addressing_style = "path"

[copy]
multipart_threshold = "64MiB"
preserve = ["acl"]
verify = true

[object]
storage_class = "STANDARD_IA"
metadata_directive = "REPLACE"
metadata = { owner = "ana" }
tagging_directive = "REPLACE"
tags = { project = "x" }
request_payer = true
retention_period = 3600
"""


def test_spec_file_values_are_read_by_table(write_spec: Callable[[str], str]) -> None:
    """Top-level keys and the [client] [copy] [object] tables come back as dicts."""
    data = load_spec_file(write_spec(FULL_SPEC))
    assert data["to"] == "s3://dst/prefix/"
    assert data["headers"] == {"x-tenant": "blue"}
    assert data["client"]["addressing_style"] == "path"
    assert data["copy"] == {
        "multipart_threshold": "64MiB",
        "preserve": ["acl"],
        "verify": True,
    }
    assert data["object"]["metadata"] == {"owner": "ana"}
    assert data["object"]["retention_period"] == 3600


def test_the_shipped_example_spec_is_valid() -> None:
    """manifests/job.toml, the commented example, loads without complaint."""
    data = load_spec_file(str(REPO_ROOT / "manifests" / "job.toml"))
    assert data["to"].startswith("s3://")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('too = "s3://x"', "unknown option 'too'"),
        ("[object]\nstorage_klass = 'X'", "unknown option 'storage_klass' in [object]"),
        ("[copy]\nstorage_class = 'X'", "unknown option 'storage_class' in [copy]"),
        ("[client]\nendpoint = 'http://x'", "unknown option 'endpoint' in [client]"),
        ("[objects]\nacl = 'private'", "unknown option 'objects'"),
        ("object = 'private'", "[object] must be a table"),
        ("headers = { x-a = 1 }", "headers must be a table of strings"),
        ('headers = "x-a:1"', "headers must be a table of strings"),
        ("to = s3://x", "not valid TOML"),
        ("[object\nacl = 1", "not valid TOML"),
    ],
)
def test_bad_spec_file_is_refused_naming_file_and_key(
    write_spec: Callable[[str], str], text: str, message: str
) -> None:
    """Unknown keys and tables, wrong shapes and bad TOML are named with the file."""
    path = write_spec(text)
    with pytest.raises(UsageError) as info:
        load_spec_file(path)
    assert str(info.value).startswith(f"--spec {path}: ")
    assert message in str(info.value)


def test_missing_spec_file_is_a_usage_error(tmp_path: Path) -> None:
    """A --spec path that does not exist is named with the reason."""
    path = tmp_path / "nope.toml"
    with pytest.raises(UsageError, match="No such file or directory"):
        load_spec_file(str(path))


# -- the CLI: spec file and flags ------------------------------------------------------


def test_spec_values_are_stored_with_the_job(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    write_manifest: WriteManifest,
) -> None:
    """Every table of the spec file lands in the job's stored spec."""
    path = write_manifest("src,photos/a.jpg\n")
    job = submitted(repo, bulkcopy("submit", path, "--spec", write_spec(FULL_SPEC)))
    assert (job.dst_bucket, job.dst_prefix) == ("dst", "prefix/")
    assert job.spec.to_dict()["keys"] == {
        "prefix": "prefix/",
        "strip_prefix": "photos/",
        "template": "{bucket}/{key}",
    }
    assert job.spec.headers == {"x-tenant": "blue"}
    assert job.spec.client.endpoint_url == "http://localhost:9000"
    assert job.spec.copy.multipart_threshold == 64 * 1024**2
    assert job.spec.copy.preserve_acl is True
    assert job.spec.copy.verify is True
    assert job.spec.to_dict()["object"] == {
        "storage_class": "STANDARD_IA",
        "metadata_directive": "REPLACE",
        "metadata": {"owner": "ana"},
        "tagging_directive": "REPLACE",
        "tags": {"project": "x"},
        "request_payer": True,
        "retention_period": 3600,
    }
    (task,) = repo.iter_results(job.id)
    assert task.dst_key == "prefix/src/a.jpg"


def test_flags_win_over_the_spec_file(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """A flag typed on the command line replaces the spec file's value."""
    spec = write_spec(FULL_SPEC)
    run = bulkcopy(
        "submit",
        manifest,
        "--spec",
        spec,
        "--to",
        "s3://other/elsewhere",
        "--storage-class",
        "GLACIER_IR",
        "--key-template",
        "{basename}",
        "--strip-prefix",
        "photos",
        "--multipart-threshold",
        "32MiB",
        "--endpoint-url",
        "http://127.0.0.1:1",
        "--metadata",
        "team=blue",
        "--header",
        "x-tenant:red",
        "--header",
        "x-more:1",
    )
    job = submitted(repo, run)
    assert (job.dst_bucket, job.dst_prefix) == ("other", "elsewhere/")
    assert job.spec.object.storage_class == "GLACIER_IR"
    assert job.spec.object.metadata == {"team": "blue"}
    assert job.spec.object.tags == {"project": "x"}  # not given: the file's
    assert job.spec.keys.template == "{basename}"
    assert job.spec.keys.strip_prefix == "photos"
    assert job.spec.copy.multipart_threshold == 32 * 1024**2
    assert job.spec.client.endpoint_url == "http://127.0.0.1:1"
    assert job.spec.client.region == "eu-west-1"
    assert job.spec.headers == {"x-tenant": "red", "x-more": "1"}


def test_spec_file_alone_sets_the_storage_class(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """Without the flag, the spec file's storage class is the job's."""
    spec = write_spec('to = "s3://dst"\n[object]\nstorage_class = "ONEZONE_IA"\n')
    job = submitted(repo, bulkcopy("submit", manifest, "--spec", spec))
    assert job.spec.to_dict()["object"] == {"storage_class": "ONEZONE_IA"}
    assert (job.dst_bucket, job.dst_prefix) == ("dst", "")


def test_unset_flags_do_not_override_the_spec_file(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """Flags with defaults (booleans, --stat-source) leave the file's values alone."""
    spec = write_spec(
        'to = "s3://dst"\n'
        "[copy]\nstat_source = false\npreserve_tags = false\n"
        "[object]\nrequest_payer = true\nsse = 'aws:kms'\nbucket_key_enabled = true\n"
    )
    job = submitted(repo, bulkcopy("submit", manifest, "--spec", spec))
    assert job.spec.copy.stat_source is False
    assert job.spec.copy.preserve_tags is False
    assert job.spec.object.request_payer is True
    assert job.spec.object.bucket_key_enabled is True


def test_the_shipped_example_spec_submits(
    bulkcopy: Callable[..., Run], repo: Repository, manifest: str
) -> None:
    """`submit --spec manifests/job.toml` works as the README says."""
    spec = str(REPO_ROOT / "manifests" / "job.toml")
    job = submitted(repo, bulkcopy("submit", manifest, "--spec", spec))
    assert job.dst_bucket == "bulkcopy-example-dst"
    assert job.spec.object.storage_class == "STANDARD_IA"


def test_no_bucket_key_flag_is_stored(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """--no-bucket-key-enabled beats the spec file's true and is kept with the job."""
    spec = write_spec(
        'to = "s3://dst"\n[object]\nsse = "aws:kms"\nbucket_key_enabled = true\n'
    )
    job = submitted(
        repo,
        bulkcopy("submit", manifest, "--spec", spec, "--no-bucket-key-enabled"),
    )
    assert job.spec.object.bucket_key_enabled is False


# -- usage errors at the CLI -----------------------------------------------------------


def test_missing_to_is_a_usage_error(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """Without --to on the command line or in the file: exit 2, a clear message."""
    assert_usage_error(
        bulkcopy("submit", manifest),
        "--to is required (on the command line or in --spec)",
        repo,
    )
    spec = write_spec("[object]\nstorage_class = 'STANDARD_IA'\n")
    assert_usage_error(
        bulkcopy("submit", manifest, "--spec", spec), "--to is required", repo
    )


@pytest.mark.parametrize(
    ("args", "spec", "message"),
    [
        (["--tag", "a=1"], "", "--tag needs --tagging-directive REPLACE"),
        (["--metadata", "novalue"], "", "--metadata 'novalue': expected KEY=VALUE"),
        (["--sse-kms-encryption-context", "{x"], "", "is not JSON"),
        (["--sse-kms-key-id", "k"], "", "--sse-kms-key-id needs --sse aws:kms"),
        (["--key-template", "{path}"], "", "unknown field {path}"),
        (["--header", "Authorization:x"], "", "--header Authorization is set by"),
        (["--part-size", "1MiB"], "", "--part-size must be between 5MiB and 5GiB"),
        ([], "[object]\ncontent_type = 'a/b'\n", "--content-type needs"),
        ([], "[object]\nmetadata_directive = 'MOVE'\n", "--metadata-directive must"),
        ([], "[object]\nbogus = 1\n", "unknown option 'bogus' in [object]"),
        ([], "headers = { Host = 'x' }\n", "--header Host is set by bulkcopy"),
        ([], "[copy]\npreserve = ['owner']\n", "--preserve: unknown property"),
    ],
)
def test_invalid_options_exit_2_without_a_job(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
    args: list[str],
    spec: str,
    message: str,
) -> None:
    """A refused option, from a flag or the spec file, exits 2 and writes nothing."""
    spec_args = ["--spec", write_spec(spec)] if spec else []
    run = bulkcopy("submit", manifest, "--to", "s3://dst", *spec_args, *args)
    assert_usage_error(run, message, repo)


@pytest.mark.parametrize("value", ["2031-01-01", "2031-01-01T00:00:00Z"])
def test_toml_date_values_do_not_crash_the_submit(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
    value: str,
) -> None:
    """An unquoted TOML date for a date option is taken, or refused with exit 2."""
    spec = write_spec(
        'to = "s3://dst"\n[object]\nobject_lock_mode = "GOVERNANCE"\n'
        f"object_lock_retain_until_date = {value}\n"
    )
    run = bulkcopy("submit", manifest, "--spec", spec)
    assert run.code in (0, 2)
    if run.code == 2:
        assert "--object-lock-retain-until-date" in run.err


# -- SSE-C keys are read, never stored -------------------------------------------------


def test_sse_c_key_source_is_stored_never_the_key(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    monkeypatch: pytest.MonkeyPatch,
    manifest: str,
) -> None:
    """The job keeps env:NAME; neither the database nor the output holds the key."""
    monkeypatch.setenv(KEY_ENV, base64.b64encode(KEY).decode())
    run = bulkcopy(
        "submit",
        manifest,
        "--to",
        "s3://dst",
        "--sse-c-key",
        f"env:{KEY_ENV}",
        "--source-sse-c-key",
        f"env:{KEY_ENV}",
    )
    job = submitted(repo, run)
    assert job.spec.to_dict()["object"] == {
        "sse_c_key": f"env:{KEY_ENV}",
        "source_sse_c_key": f"env:{KEY_ENV}",
    }
    with repo.engine.connect() as conn:
        stored = conn.execute(sa.select(jobs.c.spec)).scalar_one()
    assert json.loads(stored) == job.spec.to_dict()
    for spelled in key_spellings():
        assert spelled not in stored
        assert spelled not in run.out + run.err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (base64.b64encode(KEY[:16]).decode(), f"the key in ${KEY_ENV} is 16 bytes"),
        (None, f"environment variable {KEY_ENV} is not set"),
    ],
    ids=["16-bytes", "unset"],
)
def test_a_wrong_sse_c_key_fails_the_submit(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    monkeypatch: pytest.MonkeyPatch,
    manifest: str,
    value: str | None,
    message: str,
) -> None:
    """A key of the wrong length, or a missing one, exits 2 before any job exists."""
    if value is not None:
        monkeypatch.setenv(KEY_ENV, value)
    run = bulkcopy(
        "submit", manifest, "--to", "s3://dst", "--sse-c-key", f"env:{KEY_ENV}"
    )
    assert_usage_error(run, f"--sse-c-key: {message}", repo)
    if value is not None:
        assert value not in run.err


def test_a_wrong_source_key_in_the_spec_file_fails_the_submit(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    tmp_path: Path,
    manifest: str,
) -> None:
    """A source key file of the wrong length, named in the spec file, exits 2."""
    key_file = tmp_path / "src.key"
    key_file.write_bytes(base64.b64encode(KEY[:16]) + b"\n")
    spec = write_spec(
        f'to = "s3://dst"\n[object]\nsource_sse_c_key = "file:{key_file}"\n'
    )
    run = bulkcopy("submit", manifest, "--spec", spec)
    assert_usage_error(run, f"--source-sse-c-key: the key in {key_file} is 16", repo)


# -- destination collisions ------------------------------------------------------------


def test_two_buckets_with_one_key_are_refused(
    bulkcopy: Callable[..., Run], repo: Repository, write_manifest: WriteManifest
) -> None:
    """Same key from two source buckets: exit 2 naming the key and both lines."""
    path = write_manifest("b1,dir/k\nb2,other\nb2,dir/k\n")
    run = bulkcopy("submit", path, "--to", "s3://dst/p")
    assert_usage_error(run, "'p/dir/k' from s3://b1/dir/k (line 1)", repo)
    assert "s3://b2/dir/k (line 3)" in run.err
    assert f"bulkcopy: error: {path}: " in run.err


def test_a_template_that_merges_keys_is_refused(
    bulkcopy: Callable[..., Run], repo: Repository, write_manifest: WriteManifest
) -> None:
    """{basename} on a/x and b/x maps both to x: refused, naming x."""
    path = write_manifest("b,a/x\nb,b/x\nb,c/y\n")
    run = bulkcopy("submit", path, "--to", "s3://dst", "--key-template", "{basename}")
    assert_usage_error(run, "'x' from s3://b/a/x (line 1), s3://b/b/x (line 2)", repo)


def test_collision_free_mappings_are_accepted(
    bulkcopy: Callable[..., Run], repo: Repository, write_manifest: WriteManifest
) -> None:
    """{bucket}/{key} keeps two buckets apart; versions of a key share theirs."""
    path = write_manifest("b1,k\nb2,k\n")
    run = bulkcopy(
        "submit", path, "--to", "s3://dst", "--key-template", "{bucket}/{key}"
    )
    job = submitted(repo, run)
    assert sorted(r.dst_key for r in repo.iter_results(job.id)) == ["b1/k", "b2/k"]
    versions = write_manifest("b,a/k,v1\nb,a/k,v2\n", name="versions.csv")
    run = bulkcopy("submit", versions, "--to", "s3://dst", "--strip-prefix", "a/")
    job = submitted(repo, run)
    assert [r.dst_key for r in repo.iter_results(job.id)] == ["k", "k"]


def test_stored_spec_is_json_the_run_can_read(
    bulkcopy: Callable[..., Run],
    repo: Repository,
    write_spec: Callable[[str], str],
    manifest: str,
) -> None:
    """The stored spec reads back into the same options the run will use."""
    job = submitted(repo, bulkcopy("submit", manifest, "--spec", write_spec(FULL_SPEC)))
    spec = job.spec
    assert spec.object.metadata == {"owner": "ana"}
    assert spec.keys.template == "{bucket}/{key}"
    assert spec.copy.verify is True
    assert spec.headers == {"x-tenant": "blue"}
