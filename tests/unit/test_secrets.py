"""SSE-C keys: read from env:VAR or file:PATH, checked, and never shown."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from engine.copy.request import Requests
from engine.domain.errors import UsageError
from engine.s3.sse_keys import Keys, load_keys, read_key

KEY = bytes(range(100, 132))  # 32 bytes, not valid base64 text
KEY_B64 = base64.b64encode(KEY).decode()
SHORT = bytes(range(200, 216))  # 16 bytes: an AES-128 key, wrong for SSE-C
SHORT_B64 = base64.b64encode(SHORT).decode()


def spellings(secret: bytes) -> list[str]:
    """Every way a key could leak into a message."""
    return [
        base64.b64encode(secret).decode(),
        secret.hex(),
        repr(secret),
        secret.decode("latin-1"),
    ]


def assert_hidden(text: str, *secrets: bytes) -> None:
    for secret in secrets:
        for spelled in spellings(secret):
            assert spelled not in text


def usage_error(source: str, option: str = "--sse-c-key") -> UsageError:
    with pytest.raises(UsageError) as info:
        read_key(source, option)
    return info.value


# -- reading keys ---------------------------------------------------------------


def test_env_variable_holds_the_key_base64(monkeypatch: pytest.MonkeyPatch) -> None:
    """env:NAME reads the variable and decodes it from base64."""
    monkeypatch.setenv("BULKCOPY_TEST_KEY", KEY_B64)
    assert read_key("env:BULKCOPY_TEST_KEY") == KEY


def test_env_key_may_carry_surrounding_whitespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trailing newline (as `openssl rand -base64 32` prints) is ignored."""
    monkeypatch.setenv("BULKCOPY_TEST_KEY", f"  {KEY_B64}\n")
    assert read_key("env:BULKCOPY_TEST_KEY") == KEY


def test_file_of_32_raw_bytes_is_the_key(tmp_path: Path) -> None:
    """A file of exactly 32 bytes is the key itself, whatever the bytes are."""
    path = tmp_path / "raw.key"
    path.write_bytes(KEY)
    assert read_key(f"file:{path}") == KEY


def test_file_of_32_newlines_is_still_a_raw_key(tmp_path: Path) -> None:
    """32 raw bytes are never stripped or decoded, even when they are whitespace."""
    path = tmp_path / "odd.key"
    path.write_bytes(b"\n" * 32)
    assert read_key(f"file:{path}") == b"\n" * 32


@pytest.mark.parametrize("text", [KEY_B64, KEY_B64 + "\n", KEY_B64 + "\r\n"])
def test_file_of_base64_text_is_decoded(tmp_path: Path, text: str) -> None:
    """A file holding the key's base64 text (with or without a newline) is decoded."""
    path = tmp_path / "b64.key"
    path.write_text(text)
    assert read_key(f"file:{path}") == KEY


def test_file_path_may_contain_colons(tmp_path: Path) -> None:
    """Only the first colon separates the kind from the path."""
    path = tmp_path / "a:b.key"
    path.write_bytes(KEY)
    assert read_key(f"file:{path}") == KEY


# -- refusing keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [KEY_B64, "", "env:", "file:", "ENV:K", "vault:k", "s3://bucket/key", "K"],
)
def test_a_source_that_names_no_place_is_refused(source: str) -> None:
    """Anything but env:NAME or file:PATH is refused, saying what is expected."""
    err = usage_error(source)
    assert str(err) == (
        "--sse-c-key must name where the key is: env:VARIABLE or file:PATH "
        "(the key itself is never passed on the command line)"
    )


def test_a_key_typed_in_place_of_a_source_is_not_echoed() -> None:
    """A user who passes the key itself gets an error that does not repeat it."""
    err = usage_error(KEY_B64)
    assert_hidden(str(err) + repr(err), KEY)


