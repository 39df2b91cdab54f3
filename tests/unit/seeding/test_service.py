"""Seeding a DAM from a local folder: planned (folders, files, sidecars checked), applied
through the write path, and idempotent (a second run writes nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from assetvault.seeding.plan import plan_seed
from assetvault.seeding.service import SeedService
from assetvault.services import Services
from tests import media
from tests.factories import outbox_events


def service(svc: Services) -> SeedService:
    return SeedService(svc.tree, svc.writes, svc.metadata, svc.relations)


def sidecar(path: Path, doc: object) -> None:
    path.with_name(path.name + ".metadata.json").write_text(json.dumps(doc))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """photos: 2024/ (a name AEM refuses) with a JPEG, its sidecar and a PNG it relates
    to; an empty folder; a text file at the top."""
    root = tmp_path / "seed"
    photos = root / "photos: 2024"
    (photos / "raw").mkdir(parents=True)
    (root / "empty").mkdir()
    media.jpeg_with_metadata(photos / "sunset.jpg", 60, 40)
    media.png16_with_alpha(photos / "raw" / "sunset.png", 50, 25)
    (root / "notes.txt").write_text("hello")
    sidecar(
        photos / "sunset.jpg",
        {
            "assetMetadata": {"dc:title": "Sunset", "dc:subject": ["beach", "evening"]},
            "relations": [{"relationType": "derived", "path": "raw/sunset.png"}],
        },
    )
    return root


def test_the_plan_maps_folder_names_and_keeps_sidecars_out(tree: Path) -> None:
    plan = plan_seed(tree)
    assert [f for f, _ in plan.folders] == [
        "/content/dam/empty",
        "/content/dam/photos- 2024",
        "/content/dam/photos- 2024/raw",
    ]
    assert dict(plan.folders)["/content/dam/photos- 2024"] == "photos: 2024"
    remotes = sorted(f.remote for f in plan.files)
    assert remotes == [
        "/content/dam/notes.txt",
        "/content/dam/photos- 2024/raw/sunset.png",
        "/content/dam/photos- 2024/sunset.jpg",
    ]
    jpeg = next(f for f in plan.files if f.name == "sunset.jpg")
    assert jpeg.metadata == {"dc:title": "Sunset", "dc:subject": ["beach", "evening"]}
    assert [(r.relation_type, r.target) for r in jpeg.relations] == [
        ("derived", "/content/dam/photos- 2024/raw/sunset.png")
    ]
    assert plan.problems == []


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"assetMetadata": {"bad\nname": 1}}, "control characters"),
        ({"assetMetadata": {"dc:format": "not a type"}}, "dc:format"),
        ({"assetMetadata": {"x": None}}, "null"),
        ({"metadata": {}}, "unknown keys"),
        ([1, 2], "JSON object"),
        ({"relations": [{"relationType": "sideways", "path": "a.txt"}]}, "relation type"),
        ({"relations": [{"relationType": "derived", "path": "../../etc/passwd"}]}, "names no"),
        ({"relations": [{"relationType": "derived", "path": "/etc/passwd"}]}, "not under"),
        ({"relations": [{"relationType": "derived", "path": "b.txt"}]}, "itself"),
    ],
)
def test_a_bad_sidecar_leaves_its_file_out_and_says_why(
    tmp_path: Path, doc: object, why: str
) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    sidecar(tmp_path / "b.txt", doc)
    plan = plan_seed(tmp_path)
    assert [f.name for f in plan.files] == ["a.txt"]
    (problem,) = plan.problems
    assert problem.status == "failed" and why in problem.detail, problem.detail


def test_symlinks_out_of_the_folder_and_orphan_sidecars_are_left_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "seed"
    root.mkdir()
    (root / "inside.txt").write_text("fine")
    os.symlink(outside, root / "leak.txt")
    os.symlink(root / "inside.txt", root / "alias.txt")  # inside: followed
    (root / "gone.jpg.metadata.json").write_text("{}")
    plan = plan_seed(root)
    assert sorted(f.name for f in plan.files) == ["alias.txt", "inside.txt"]
    problems = {p.local.name: p for p in plan.problems}
    assert problems["leak.txt"].status == "failed"
    assert "leads out of" in problems["leak.txt"].detail
    assert problems["gone.jpg.metadata.json"].status == "skipped"


async def test_seeding_makes_folders_assets_metadata_and_relations_once(
    services: Services, tree: Path
) -> None:
    first = await service(services).seed(plan_seed(tree))
    assert (first.folders_created, first.assets_created) == (3, 3)
    assert (first.metadata_updated, first.relations_added) == (1, 1)
    assert first.problems == []

    folder = await services.tree.get("/content/dam/photos- 2024")
    assert folder.kind == "folder" and folder.properties["jcr:title"] == "photos: 2024"
    assert (await services.tree.get("/content/dam/empty")).kind == "folder"
    jpeg = await services.tree.get("/content/dam/photos- 2024/sunset.jpg")
    png = await services.tree.get("/content/dam/photos- 2024/raw/sunset.png")
    assert jpeg.mime_type == "image/jpeg" and jpeg.asset_state == "processing"
    assert jpeg.asset_metadata["dc:title"] == "Sunset"
    assert jpeg.asset_metadata["dc:subject"] == ["beach", "evening"]
    related, _ = await services.relations.list(jpeg.id)
    assert [(r.relation_type, r.related_id) for r in related] == [("derived", png.id)]
    text = await services.tree.get("/content/dam/notes.txt")
    assert text.size == 5

    rows = len(await outbox_events(services))
    second = await service(services).seed(plan_seed(tree))
    assert not second.changed and second.unchanged == 3 and second.problems == []
    assert len(await outbox_events(services)) == rows
    assert await services.tree.versions(jpeg) == []
    again = await services.tree.get(jpeg.path)
    assert again.revision == jpeg.revision


async def test_changed_bytes_make_a_version_and_changed_sidecars_set_only_what_differs(
    services: Services, tree: Path
) -> None:
    await service(services).seed(plan_seed(tree))
    notes = await services.tree.get("/content/dam/notes.txt")
    (tree / "notes.txt").write_text("hello again")
    photos = tree / "photos: 2024"
    sidecar(
        photos / "sunset.jpg",
        {"assetMetadata": {"dc:title": "Dusk", "dc:subject": ["beach", "evening"]}},
    )
    outcome = await service(services).seed(plan_seed(tree))
    assert (outcome.assets_updated, outcome.metadata_updated) == (1, 1)
    assert outcome.assets_created == outcome.folders_created == outcome.relations_added == 0
    assert outcome.unchanged == 1  # the PNG
    updated = await services.tree.get(notes.path)
    assert updated.id == notes.id and updated.size == len("hello again")
    (kept,) = await services.tree.versions(updated)
    assert kept.sha1 == notes.sha1
    jpeg = await services.tree.get("/content/dam/photos- 2024/sunset.jpg")
    assert jpeg.asset_metadata["dc:title"] == "Dusk"


async def test_one_failure_leaves_the_rest_seeded(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "seed"
    root.mkdir()
    (root / "ok.txt").write_text("fine")
    (root / "a*b.txt").write_text("a name AEM refuses for an asset")
    outcome = await service(services).seed(plan_seed(root))
    assert outcome.assets_created == 1
    (problem,) = outcome.failed
    assert problem.local.name == "a*b.txt" and "not allowed" in problem.detail
    assert await services.tree.find("/content/dam/a*b.txt") is None


async def test_seeding_into_a_folder_makes_the_folder(services: Services, tree: Path) -> None:
    outcome = await service(services).seed(plan_seed(tree, "/content/dam/ci/run"))
    assert outcome.problems == []
    assert (await services.tree.get("/content/dam/ci")).kind == "folder"
    assert (await services.tree.get("/content/dam/ci/run/notes.txt")).kind == "asset"
