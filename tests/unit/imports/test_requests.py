"""The checks of import requests, field by field (the API tests cover the wire)."""

from __future__ import annotations

import pytest

from assetvault.errors import InvalidInput
from assetvault.imports import requests


def test_a_url_import_is_read_into_files_and_a_target() -> None:
    parsed = requests.url_import(
        {
            "folder": "/content/dam/a/b/",
            "assetMetadata": {"dc:title": "T"},
            "sourceName": "Workbench",
            "files": [
                {
                    "fileName": "x.jpg",
                    "url": "https://example.com/x.jpg",
                    "mimeType": "IMAGE/JPEG",
                    "fileSize": 12,
                    "assetMetadata": {"dc:rights": "R"},
                }
            ],
        }
    )
    assert parsed.target == requests.Target(path="/content/dam/a/b")
    assert parsed.metadata == {"dc:title": "T"} and parsed.source_name == "Workbench"
    (f,) = parsed.files
    assert (f.file_name, f.url, f.mime_type, f.file_size) == (
        "x.jpg",
        "https://example.com/x.jpg",
        "image/jpeg",
        12,
    )
    assert f.metadata == {"dc:rights": "R"}


def test_a_folder_urn_is_a_target_by_id() -> None:
    target = requests.target("urn:aaid:aem:8964ca64-b302-5abe-88db-e1729385287b")
    assert target.node_id == "8964ca64-b302-5abe-88db-e1729385287b"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "required"),
        ("content/dam", "neither"),
        ("/content/damx", "neither"),
        ("/content/dam/a//b", "empty"),
        ("/content/dam/a:b", "not allowed"),
        ("urn:aaid:aem:", "no folder URN"),
        (3, "required"),
    ],
)
def test_bad_folders_are_refused(value: object, why: str) -> None:
    with pytest.raises(InvalidInput, match="folder") as caught:
        requests.target(value)
    assert why in caught.value.detail


def test_the_file_count_limits_hold() -> None:
    one = {"fileName": "a", "url": "http://example.com/a"}
    files = [{**one, "fileName": f"f{i}"} for i in range(300)]
    assert len(requests.url_import({"folder": "/content/dam", "files": files}).files) == 300
    with pytest.raises(InvalidInput, match="1 to 300"):
        requests.url_import({"folder": "/content/dam", "files": [*files, one]})
    items = [f"id:{i}" for i in range(1000)]
    assert len(requests.source_import({"folder": "/content/dam", "items": items}).item_ids) == 1000
    with pytest.raises(InvalidInput, match="1 to 1000"):
        requests.source_import({"folder": "/content/dam", "items": [*items, "id:x"]})


def test_a_single_item_start_takes_no_items() -> None:
    parsed = requests.source_import({"folder": "/content/dam"}, item_id="id:1")
    assert parsed.item_ids == ["id:1"]
    with pytest.raises(InvalidInput, match="items"):
        requests.source_import({"folder": "/content/dam", "items": ["id:2"]}, item_id="id:1")
