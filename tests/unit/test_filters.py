"""Filters: which manifest rows become tasks, by prefix, size, date and class."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.domain.errors import UsageError
from engine.manifest.filters import (
    Filters,
    archived,
    storage_class,
    storage_value,
)
from engine.manifest.rows import Rows

T0 = 1_700_000_000.0  # a LastModified instant, Unix seconds


def make_rows(
    keys: list[str],
    *,
    sizes: list[int | None] | None = None,
    modified: list[float | None] | None = None,
    storage: list[str | None] | None = None,
    errors: dict[int, str] | None = None,
) -> Rows:
    rows = Rows(sizes=sizes, modified=modified, storage=storage)
    for i, key in enumerate(keys):
        rows.add(i + 1, "b", key, error=(errors or {}).get(i))
    return rows


def kept(filters: Filters, rows: Rows) -> list[str]:
    """The keys ``filters`` keeps, in order."""
    keep = filters.keep(rows)
    return list(rows.keys) if keep is None else [rows.keys[i] for i in keep]


# -- prefixes ------------------------------------------------------------------


def test_no_filter_keeps_every_row() -> None:
    """Without any filter set, every row is kept (and keep says so cheaply)."""
    rows = make_rows(["a", "b"])
    assert not Filters().active
    assert Filters().keep(rows) is None


def test_several_include_prefixes_keep_keys_matching_any() -> None:
    """Repeated --include-prefix keeps a key that starts with any of them."""
    rows = make_rows(["logs/1", "img/2", "doc/3", "logsx/4", "Logs/5"])
    f = Filters(include_prefixes=("logs/", "img/"))
    assert kept(f, rows) == ["logs/1", "img/2"]


def test_exclude_prefix_wins_over_include() -> None:
    """A key both included and excluded is left out."""
    rows = make_rows(["logs/keep", "logs/tmp/x", "other"])
    f = Filters(include_prefixes=("logs/",), exclude_prefixes=("logs/tmp/",))
    assert kept(f, rows) == ["logs/keep"]


def test_several_exclude_prefixes_leave_out_keys_matching_any() -> None:
    """Repeated --exclude-prefix leaves out a key matching any of them."""
    rows = make_rows(["a/1", "b/2", "c/3"])
    assert kept(Filters(exclude_prefixes=("a/", "c/")), rows) == ["b/2"]


def test_prefixes_need_no_column() -> None:
    """Prefix filters work on a manifest that gives only keys (a plain CSV)."""
    rows = make_rows(["a/1", "b/2"])
    f = Filters(include_prefixes=("a/",), exclude_prefixes=("z/",))
    f.check(rows, "m.csv")
    assert f.needs() == []
    assert kept(f, rows) == ["a/1"]


# -- sizes -----------------------------------------------------------------------


def test_size_bounds_are_inclusive() -> None:
    """--min-size and --max-size keep objects of exactly those sizes."""
    rows = make_rows(["s9", "s10", "s11", "s19", "s20", "s21"])
    rows.sizes = [9, 10, 11, 19, 20, 21]
    assert kept(Filters(min_size=10, max_size=20), rows) == [
        "s10",
        "s11",
        "s19",
        "s20",
    ]
    assert kept(Filters(min_size=10), rows) == ["s10", "s11", "s19", "s20", "s21"]
    assert kept(Filters(max_size=20), rows) == ["s9", "s10", "s11", "s19", "s20"]


def test_min_size_zero_keeps_empty_objects() -> None:
    """A zero-byte object passes --min-size 0 (0 is a bound, not 'unset')."""
    rows = make_rows(["empty", "one"], sizes=[0, 1])
    assert kept(Filters(min_size=0), rows) == ["empty", "one"]
    assert kept(Filters(max_size=0), rows) == ["empty"]


def test_unknown_size_never_passes_a_size_filter() -> None:
    """A row with no size is left out by --min-size and by --max-size."""
    rows = make_rows(["known", "unknown"], sizes=[5, None])
    assert kept(Filters(min_size=0), rows) == ["known"]
    assert kept(Filters(max_size=10**12), rows) == ["known"]


# -- dates -----------------------------------------------------------------------


def test_modified_after_is_inclusive_and_before_exclusive() -> None:
    """after <= LastModified < before: an object at the split instant is in one half."""
    rows = make_rows(["early", "at-after", "mid", "at-before", "late"])
    rows.modified = [T0 - 1, T0, T0 + 50, T0 + 100, T0 + 101]
    f = Filters(modified_after=T0, modified_before=T0 + 100)
    assert kept(f, rows) == ["at-after", "mid"]


def test_two_halves_split_at_one_instant_cover_every_object_once() -> None:
    """--modified-before X and --modified-after X partition the objects."""
    rows = make_rows([f"k{i}" for i in range(5)])
    rows.modified = [T0 - 2, T0 - 1, T0, T0 + 1, T0 + 2]
    first = kept(Filters(modified_before=T0), rows)
    second = kept(Filters(modified_after=T0), rows)
    assert first == ["k0", "k1"]
    assert second == ["k2", "k3", "k4"]


def test_unknown_date_never_passes_a_date_filter() -> None:
    """A row with no LastModified is left out by either date bound."""
    rows = make_rows(["dated", "undated"], modified=[T0, None])
    assert kept(Filters(modified_after=0.0), rows) == ["dated"]
    assert kept(Filters(modified_before=T0 + 1), rows) == ["dated"]


# -- storage classes -------------------------------------------------------------


def test_storage_value_notes_an_intelligent_tiering_archive_tier() -> None:
    """The storage column carries an archive tier after a slash, other tiers not."""
    assert storage_value("STANDARD") == "STANDARD"
    assert storage_value("GLACIER", None) == "GLACIER"
    assert (
        storage_value("INTELLIGENT_TIERING", "ARCHIVE_ACCESS")
        == "INTELLIGENT_TIERING/ARCHIVE_ACCESS"
    )
    assert (
        storage_value("INTELLIGENT_TIERING", "DEEP_ARCHIVE_ACCESS")
        == "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS"
    )
    assert storage_value("INTELLIGENT_TIERING", "FREQUENT_ACCESS") == (
        "INTELLIGENT_TIERING"
    )
    assert storage_value(None, "ARCHIVE_ACCESS") == "INTELLIGENT_TIERING/ARCHIVE_ACCESS"
    assert storage_value(None) is None


def test_storage_class_is_the_class_without_its_tier() -> None:
    """The class of a tiered value is the part before the slash; none is STANDARD."""
    assert storage_class("INTELLIGENT_TIERING/ARCHIVE_ACCESS") == "INTELLIGENT_TIERING"
    assert storage_class("GLACIER") == "GLACIER"
    assert storage_class(None) == "STANDARD"


@pytest.mark.parametrize(
    ("value", "is_archived"),
    [
        ("GLACIER", True),
        ("DEEP_ARCHIVE", True),
        ("INTELLIGENT_TIERING/ARCHIVE_ACCESS", True),
        ("INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS", True),
        ("GLACIER_IR", False),
        ("STANDARD", False),
        ("STANDARD_IA", False),
        ("INTELLIGENT_TIERING", False),
        (None, False),
    ],
)
def test_archived_objects_are_those_that_need_a_restore(
    value: str | None, is_archived: bool
) -> None:
    """GLACIER, DEEP_ARCHIVE and Intelligent-Tiering archive tiers need a restore."""
    assert archived(value) is is_archived


def test_storage_class_filter_keeps_the_listed_classes() -> None:
    """--source-storage-class keeps the objects of any of the classes given."""
    rows = make_rows(
        ["std", "ia", "glacier", "it", "it-archived"],
        storage=[
            "STANDARD",
            "STANDARD_IA",
            "GLACIER",
            "INTELLIGENT_TIERING",
            "INTELLIGENT_TIERING/ARCHIVE_ACCESS",
        ],
    )
    assert kept(Filters(storage_classes=("STANDARD", "GLACIER")), rows) == [
        "std",
        "glacier",
    ]


def test_intelligent_tiering_filter_includes_its_archive_tiers() -> None:
    """Filtering on INTELLIGENT_TIERING keeps objects of every tier of that class."""
    rows = make_rows(
        ["it", "it-archived", "it-deep", "std"],
        storage=[
            "INTELLIGENT_TIERING",
            "INTELLIGENT_TIERING/ARCHIVE_ACCESS",
            "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS",
            "STANDARD",
        ],
    )
    assert kept(Filters(storage_classes=("INTELLIGENT_TIERING",)), rows) == [
        "it",
        "it-archived",
        "it-deep",
    ]


def test_a_missing_storage_class_counts_as_standard() -> None:
    """A row without a storage class (as S3 omits it for STANDARD) is STANDARD."""
    rows = make_rows(["none", "glacier"], storage=[None, "GLACIER"])
    assert kept(Filters(storage_classes=("STANDARD",)), rows) == ["none"]
    assert kept(Filters(storage_classes=("GLACIER",)), rows) == ["glacier"]


# -- filters together, malformed rows --------------------------------------------


def test_every_filter_must_pass() -> None:
    """With several filters set, a row is kept only when it passes all of them."""
    rows = make_rows(
        ["a/ok", "a/small", "a/old", "a/cold", "b/ok"],
        sizes=[10, 1, 10, 10, 10],
        modified=[T0, T0, T0 - 10, T0, T0],
        storage=["STANDARD", "STANDARD", "STANDARD", "GLACIER", "STANDARD"],
    )
    f = Filters(
        include_prefixes=("a/",),
        min_size=5,
        modified_after=T0 - 1,
        storage_classes=("STANDARD",),
    )
    assert kept(f, rows) == ["a/ok"]


def test_malformed_rows_are_never_filtered() -> None:
    """A malformed row is kept whatever the filters say, so it gets reported."""
    rows = make_rows(
        ["z/bad", "a/good", "a/small"],
        sizes=[None, 10, 1],
        modified=[None, T0, T0],
        storage=[None, "STANDARD", "STANDARD"],
        errors={0: "empty key"},
    )
    f = Filters(
        include_prefixes=("a/",),
        exclude_prefixes=("z/",),
        min_size=5,
        modified_after=T0,
        storage_classes=("GLACIER", "STANDARD"),
    )
    assert f.keep(rows) == [0, 1]


def test_take_keeps_the_columns_and_extras_of_the_kept_rows() -> None:
    """Rows.take of the kept indices moves sizes, dates, errors and overrides along."""
    rows = make_rows(
        ["a/1", "z/2", "a/3"],
        sizes=[1, 2, 3],
        modified=[T0, T0 + 1, T0 + 2],
        storage=["STANDARD", "GLACIER", "GLACIER"],
        errors={2: "bad"},
    )
    rows.overrides[0] = {"dst_key": "x"}
    rows.position = {"line": 3}
    keep = Filters(exclude_prefixes=("z/",)).keep(rows)
    assert keep == [0, 2]
    taken = rows.take(keep)
    assert (taken.keys, taken.sizes, taken.modified, taken.storage) == (
        ["a/1", "a/3"],
        [1, 3],
        [T0, T0 + 2],
        ["STANDARD", "GLACIER"],
    )
    assert (taken.errors, taken.overrides, taken.position) == (
        {1: "bad"},
        {0: {"dst_key": "x"}},
        {"line": 3},
    )


# -- check: a manifest without the column a filter reads ---------------------------


@pytest.mark.parametrize(
    ("filters", "option", "column"),
    [
        (Filters(min_size=1), "--min-size", "size"),
        (Filters(max_size=1), "--max-size", "size"),
        (Filters(modified_after=T0), "--modified-after", "last-modified date"),
        (Filters(modified_before=T0), "--modified-before", "last-modified date"),
        (
            Filters(storage_classes=("GLACIER",)),
            "--source-storage-class",
            "storage class",
        ),
    ],
)
def test_check_refuses_a_manifest_without_the_column_naming_the_option(
    filters: Filters, option: str, column: str
) -> None:
    """A filter on a column the manifest lacks is a UsageError naming the option."""
    with pytest.raises(UsageError) as info:
        filters.check(make_rows(["k"]), "plain.csv")
    message = str(info.value)
    assert option in message
    assert column in message
    assert "plain.csv" in message


def test_check_accepts_a_manifest_with_the_columns() -> None:
    """A manifest giving sizes, dates and classes passes every filter's check."""
    rows = make_rows(["k"], sizes=[1], modified=[T0], storage=["STANDARD"])
    f = Filters(
        min_size=1,
        max_size=2,
        modified_after=T0,
        modified_before=T0 + 1,
        storage_classes=("STANDARD",),
    )
    f.check(rows, "inventory.json")


