"""The limits of stored metadata: one check, held by every writer of metadata (the
interfaces' writers are tested in tests/api/<interface>/; seeding and the write path,
which every writer goes through, here)."""

from __future__ import annotations

from typing import Any

import pytest

from assetvault.errors import InvalidInput
from assetvault.metadata import limits
from assetvault.services import Services
from assetvault.tree import repository as repo
from tests.factories import make_asset, make_assets, snapshot


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


# Metadata no writer may store, each as JSON could carry it: (id, metadata).
HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("NUL in a name", {"dc:ti\x00tle": "v"}),
    ("CRLF in a name", {"x\r\nSet-Cookie: a": "v"}),
    ("a control character in a name", {"k\x07": 1}),
    ("a C1 control in a name", {"k\x85": 1}),
    ("a 300-character name", {"k" * 300: 1}),
    ("NUL in a nested name", {"x": {"in\x00ner": 1}}),
    ("CRLF in a name inside a list", {"x": [{"deep": {"a\r\nb": 1}}]}),
    ("a long nested name", {"x": {"k" * 257: 1}}),
    ("an empty name", {"": 1}),
    ("a 600 KB value", {"big": "a" * 600_000}),
    ("a 600 KB list", {"big": ["a" * 1000] * 600}),
    ("nesting past the bound", {"deep": nested(limits.MAX_DEPTH + 1)}),
    ("a group over the total", {f"p{i}": "a" * 200_000 for i in range(6)}),
    ("dc:format with CRLF", {"dc:format": "x/y\r\nSet-Cookie: a"}),
    ("dc:format without a subtype", {"dc:format": "image"}),
    ("dc:format that is no string", {"dc:format": ["image/jpeg"]}),
]
HOSTILE_IDS = [name for name, _ in HOSTILE]
# Only what JSON parsed in a request cannot carry: a fault of a caller in the process.
NOT_JSON: list[tuple[str, dict[str, Any]]] = [
    ("a lone surrogate", {"x": "\ud800"}),
    ("a non-finite number", {"x": float("nan")}),
    ("an object that is no JSON value", {"x": {"when": object()}}),
    ("a name that is no string", {"x": {1: "one"}}),
]


@pytest.mark.parametrize(
    "metadata", [m for _, m in HOSTILE + NOT_JSON], ids=HOSTILE_IDS + [n for n, _ in NOT_JSON]
)
def test_hostile_metadata_is_refused(metadata: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        limits.check_new(metadata)
    with pytest.raises(InvalidInput):
        limits.check_changes({"dc:title": "t"}, {"dc:title": "t", **metadata})


def test_metadata_at_the_limits_passes() -> None:
    ok = {
        "k" * limits.MAX_KEY_CHARS: "a" * (limits.MAX_VALUE_BYTES - 2),
        "deep": nested(limits.MAX_DEPTH),
        "dc:format": "text/plain; charset=utf-8",
        "values": ["tab\there", "line\nbreak", None, 1, 2.5, True, {"a": [1]}],
    }
    limits.check_new(ok)


def test_what_a_write_leaves_as_it_was_is_not_judged() -> None:
    stored = {"odd\x01name": 1, "dc:format": "not a type", "big": "a" * 600_000}
    limits.check_changes(stored, {**stored, "dc:title": "t"})
    with pytest.raises(InvalidInput, match="control characters"):
        limits.check_changes(stored, {**stored, "odd\x01name": 2})


def test_an_import_is_bounded_in_all() -> None:
    """One value shared by many files counts once per file."""
    value = {"shared": "a" * (limits.MAX_VALUE_BYTES - 100)}
    fits = limits.MAX_IMPORT_METADATA_BYTES // limits.json_size(value)
    limits.check_import(value, [{}] * fits)
    with pytest.raises(InvalidInput, match="in all"):
        limits.check_import(value, [{}] * (fits + 1))
    with pytest.raises(InvalidInput, match="in all"):
        limits.check_import({}, [value] * (fits + 1))
    with pytest.raises(InvalidInput, match=r"files\[1\]: .* at most"):
        limits.check_import(value, [{}, {f"own{i}": value["shared"] for i in range(4)}])


# -- the writers outside the interfaces, on both databases ------------------------------


async def test_seeding_refuses_hostile_metadata(services: Services) -> None:
    before = await snapshot(services)
    for name, metadata in HOSTILE + NOT_JSON:
        with pytest.raises(InvalidInput):
            await make_assets(services, [("a.jpg", {}), ("b.jpg", metadata)])
        assert (await snapshot(services))["nodes"] == before["nodes"], name


async def test_the_write_path_refuses_hostile_metadata(services: Services) -> None:
    """Whoever calls: new assets, new folders and the users' layer of a node."""
    asset = await make_asset(services, "a.txt", b"x", "text/plain")
    before = await snapshot(services)
    for name, metadata in HOSTILE + NOT_JSON:
        async with services.writes.change("writer") as ch:
            root = await repo.by_path(ch.reader, "/content/dam")
            node = await repo.by_id(ch.reader, asset.id)
            assert root is not None and node is not None
            with pytest.raises(InvalidInput):
                await ch.create_folder(root, "f", metadata)
            with pytest.raises(InvalidInput):
                await ch.set_properties(node, {**node.properties, **metadata})
        with pytest.raises(InvalidInput):
            await services.changes.set_properties(asset.path, metadata, user="writer")
        assert (await snapshot(services))["nodes"] == before["nodes"], name


@pytest.mark.parametrize(
    "metadata", [m for _, m in HOSTILE + NOT_JSON], ids=HOSTILE_IDS + [n for n, _ in NOT_JSON]
)
def test_hostile_extracted_metadata_is_dropped_not_refused(metadata: dict[str, Any]) -> None:
    fitted, dropped = limits.fit_extracted({"dc:title": "kept", **metadata})
    limits.check_new(fitted)  # what is kept passes the one check
    assert fitted["dc:title"] == "kept" and dropped


def test_an_extracted_string_over_the_value_limit_is_cut_to_fit() -> None:
    value = "é\n" * limits.MAX_VALUE_BYTES  # escapes and multi-byte characters
    fitted, dropped = limits.fit_extracted({"dc:description": value, "dc:title": "t"})
    assert dropped == ["dc:description"] and fitted["dc:title"] == "t"
    cut = fitted["dc:description"]
    assert value.startswith(cut)
    assert limits.MAX_VALUE_BYTES - 8 <= limits.json_size(cut) <= limits.MAX_VALUE_BYTES


def test_extracted_metadata_is_held_to_the_total_in_order() -> None:
    many = {f"h:P{i}": "x" * 200 for i in range(10_000)}  # about 2.3 MB in all
    fitted, dropped = limits.fit_extracted({**many, "dc:title": "t"})
    assert limits.json_size(fitted) <= limits.MAX_METADATA_BYTES
    assert len(fitted) + len(dropped) == 10_001 and len(fitted) > 4_000
    assert fitted["dc:title"] == "t"  # a standard namespace's first
    assert [k for k in fitted if k != "dc:title"] == [f"h:P{i}" for i in range(len(fitted) - 1)]
    limits.check_new(fitted)
