"""Rows read back as nodes: every field of the dataclass, with the values it would hold."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from assetvault.tree import repository as repo
from assetvault.tree.models import Node


def test_a_row_becomes_the_node_the_dataclass_would_make() -> None:
    row = (
        "id-1",
        "parent-1",
        "a.jpg",
        "/content/dam/a.jpg",
        "asset",
        7,
        "2026-12-07 08:48:41.775058",
        "maker",
        "2026-12-07 09:00:00.000001",
        "editor",
        '{"dc:title": "t", "x": [1, 2]}',
        "blob",
        12,
        "sha",
        "image/jpeg",
        "processed",
        '{"dc:format": "image/jpeg"}',
        "text",
        None,
        1,
        "2026-12-08 00:00:00.000000",
    )
    node = repo.node_from(row)
    made = Node(
        id="id-1",
        parent_id="parent-1",
        name="a.jpg",
        path="/content/dam/a.jpg",
        kind="asset",
        revision=7,
        created_at=datetime(2026, 12, 7, 8, 48, 41, 775058, tzinfo=UTC),
        created_by="maker",
        modified_at=datetime(2026, 12, 7, 9, 0, 0, 1, tzinfo=UTC),
        modified_by="editor",
        properties={"dc:title": "t", "x": [1, 2]},
        blob_key="blob",
        size=12,
        sha1="sha",
        mime_type="image/jpeg",
        asset_state="processed",
        extracted={"dc:format": "image/jpeg"},
        extracted_text="text",
        processing_error=None,
        published=True,
        published_at=datetime(2026, 12, 8, tzinfo=UTC),
    )
    assert node == made
    assert set(vars(node)) == {f.name for f in dataclasses.fields(Node)}
    assert all(getattr(node, f.name) == getattr(made, f.name) for f in dataclasses.fields(Node))
    # Each node owns its layers: changing one node's leaves another read of the row alone.
    node.properties["dc:title"] = "changed"
    assert repo.node_from(row).properties["dc:title"] == "t"


def test_a_timestamp_reads_as_utc_from_either_driver() -> None:
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert repo.instant("2026-01-02 03:04:05") == aware
    assert repo.instant("2026-01-02 03:04:05") is repo.instant("2026-01-02 03:04:05")
    assert repo.instant("2026-01-02T03:04:05+00:00") == aware
    assert repo.instant(datetime(2026, 1, 2, 3, 4, 5)) == aware
    assert repo.instant(aware) is aware


def test_node_with_changes_some_fields_and_leaves_the_node_as_it_was() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    node = Node("i", "p", "a.jpg", "/content/dam/a.jpg", "asset", 3, at, "u", at, "u")
    changed = repo.node_with(node, revision=4, properties={"dc:title": "t"})
    assert changed == dataclasses.replace(node, revision=4, properties={"dc:title": "t"})
    assert node.revision == 3 and node.properties == {}