def test_check_only_asks_for_the_columns_the_set_filters_read() -> None:
    """A size filter on a manifest with sizes but no dates is accepted."""
    rows = make_rows(["k"], sizes=[1])
    Filters(min_size=1).check(rows, "m")
    with pytest.raises(UsageError, match="--modified-after"):
        Filters(min_size=1, modified_after=T0).check(rows, "m")


# -- stored with the job ---------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters(include_prefixes=("a/", "b/"), exclude_prefixes=("a/tmp/",)),
        Filters(min_size=0, max_size=5 * 1024**3),
        Filters(modified_after=0.0, modified_before=T0 + 0.5),
        Filters(storage_classes=("STANDARD", "INTELLIGENT_TIERING")),
        Filters(
            include_prefixes=("x",),
            exclude_prefixes=("y",),
            min_size=1,
            max_size=2,
            modified_after=T0,
            modified_before=T0 + 1,
            storage_classes=("GLACIER",),
        ),
    ],
)
def test_to_dict_from_dict_round_trip_through_json(filters: Filters) -> None:
    """Filters stored as JSON with the job come back equal, zero bounds included."""
    stored: dict[str, Any] = json.loads(json.dumps(filters.to_dict()))
    assert Filters.from_dict(stored) == filters


def test_to_dict_leaves_out_unset_filters() -> None:
    """Only the filters set are stored."""
    assert Filters().to_dict() == {}
    assert Filters(min_size=0).to_dict() == {"min_size": 0}