def test_missing_env_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable is named in the message."""
    monkeypatch.delenv("BULKCOPY_NO_SUCH_KEY", raising=False)
    err = usage_error("env:BULKCOPY_NO_SUCH_KEY")
    assert str(err) == (
        "--sse-c-key: environment variable BULKCOPY_NO_SUCH_KEY is not set"
    )


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    """A key file that does not exist, or is a directory, is named with the reason."""
    missing = tmp_path / "nope.key"
    assert str(usage_error(f"file:{missing}")) == (
        f"--sse-c-key: cannot read {missing}: No such file or directory"
    )
    assert str(usage_error(f"file:{tmp_path}")).startswith(
        f"--sse-c-key: cannot read {tmp_path}: "
    )


def test_the_option_name_in_messages_is_the_one_given() -> None:
    """Errors about the source key name --source-sse-c-key, not --sse-c-key."""
    err = usage_error("nowhere", option="--source-sse-c-key")
    assert str(err).startswith("--source-sse-c-key must name where the key is")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (SHORT_B64, "--sse-c-key: the key in $BULKCOPY_TEST_KEY is 16 bytes"),
        (
            base64.b64encode(KEY + b"x").decode(),
            "--sse-c-key: the key in $BULKCOPY_TEST_KEY is 33 bytes",
        ),
        (KEY.hex(), "--sse-c-key: the key in $BULKCOPY_TEST_KEY is 48 bytes"),
        ("not base64!", "$BULKCOPY_TEST_KEY does not hold a base64-encoded key"),
        (KEY_B64[:-1], "$BULKCOPY_TEST_KEY does not hold a base64-encoded key"),
    ],
    ids=["16-bytes", "33-bytes", "hex", "not-base64", "bad-padding"],
)
def test_wrong_env_key_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    """A key of the wrong length or encoding is refused; the message hides it."""
    monkeypatch.setenv("BULKCOPY_TEST_KEY", value)
    err = usage_error("env:BULKCOPY_TEST_KEY")
    assert message in str(err)
    assert value not in str(err)
    assert_hidden(str(err) + repr(err), KEY, SHORT)
    # nothing chained onto the error (shown in a traceback) carries the key either
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__
    assert_hidden(repr(err.__context__), KEY, SHORT)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (SHORT, "does not hold a base64-encoded key"),
        (SHORT_B64.encode(), "is 16 bytes; SSE-C needs 32 (AES-256)"),
        (KEY[:31], "does not hold a base64-encoded key"),
        (KEY + b"\n", "does not hold a base64-encoded key"),
        (b"", "is 0 bytes"),
    ],
    ids=["16-raw", "16-base64", "31-raw", "32-raw-plus-newline", "empty"],
)
def test_wrong_file_key_is_refused_without_showing_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    """A key file of the wrong length is refused, naming the file, hiding the key."""
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    err = usage_error(f"file:{path}")
    assert str(err).startswith("--sse-c-key: ")
    assert str(path) in str(err)
    assert message in str(err)
    assert_hidden(str(err) + repr(err), KEY, SHORT, KEY[:31])


# -- keeping keys out of sight --------------------------------------------------------


def test_keys_repr_shows_only_whether_each_key_is_set() -> None:
    """repr (and str, f-strings, logs) of Keys never contains a key."""
    keys = Keys(dst=KEY, src=SHORT)
    text = repr(keys) + str(keys) + f"{keys}" + f"{keys!r}"
    assert repr(keys) == "Keys(dst=<set>, src=<set>)"
    assert repr(Keys()) == "Keys(dst=None, src=None)"
    assert repr(Keys(src=KEY)) == "Keys(dst=None, src=<set>)"
    assert_hidden(text, KEY, SHORT)


def test_request_builder_repr_hides_the_keys() -> None:
    """The per-run request builder, which holds the keys, does not print them."""
    text = repr(Requests(keys=Keys(dst=KEY, src=SHORT)))
    assert "Keys(dst=<set>, src=<set>)" in text
    assert_hidden(text, KEY, SHORT)


def test_load_keys_reads_each_given_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Destination and source keys are read from their own sources; none is None."""
    monkeypatch.setenv("BULKCOPY_DST_KEY", KEY_B64)
    path = tmp_path / "src.key"
    path.write_bytes(SHORT * 2)
    keys = load_keys("env:BULKCOPY_DST_KEY", f"file:{path}")
    assert (keys.dst, keys.src) == (KEY, SHORT * 2)
    assert load_keys(None, None) == Keys()
    assert load_keys(None, f"file:{path}") == Keys(src=SHORT * 2)


def test_load_keys_names_the_source_option_at_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad source key is reported as --source-sse-c-key."""
    monkeypatch.setenv("BULKCOPY_DST_KEY", KEY_B64)
    monkeypatch.setenv("BULKCOPY_SRC_KEY", SHORT_B64)
    with pytest.raises(UsageError, match=r"^--source-sse-c-key: the key in \$BULK"):
        load_keys("env:BULKCOPY_DST_KEY", "env:BULKCOPY_SRC_KEY")
