from __future__ import annotations

import pytest

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from assetvault.services import Services


def blob(n: int) -> BlobInfo:
    return BlobInfo(key=f"{n:064x}", size=n, sha1=f"{n:040x}")


async def test_folders_nest_and_bump_their_parent(services: Services) -> None:
    tree = services.tree
    root = await tree.get("/content/dam")
    a = await tree.create_folder("/content/dam", "a", user="u", properties={"jcr:title": "A"})
    assert (a.path, a.parent_id, a.title, a.revision, a.kind) == (
        "/content/dam/a",
        root.id,
        "A",
        1,
        "folder",
    )
    assert (await tree.get("/content/dam")).revision == root.revision + 1
    b = await tree.create_folder("/content/dam/a", "b", user="u")
    assert b.parent_id == a.id and b.urn == f"urn:aaid:aem:{b.id}"
    children, total = await tree.list_children(a)
    assert [c.name for c in children] == ["b"] and total == 1


async def test_folder_errors(services: Services) -> None:
    tree = services.tree
    await tree.create_folder("/content/dam", "a", user="u")
    with pytest.raises(AlreadyExists):
        await tree.create_folder("/content/dam", "a", user="u")
    with pytest.raises(NotFound):
        await tree.create_folder("/content/dam/missing", "b", user="u")
    with pytest.raises(InvalidInput):
        await tree.create_folder("/content/dam", "a:b", user="u")


async def test_store_original_modes(services: Services) -> None:
    tree = services.tree
    first = await tree.store_original(
        "/content/dam", "x.jpg", blob(1), mime_type="image/jpeg", user="u"
    )
    assert first.created and first.node.revision == 1 and first.node.asset_state == "processing"

    over = await tree.store_original(
        "/content/dam", "x.jpg", blob(2), mime_type="image/jpeg", user="v"
    )
    assert not over.created and over.node.id == first.node.id
    assert over.node.revision == 2 and over.node.blob_key == blob(2).key
    assert over.node.modified_by == "v" and over.node.created_by == "u"
    assert await tree.versions(over.node) == []

    versioned = await tree.store_original(
        "/content/dam",
        "x.jpg",
        blob(3),
        mime_type="image/png",
        user="u",
        create_version=True,
        version_label="L",
        version_comment="C",
    )
    [v] = await tree.versions(versioned.node)
    assert (v.number, v.blob_key, v.mime_type, v.label, v.comment) == (
        1,
        blob(2).key,
        "image/jpeg",
        "L",
        "C",
    )
    again = await tree.store_original(
        "/content/dam", "x.jpg", blob(4), mime_type="image/png", user="u", create_version=True
    )
    assert [v.number for v in await tree.versions(again.node)] == [1, 2]

    replaced = await tree.store_original(
        "/content/dam", "x.jpg", blob(5), mime_type="image/png", user="u", replace=True
    )
    assert replaced.created and replaced.node.id != first.node.id
    assert await tree.versions(replaced.node) == []


async def test_store_original_refusals(services: Services) -> None:
    tree = services.tree
    await tree.create_folder("/content/dam", "f", user="u")
    with pytest.raises(Conflict):
        await tree.store_original("/content/dam", "f", blob(1), mime_type="a/b", user="u")
    with pytest.raises(NotFound):
        await tree.store_original("/content/dam/nope", "x", blob(1), mime_type="a/b", user="u")
    await tree.store_original("/content/dam", "asset", blob(1), mime_type="a/b", user="u")
    with pytest.raises(NotFound):  # an asset is no folder
        await tree.store_original("/content/dam/asset", "x", blob(1), mime_type="a/b", user="u")
